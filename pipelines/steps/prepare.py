"""Ingest, validate and build features: raw transactions in, training and test examples out.

raw (S3: CSV / Parquet / JSON lines)
  -> ingest: typed by the raw schema
  -> validate: rejected rows to quarantine with a per-column report; fail above the threshold
  -> features: feature-group records (what the feature store holds), then each transaction joined
     point-in-time to its customer's features as of just before it (no leakage)
  -> split by time: the latest `test_fraction` of events is the test set

Sharded (the Partition step before it, `mlops_kit.partition`), each instance gets whole entity-hash
partitions and prepares them one at a time, splitting at the one instant the Partition step chose for
all (`plan.json`'s `split_time`): so one instance or eight give the same examples, and a process holds
one partition at a time. Each partition's outputs are named after it (`train/part-00003.parquet`), so
instances never write the same file. Checked per partition: the rejected fraction, and the uniqueness of
transaction ids (an id repeated in two partitions, i.e. for two customers, is not seen).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pandas as pd

from mlops_kit import partition
from mlops_kit.features.pit import point_in_time
from mlops_kit.validation import ValidationReport, table_files, validate
from pipelines.feature_transforms import compute_aggregates
from pipelines.features import FEATURE_GROUPS, TRANSACTION_AGGREGATES
from pipelines.schema import EVENT_TIME, RAW_SCHEMA
from pipelines.steps.io import read_table, write_json, write_parquet

# Features are looked up as of just before each transaction: the state serving sees when it scores it.
LOOKUP_OFFSET = pd.Timedelta(microseconds=1)


class ValidationFailed(ValueError):
    def __init__(self, report: ValidationReport, threshold: float):
        self.report = report
        super().__init__(
            f"{report.rejected:,} of {report.rows:,} rows rejected ({report.rejected_fraction:.2%}), "
            f"above the allowed {threshold:.2%}: {report.summary()}"
        )


@dataclass(frozen=True)
class Prepared:
    train: pd.DataFrame
    test: pd.DataFrame
    rejected: pd.DataFrame
    report: ValidationReport
    records: dict[str, pd.DataFrame]


def prepare(
    raw: pd.DataFrame,
    max_rejected_fraction: float,
    test_fraction: float,
    ttl_hours: int,
    future_tolerance_hours: float = 1.0,
    now: pd.Timestamp | None = None,
    split_at: pd.Timestamp | None = None,
) -> Prepared:
    """Validate, build the feature records and the point-in-time examples, and split them by time: at
    `split_at` when given (the sharded pipeline's one instant), else the latest `test_fraction`."""
    accepted, rejected, report = validate(
        raw, RAW_SCHEMA, now=now, future_tolerance=pd.Timedelta(hours=future_tolerance_hours)
    )
    if report.rejected_fraction > max_rejected_fraction:
        raise ValidationFailed(report, max_rejected_fraction)
    if report.accepted == 0:
        raise ValueError("no rows left after validation")
    records = compute_aggregates(accepted)
    examples = training_examples(accepted, records, timedelta(hours=ttl_hours))
    if split_at is None:
        train, test = split_by_time(examples, test_fraction)
    else:
        train, test = split_at_time(examples, split_at)
    return Prepared(train, test, rejected, report, records)


def training_examples(
    transactions: pd.DataFrame, records: dict[str, pd.DataFrame], ttl: timedelta
) -> pd.DataFrame:
    """Each transaction with its customer's aggregates as of just before it."""
    entities = transactions.sort_values(EVENT_TIME, kind="stable").reset_index(drop=True)
    lookup = entities.assign(**{EVENT_TIME: entities[EVENT_TIME] - LOOKUP_OFFSET})
    groups = {g.name: g for g in FEATURE_GROUPS}
    joined = point_in_time(
        lookup,
        [(groups[TRANSACTION_AGGREGATES.name], records[TRANSACTION_AGGREGATES.name])],
        ttl,
    )
    joined[EVENT_TIME] = entities[EVENT_TIME]
    return joined


def split_by_time(frame: pd.DataFrame, test_fraction: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test fraction must be between 0 and 1, got {test_fraction}")
    ordered = frame.sort_values(EVENT_TIME, kind="stable").reset_index(drop=True)
    cut = int(round(len(ordered) * (1.0 - test_fraction)))
    if cut == 0 or cut == len(ordered):
        raise ValueError(f"{len(ordered)} rows are too few to split {test_fraction:.0%} off for testing")
    return ordered.iloc[:cut].reset_index(drop=True), ordered.iloc[cut:].reset_index(drop=True)


def split_at_time(frame: pd.DataFrame, at: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Examples before `at` for training, at or after it for testing (either may be empty in a shard)."""
    ordered = frame.sort_values(EVENT_TIME, kind="stable").reset_index(drop=True)
    times = pd.to_datetime(ordered[EVENT_TIME], utc=True)
    later = (times >= at).to_numpy()
    return ordered[~later].reset_index(drop=True), ordered[later].reset_index(drop=True)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--raw", default="/opt/ml/processing/input/raw")
    p.add_argument("--train", default="/opt/ml/processing/train")
    p.add_argument("--test", default="/opt/ml/processing/test")
    p.add_argument("--features", default="/opt/ml/processing/features")
    p.add_argument("--quarantine", default="/opt/ml/processing/quarantine")
    p.add_argument("--max-rejected-fraction", type=float, required=True)
    p.add_argument("--test-fraction", type=float, default=0.2)
    p.add_argument("--ttl-hours", type=int, default=24 * 7)
    p.add_argument("--future-tolerance-hours", type=float, default=1.0)
    p.add_argument("--plan", default=None, help="the Partition step's plan.json folder (the split time)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        split_at = None
        if args.plan:
            chosen = partition.read_plan(args.plan)["split_time"]
            split_at = pd.Timestamp(chosen) if chosen else None
        parts = table_files(args.raw)
    except (ValueError, FileNotFoundError) as exc:
        print(f"prepare failed: {exc}", file=sys.stderr)
        return 1
    totals = {"train": 0, "test": 0, "rejected": 0}
    written: list[Path] = []
    for part in parts:  # one partition at a time: whole entities, bounded memory
        try:
            raw = read_table(part)
            if len(raw) == 0:
                continue
            prepared = prepare(
                raw,
                args.max_rejected_fraction,
                args.test_fraction,
                args.ttl_hours,
                args.future_tolerance_hours,
                split_at=split_at,
            )
        except ValueError as exc:
            for path in written:  # a failed step leaves no output behind, not even earlier partitions'
                path.unlink(missing_ok=True)
            print(f"prepare failed on {part.name}: {exc}", file=sys.stderr)
            return 1
        written += write_outputs(prepared, args, part.stem)
        totals["train"] += len(prepared.train)
        totals["test"] += len(prepared.test)
        totals["rejected"] += prepared.report.rejected
    print(
        f"prepared {totals['train']:,} training and {totals['test']:,} test examples from {len(parts)} "
        f"partition(s); {totals['rejected']:,} rows quarantined"
    )
    return 0


def write_outputs(prepared: Prepared, args: argparse.Namespace, stem: str) -> list[Path]:
    """One partition's outputs, each file named after the partition; returns the files written."""
    written = []
    if len(prepared.train):
        written.append(write_parquet(prepared.train, Path(args.train) / f"{stem}.parquet"))
    if len(prepared.test):
        written.append(write_parquet(prepared.test, Path(args.test) / f"{stem}.parquet"))
    for name, frame in prepared.records.items():
        if len(frame):
            written.append(write_parquet(frame, Path(args.features) / name / f"{stem}.parquet"))
    if len(prepared.rejected):
        written.append(write_parquet(prepared.rejected, Path(args.quarantine) / f"rejected-{stem}.parquet"))
    written.append(write_json(prepared.report.to_dict(), Path(args.quarantine) / f"report-{stem}.json"))
    return written


if __name__ == "__main__":
    sys.exit(main())
