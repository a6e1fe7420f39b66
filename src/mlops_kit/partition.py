"""The Partition step: raw rows into entity-hash partitions, for the steps sharded over instances.

`python -m mlops_kit.partition` in a one-instance processing job reads every CSV, Parquet or JSON-lines
file of its input a batch at a time and writes `part-00000.parquet` ... one object per partition, each
holding every row of the entities that hash to it (`sharding.partition_of` on the use case's entity
column). The next steps read these objects with `ShardedByS3Key`, so an entity's whole history lands on
one instance. The number of partitions is the larger of `--min-partitions` and rows / `--partition-rows`,
so a step that works a partition at a time holds at most about `--partition-rows` rows, whatever the
input's size.

It also writes `plan.json`: the partition count, the row count and, with `--time-column`, the time that
splits the rows' event times at `--split-quantile` (the first event time of the later part), so that every
shard splits train from test at the same instant.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mlops_kit import sharding, validation

PLAN = "plan.json"


def part_file(index: int) -> str:
    return f"part-{index:05d}.parquet"


def batches(path: Path, rows: int, columns: Sequence[str] | None = None) -> Iterator[pa.Table]:
    """A file's rows, `rows` at a time for Parquet (a CSV or JSON-lines file is read whole)."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            source = pq.ParquetFile(path)
            for batch in source.iter_batches(batch_size=rows, columns=list(columns) if columns else None):
                yield pa.Table.from_batches([batch])
            return
        if suffix == ".csv":
            frame = pd.read_csv(path, encoding="utf-8", encoding_errors="replace")
        else:
            frame = pd.read_json(path, lines=True)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise ValueError(f"{path}: cannot be read as {suffix[1:]}: {exc}") from None
    if columns:
        frame = frame[[c for c in columns if c in frame.columns]]
    yield pa.Table.from_pandas(frame, preserve_index=False)


def partition_count(rows: int, partition_rows: int, minimum: int) -> int:
    """Enough partitions that none holds more than about `partition_rows` rows, and at least `minimum`."""
    if partition_rows < 1 or minimum < 1:
        raise ValueError("partition_rows and the minimum number of partitions must be at least 1")
    return max(minimum, math.ceil(rows / partition_rows))


def split_time(times: np.ndarray, quantile: float) -> pd.Timestamp | None:
    """The first event time of the latest (1 - quantile) of the events: rows before it are the earlier
    part (train), rows at or after it the later part (test). None when no time is known."""
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"the split quantile must be between 0 and 1, got {quantile}")
    known = times[~np.isnat(times)]
    if len(known) == 0:
        return None
    cut = int(round(len(known) * quantile))
    if cut == 0 or cut == len(known):
        raise ValueError(f"{len(known)} rows are too few to split {1 - quantile:.0%} off by time")
    return pd.Timestamp(np.partition(known.astype("int64"), cut)[cut], tz="UTC")


