"""The pipeline's feature ingestion step: `python -m mlops_kit.features.job` in a SageMaker job.

Reads `<group name>.parquet` files of feature records (the Prepare step's `features` output) and
ingests each into its feature group: the offline store (idempotent files in SageMaker's layout) and the
online store. Everything it needs comes as arguments, since a job has no settings file; the clients are
plain boto3 ones (the executor points them at the emulator through AWS_ENDPOINT_URL). Writes
`ingest.json` with what was written per group.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import boto3
import pandas as pd

from mlops_kit.features.store import FeatureStoreError, connect_named, ingest
from mlops_kit.features.types import FeatureGroup


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Ingest feature records into the feature store.")
    p.add_argument("--records", default="/opt/ml/processing/input/records")
    p.add_argument("--ingest", default="/opt/ml/processing/ingest", help="where ingest.json goes")
    p.add_argument("--definitions", required=True, help="module:attribute of the FeatureGroup list")
    p.add_argument("--resource-prefix", required=True, help="feature group names are <prefix>-<group>")
    p.add_argument("--ttl-hours", type=int, required=True)
    p.add_argument("--online", choices=("dynamodb", "runtime", "none"), required=True)
    p.add_argument(
        "--future-tolerance-hours",
        type=float,
        default=1.0,
        help="the online store refuses records whose event time lies further past now",
    )
    return p


def load_groups(reference: str) -> tuple[FeatureGroup, ...]:
    module, _, attribute = reference.partition(":")
    groups = getattr(importlib.import_module(module), attribute)
    return tuple(groups() if callable(groups) else groups)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    groups = {g.name: g for g in load_groups(args.definitions)}
    files = sorted(Path(args.records).rglob("*.parquet"))
    unknown = [f.stem for f in files if f.stem not in groups]
    if unknown or not files:
        problem = f"records for undeclared groups {', '.join(unknown)}" if unknown else "no record files"
        print(f"feature ingestion failed: {problem} under {args.records}", file=sys.stderr)
        return 1
    store = connect_named(
        list(groups.values()),
        lambda g: f"{args.resource_prefix}-{g.name}",
        timedelta(hours=args.ttl_hours),
        args.online,
        boto3.client,
        future_tolerance=timedelta(hours=args.future_tolerance_hours),
    )
    report = {}
    for path in files:
        try:
            result = ingest(store, path.stem, pd.read_parquet(path))
        except (ValueError, FeatureStoreError) as exc:
            print(f"feature ingestion failed for {path.stem}: {exc}", file=sys.stderr)
            return 1
        report[path.stem] = {
            "rows": result.rows,
            "files_written": result.files_written,
            "files_skipped": result.files_skipped,
            "online_records": result.online_records,
            "online_future": result.online_future,
        }
        print(f"{path.stem}: {result.rows:,} records, {result.files_written:,} new files", flush=True)
    out = Path(args.ingest)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ".ingest.json.tmp"
    tmp.write_text(json.dumps(report, indent=2, sort_keys=True))
    tmp.replace(out / "ingest.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
