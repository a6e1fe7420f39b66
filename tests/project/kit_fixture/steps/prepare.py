"""Validate the raw events and split them by time: the latest `--test-fraction` is the test set.

Rows that break the schema go to quarantine with a per-column report; above `--max-rejected-fraction`
the step fails and writes nothing else.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from kit_fixture import USE_CASE
from kit_fixture.features import FEATURES
from mlops_kit.validation import Column, validate

LABELS = {
    "int": Column("int", domain=tuple(USE_CASE.classes) or None, label=True),
    "string": Column("string", domain=tuple(USE_CASE.classes) or None, label=True),
    "float": Column("float", label=True),
}
SCHEMA = {
    "event_id": Column("string", unique=True),
    USE_CASE.entity: Column("string"),
    USE_CASE.event_time: Column("timestamp", minimum="2000-01-01", maximum="2100-01-01"),
    **{name: Column("string") if name == "segment" else Column("float") for name in FEATURES},
    USE_CASE.label: LABELS[USE_CASE.label_type],
}


def read_table(folder: str | Path) -> pd.DataFrame:
    files = sorted(p for p in Path(folder).rglob("*") if p.suffix in (".csv", ".parquet"))
    if not files:
        raise FileNotFoundError(f"no .csv or .parquet file under {folder}")
    return pd.concat(
        [pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p) for p in files], ignore_index=True
    )


def split_by_time(frame: pd.DataFrame, test_fraction: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    ordered = frame.sort_values(USE_CASE.event_time, kind="stable").reset_index(drop=True)
    cut = int(round(len(ordered) * (1.0 - test_fraction)))
    if cut == 0 or cut == len(ordered):
        raise ValueError(f"{len(ordered)} rows are too few to split {test_fraction:.0%} off for testing")
    return ordered.iloc[:cut].reset_index(drop=True), ordered.iloc[cut:].reset_index(drop=True)


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--raw", default="/opt/ml/processing/input/raw")
    p.add_argument("--train", default="/opt/ml/processing/train")
    p.add_argument("--test", default="/opt/ml/processing/test")
    p.add_argument("--quarantine", default="/opt/ml/processing/quarantine")
    p.add_argument("--max-rejected-fraction", type=float, required=True)
    p.add_argument("--test-fraction", type=float, default=0.2)
    args = p.parse_args(argv)
    accepted, rejected, report = validate(read_table(args.raw), SCHEMA)
    if report.rejected_fraction > args.max_rejected_fraction:
        print(f"prepare failed: {report.summary()}", file=sys.stderr)
        return 1
    try:
        train, test = split_by_time(accepted, args.test_fraction)
    except ValueError as exc:
        print(f"prepare failed: {exc}", file=sys.stderr)
        return 1
    write_parquet(train, Path(args.train) / "train.parquet")
    write_parquet(test, Path(args.test) / "test.parquet")
    if len(rejected):
        write_parquet(rejected, Path(args.quarantine) / "rejected.parquet")
    Path(args.quarantine).mkdir(parents=True, exist_ok=True)
    (Path(args.quarantine) / "report.json").write_text(json.dumps(report.to_dict(), indent=2, default=str))
    print(f"prepared {len(train):,} training and {len(test):,} test rows; {report.summary()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