def _times(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    values = pd.to_datetime(column.to_pandas(), utc=True, format="ISO8601", errors="coerce")
    return values.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")


def run(
    raw: Path,
    parts: Path,
    plan_folder: Path,
    *,
    key: str,
    time_column: str | None,
    split_quantile: float,
    min_partitions: int,
    partition_rows: int,
    batch_rows: int = 200_000,
) -> dict[str, Any]:
    """Partition every raw file; returns the plan (also written to `plan_folder/plan.json`)."""
    files = validation.table_files(raw)
    # Pass 1: the row count, every file's schema and the event times (8 bytes a row).
    rows, schemas, times = 0, [], []
    for path in files:
        if path.suffix.lower() == ".parquet":
            schema = pq.read_schema(path)
            if key not in schema.names:
                raise ValueError(f"{path}: no entity column {key!r}; it has {', '.join(schema.names)}")
            schemas.append(schema)
            rows += pq.ParquetFile(path).metadata.num_rows
            wanted = [time_column] if time_column and time_column in schema.names else []
            for table in batches(path, batch_rows, wanted) if wanted else ():
                times.append(_times(table.column(time_column)))
            continue
        for table in batches(path, batch_rows):
            if key not in table.column_names:
                raise ValueError(f"{path}: no entity column {key!r}; it has {', '.join(table.column_names)}")
            schemas.append(table.schema)
            rows += table.num_rows
            if time_column and time_column in table.column_names:
                times.append(_times(table.column(time_column)))
    schema = unify(schemas)
    split = split_time(np.concatenate(times), split_quantile) if times else None
    count = partition_count(rows, partition_rows, min_partitions)
    # Pass 2: each batch's rows to their entities' partitions (one writer, so one object, per partition).
    parts.mkdir(parents=True, exist_ok=True)
    writers = [pq.ParquetWriter(parts / f".{part_file(i)}.tmp", schema) for i in range(count)]
    written = np.zeros(count, dtype=np.int64)
    try:
        for path in files:
            for table in batches(path, batch_rows):
                table = _conform(table, schema, path)
                index = sharding.partition_of(table.column(key).to_pandas(), count)
                order = np.argsort(index, kind="stable")
                bounds = np.searchsorted(index[order], np.arange(count + 1))
                for p in range(count):
                    if bounds[p + 1] > bounds[p]:
                        writers[p].write_table(table.take(order[bounds[p] : bounds[p + 1]]))
                        written[p] += bounds[p + 1] - bounds[p]
    finally:
        for writer in writers:
            writer.close()
    for i in range(count):  # every partition is an object, even an empty one: the plan names them all
        os.replace(parts / f".{part_file(i)}.tmp", parts / part_file(i))
    plan = {
        "partitions": count,
        "rows": int(rows),
        "rows_per_partition": {"max": int(written.max()), "min": int(written.min())},
        "key": key,
        "time_column": time_column,
        "split_quantile": split_quantile,
        "split_time": split.isoformat() if split is not None else None,
    }
    plan_folder.mkdir(parents=True, exist_ok=True)
    tmp = plan_folder / f".{PLAN}.tmp"
    tmp.write_text(json.dumps(plan, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, plan_folder / PLAN)
    return plan


def unify(schemas: Sequence[pa.Schema]) -> pa.Schema:
    """One schema for every file: each column's types promoted (int to float, null to anything), or
    text where files disagree beyond that (a time in one, a string in another): validation parses text."""
    fields: dict[str, list[pa.Field]] = {}
    for schema in schemas:
        for item in schema:
            fields.setdefault(item.name, []).append(item)
    unified = []
    for name, found in fields.items():
        try:
            unified.append(pa.unify_schemas([pa.schema([f]) for f in found], promote_options="permissive")[0])
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            unified.append(pa.field(name, pa.large_string()))
    return pa.schema(unified)


def _conform(table: pa.Table, schema: pa.Schema, path: Path) -> pa.Table:
    """A batch with the unified schema: missing columns as nulls, types promoted."""
    columns = []
    for field in schema:
        if field.name in table.column_names:
            columns.append(table.column(field.name))
        else:
            columns.append(pa.nulls(table.num_rows, field.type))
    try:
        return pa.table(columns, names=schema.names).cast(schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise ValueError(f"{path}: its columns do not fit the other raw files' types: {exc}") from None


def read_plan(folder: Path | str) -> dict[str, Any]:
    """The Partition step's plan, from the folder it was staged in."""
    found = sorted(Path(folder).rglob(PLAN))
    if not found:
        raise FileNotFoundError(f"no {PLAN} under {folder}: the Partition step's plan output is missing")
    return json.loads(found[0].read_text())


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--raw", default="/opt/ml/processing/input/raw")
    p.add_argument("--parts", default="/opt/ml/processing/parts")
    p.add_argument("--plan", default="/opt/ml/processing/plan")
    p.add_argument("--key", required=True, help="the entity column: its rows stay together")
    p.add_argument("--time-column", default=None)
    p.add_argument("--split-quantile", type=float, default=0.8)
    p.add_argument("--min-partitions", type=int, required=True)
    p.add_argument("--partition-rows", type=int, required=True)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        plan = run(
            Path(args.raw),
            Path(args.parts),
            Path(args.plan),
            key=args.key,
            time_column=args.time_column,
            split_quantile=args.split_quantile,
            min_partitions=args.min_partitions,
            partition_rows=args.partition_rows,
        )
    except (ValueError, FileNotFoundError) as exc:
        print(f"partition failed: {exc}", file=sys.stderr)
        return 1
    sizes = plan["rows_per_partition"]
    print(
        f"{plan['rows']:,} rows in {plan['partitions']} partitions by {plan['key']} "
        f"({sizes['min']:,} to {sizes['max']:,} rows each); split at {plan['split_time']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
