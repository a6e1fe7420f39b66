"""The pipeline's feature ingestion step: `python -m mlops_kit.features.job` in a SageMaker job.

Reads Parquet files of feature records (the Prepare step's `features` output), named
`<group name>.parquet` or kept in a folder per group (`<group name>/part-00003.parquet`), and ingests
each file into its feature group: the offline store (idempotent files in SageMaker's layout) and the
online store. One file at a time, so a process holds one partition's records at most. Everything it
needs comes as arguments, since a job has no settings file; the clients are plain boto3 ones (the
executor points them at the emulator through AWS_ENDPOINT_URL).

Sharded over instances (`ShardedByS3Key` on the record files, which Prepare wrote per entity-hash
partition), each instance ingests whole entities, so the online store's latest record per entity is the
same whatever the number of instances. Each instance writes `ingest-<host>.json` (its own name, from
`resourceconfig.json`) with what it wrote per group.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
from botocore.config import Config

from mlops_kit import sharding
from mlops_kit.features.online import OnlineWriteFailed
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
    p.add_argument(
        "--batch-rows", type=int, default=500_000, help="records ingested at once: the memory bound"
    )
    return p


def load_groups(reference: str) -> tuple[FeatureGroup, ...]:
    module, _, attribute = reference.partition(":")
    groups = getattr(importlib.import_module(module), attribute)
    return tuple(groups() if callable(groups) else groups)


def _batches(files: list[Path], rows: int) -> Iterator[pd.DataFrame]:
    """The files' records in batches of about `rows` (whole files; one file may exceed it): few batches
    mean few offline files (one per event-time hour and batch), and the limit bounds the memory."""
    pending: list[pd.DataFrame] = []
    held = 0
    for path in files:
        frame = pd.read_parquet(path)
        pending.append(frame)
        held += len(frame)
        if held >= rows:
            yield pd.concat(pending, ignore_index=True) if len(pending) > 1 else pending[0]
            pending, held = [], 0
    if pending:
        yield pd.concat(pending, ignore_index=True) if len(pending) > 1 else pending[0]


# The job makes a request per offline file and per 25 online records: botocore's checking of the
# parameters the kit itself builds was a twentieth of the job's CPU, and more connections than the
# default 10 keep the two writer pools (8 threads each) from waiting on one another.
_CONFIG = Config(parameter_validation=False, max_pool_connections=20)


def _client(service: str) -> Any:
    return boto3.client(service, config=_CONFIG)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    groups = {g.name: g for g in load_groups(args.definitions)}
    files = sorted(Path(args.records).rglob("*.parquet"))
    root = Path(args.records)
    owner = {f: f.stem if f.parent == root else f.parent.name for f in files}  # <group>.parquet or <group>/
    unknown = sorted({name for name in owner.values() if name not in groups})
    if unknown:
        problem = f"records for undeclared groups {', '.join(unknown)}"
        print(f"feature ingestion failed: {problem} under {args.records}", file=sys.stderr)
        return 1
    if not files:  # an instance of a sharded job may get no object: it has nothing to write
        print(f"no record files under {args.records}: nothing to ingest on this instance", flush=True)
    store = connect_named(
        list(groups.values()),
        lambda g: f"{args.resource_prefix}-{g.name}",
        timedelta(hours=args.ttl_hours),
        args.online,
        _client,
        future_tolerance=timedelta(hours=args.future_tolerance_hours),
    )
    report: dict[str, dict[str, int]] = {}
    for group in sorted(set(owner.values())):
        for chunk in _batches([f for f in files if owner[f] == group], args.batch_rows):
            try:
                result = ingest(store, group, chunk)
            except (ValueError, FeatureStoreError, OnlineWriteFailed) as exc:
                print(f"feature ingestion failed for {group}: {exc}", file=sys.stderr)
                return 1
            counts = report.setdefault(
                group,
                {"rows": 0, "files_written": 0, "files_skipped": 0, "online_records": 0, "online_future": 0},
            )
            counts["rows"] += result.rows
            counts["files_written"] += result.files_written
            counts["files_skipped"] += result.files_skipped
            counts["online_records"] += result.online_records
            counts["online_future"] += result.online_future
            print(f"{group}: {result.rows:,} records, {result.files_written:,} new files", flush=True)
    out = Path(args.ingest)
    out.mkdir(parents=True, exist_ok=True)
    name = sharding.part_name("ingest", sharding.resources().current_host, ".json")
    tmp = out / f".{name}.tmp"
    tmp.write_text(json.dumps(report, indent=2, sort_keys=True))
    tmp.replace(out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
