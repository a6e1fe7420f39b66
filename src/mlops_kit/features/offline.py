"""The offline store: feature records as Parquet in S3, in SageMaker Feature Store's own layout.

SageMaker writes a group's offline records under its `ResolvedOutputS3Uri`
(`s3://<bucket>/<prefix>/<account>/sagemaker/<region>/offline-store/<group>-<created>/data`), partitioned
by event time as `year=YYYY/month=MM/day=DD/hour=HH/<YYYYMMDDTHHMMSSZ>_<16 hex>.parquet`, each record with
the group's features plus `write_time`, `api_invocation_time` and `is_deleted`. The kit writes the same
files, so Athena's table over that prefix answers for batches the kit ingested too.

Ingestion is idempotent by construction: a file's name is the hash of the records it holds (sorted), so
re-ingesting a batch names the same files, which exist, and nothing is written. A late or out-of-order
record lands in the partition of its own event time, whenever it arrives. Readers keep, for each record
id and event time, the record written last (`write_time`), as SageMaker's own Athena queries do.
"""

from __future__ import annotations

import hashlib
import io
import re
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from mlops_kit.features.types import FeatureGroup
from mlops_kit.features.validation import Batch

HOUR_MS = 3_600_000
META_COLUMNS = ("write_time", "api_invocation_time", "is_deleted")
_PARTITION = re.compile(r"year=(\d{4})/month=(\d{2})/day=(\d{2})/hour=(\d{2})/")
_WORKERS = 8


@dataclass(frozen=True)
class OfflineLocation:
    """Where one group's offline records live: a bucket and the `.../data` prefix inside it."""

    bucket: str
    prefix: str

    @classmethod
    def from_uri(cls, uri: str) -> OfflineLocation:
        match = re.fullmatch(r"s3://([^/]+)/(.+?)/?", uri)
        if not match:
            raise ValueError(f"not an S3 URI: {uri!r}")
        return cls(match.group(1), match.group(2))

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


@dataclass(frozen=True)
class PlannedFile:
    """One Parquet file of a batch: its key below the group's prefix and its records."""

    key: str
    hour_ms: int
    table: pa.Table


@dataclass(frozen=True)
class WriteReport:
    files_written: int
    files_skipped: int
    rows_written: int


# --- the layout (pure) ---------------------------------------------------------------------------


def partition(hour_ms: int) -> str:
    """`year=YYYY/month=MM/day=DD/hour=HH` of the hour starting at `hour_ms`."""
    stamp = np.datetime64(int(hour_ms), "ms").astype("datetime64[s]").item()
    return f"year={stamp.year:04d}/month={stamp.month:02d}/day={stamp.day:02d}/hour={stamp.hour:02d}"


def partition_hour(key: str) -> int | None:
    """The epoch ms of the hour a key's partition holds, or None for a key outside the layout."""
    match = _PARTITION.search(key)
    if not match:
        return None
    year, month, day, hour = match.groups()
    return int(np.datetime64(f"{year}-{month}-{day}T{hour}:00", "ms").astype(np.int64))


def file_name(hour_ms: int, digest: str) -> str:
    stamp = np.datetime64(int(hour_ms), "ms").astype("datetime64[s]").item()
    return f"{stamp:%Y%m%dT%H%M%SZ}_{digest[:16]}.parquet"


def digest(table: pa.Table) -> str:
    """A hash of a table's records: the same records in the same order give the same hash."""
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return hashlib.sha256(sink.getvalue()).hexdigest()


def plan(batch: Batch) -> list[PlannedFile]:
    """Split a batch into one file per event-time hour, records sorted so the plan is deterministic."""
    if batch.rows == 0:
        return []
    group = batch.group
    hours = (batch.event_ms // HOUR_MS) * HOUR_MS
    table = batch.table.append_column("__hour", pa.array(hours, type=pa.int64()))
    table = table.append_column("__ms", pa.array(batch.event_ms, type=pa.int64()))
    keys = [("__hour", "ascending"), (group.record_identifier.name, "ascending"), ("__ms", "ascending")]
    keys += [(name, "ascending") for name in group.feature_names]
    table = table.sort_by(keys)
    sorted_hours = table.column("__hour").to_numpy()
    table = table.drop_columns(["__hour", "__ms"])
    starts = np.flatnonzero(np.r_[True, sorted_hours[1:] != sorted_hours[:-1]])
    ends = np.r_[starts[1:], len(sorted_hours)]
    files = []
    for start, end in zip(starts, ends, strict=True):
        records = table.slice(int(start), int(end - start))
        hour_ms = int(sorted_hours[start])
        files.append(
            PlannedFile(f"{partition(hour_ms)}/{file_name(hour_ms, digest(records))}", hour_ms, records)
        )
    return files


def with_meta(table: pa.Table, write_time_ms: int) -> pa.Table:
    """Records as the offline store holds them: plus `write_time`, `api_invocation_time`, `is_deleted`."""
    n = table.num_rows
    stamp = pa.array(np.full(n, write_time_ms, dtype=np.int64)).cast(pa.timestamp("ms", tz="UTC"))
    table = table.append_column("write_time", stamp)
    table = table.append_column("api_invocation_time", stamp)
    return table.append_column("is_deleted", pa.array(np.zeros(n, dtype=bool)))


def offline_schema(group: FeatureGroup) -> pa.Schema:
    stamp = pa.timestamp("ms", tz="UTC")
    meta = [
        pa.field("write_time", stamp),
        pa.field("api_invocation_time", stamp),
        pa.field("is_deleted", pa.bool_()),
    ]
    return pa.schema([*group.arrow_schema(), *meta])


# --- the S3 adapter ------------------------------------------------------------------------------


class OfflineStore:
    """Reads and writes groups' offline records in S3; `locate` says where each group's records live."""

    def __init__(self, s3: Any, locate: Callable[[FeatureGroup], OfflineLocation]):
        self.s3 = s3
        self.locate = locate

    def write(self, batch: Batch, write_time_ms: int) -> WriteReport:
        """Write the batch's files that are not there yet; an existing file holds the same records."""
        location = self.locate(batch.group)
        files = plan(batch)
        existing = set(self._list(location))  # one listing instead of a HEAD per file

        def put(planned: PlannedFile) -> bool:
            key = f"{location.prefix}/{planned.key}"
            if key in existing:
                return False
            sink = io.BytesIO()
            pq.write_table(with_meta(planned.table, write_time_ms), sink, compression="snappy")
            self.s3.put_object(Bucket=location.bucket, Key=key, Body=sink.getvalue())
            return True

        with ThreadPoolExecutor(_WORKERS) as pool:
            written = list(pool.map(put, files))
        rows = sum(f.table.num_rows for f, w in zip(files, written, strict=True) if w)
        return WriteReport(sum(written), len(written) - sum(written), rows)

    def keys(self, group: FeatureGroup, start_ms: int | None = None, end_ms: int | None = None) -> list[str]:
        """The group's Parquet keys whose partition hour overlaps [start_ms, end_ms]."""
        found = []
        for key in self._list(self.locate(group)):
            hour = partition_hour(key)
            if hour is None or not key.endswith(".parquet"):
                continue
            if start_ms is not None and hour + HOUR_MS <= start_ms:
                continue
            if end_ms is not None and hour > end_ms:
                continue
            found.append(key)
        return sorted(found)

    def _list(self, location: OfflineLocation) -> list[str]:
        paginator = self.s3.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=location.bucket, Prefix=f"{location.prefix}/")
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def download(
        self, group: FeatureGroup, folder: Path, start_ms: int | None = None, end_ms: int | None = None
    ) -> ds.Dataset:
        """Fetch the group's files for a time range into `folder`, as one Arrow dataset."""
        location = self.locate(group)
        keys = self.keys(group, start_ms, end_ms)
        folder.mkdir(parents=True, exist_ok=True)

        def fetch(indexed: tuple[int, str]) -> str:
            path = folder / f"{indexed[0]:08d}.parquet"
            body = self.s3.get_object(Bucket=location.bucket, Key=indexed[1])["Body"]
            with open(path, "wb") as out:
                for chunk in iter(lambda: body.read(1 << 20), b""):
                    out.write(chunk)
            return str(path)

        with ThreadPoolExecutor(_WORKERS) as pool:
            paths = list(pool.map(fetch, enumerate(keys)))
        return ds.dataset(paths, schema=offline_schema(group), format="parquet")

    def read(self, group: FeatureGroup, start_ms: int | None = None, end_ms: int | None = None) -> pa.Table:
        """Every stored record of the group in a time range (all versions, with the meta columns)."""
        with tempfile.TemporaryDirectory(prefix="mlops-offline-") as tmp:
            return self.download(group, Path(tmp), start_ms, end_ms).to_table()
