"""The offline store: SageMaker's layout, content-named files, late records placed by event time."""

from __future__ import annotations

import io
import re

import pyarrow.parquet as pq
import pytest
from features_fixtures import GROUP, records

from mlops_kit.features.offline import OfflineLocation, file_name, partition, partition_hour, plan
from mlops_kit.features.validation import validate

LAYOUT = re.compile(r"year=\d{4}/month=\d{2}/day=\d{2}/hour=\d{2}/\d{8}T\d{6}Z_[0-9a-f]{16}\.parquet")


def test_partition_and_file_names_follow_sagemakers_layout():
    hour = 1767236400000  # 2026-01-01T03:00Z
    assert partition(hour) == "year=2026/month=01/day=01/hour=03"
    assert partition_hour("prefix/data/year=2026/month=01/day=01/hour=03/x.parquet") == hour
    assert partition_hour("prefix/data/_manifest.json") is None
    assert file_name(hour, "ab" * 32) == "20260101T030000Z_abababababababab.parquet"


def test_resolved_uri_splits_into_bucket_and_prefix():
    location = OfflineLocation.from_uri("s3://b/offline-store/123/sagemaker/us-east-1/offline-store/g-1/data")
    assert (location.bucket, location.prefix) == (
        "b",
        "offline-store/123/sagemaker/us-east-1/offline-store/g-1/data",
    )
    with pytest.raises(ValueError, match="not an S3 URI"):
        OfflineLocation.from_uri("/tmp/data")


def test_a_batch_splits_into_one_file_per_event_hour():
    batch = validate(
        GROUP,
        records(
            ("c1", "2026-01-01T03:59:59Z", 1, 1.0, "pos"),
            ("c2", "2026-01-01T03:00:00Z", 1, 1.0, "pos"),
            ("c1", "2026-01-01T04:00:00Z", 2, 3.0, "pos"),
        ),
    )
    files = plan(batch)
    assert [f.key.split("/")[-2] for f in files] == ["hour=03", "hour=04"]
    assert all(LAYOUT.fullmatch(f.key) for f in files)
    assert files[0].table.column("entity_id").to_pylist() == ["c1", "c2"]


def test_the_plan_does_not_depend_on_row_order():
    rows = [("c1", "2026-01-01T03:10:00Z", 1, 1.0, "pos"), ("c2", "2026-01-01T03:20:00Z", 2, 2.0, "atm")]
    forward = plan(validate(GROUP, records(*rows)))
    backward = plan(validate(GROUP, records(*reversed(rows))))
    assert [f.key for f in forward] == [f.key for f in backward]


def test_different_records_give_different_file_names():
    one = plan(validate(GROUP, records(("c1", "2026-01-01T03:10:00Z", 1, 1.0, "pos"))))
    other = plan(validate(GROUP, records(("c1", "2026-01-01T03:10:00Z", 1, 1.5, "pos"))))
    assert one[0].key != other[0].key


def test_written_files_carry_the_meta_columns(store, aws):
    batch = validate(GROUP, records(("c1", "2026-01-01T03:10:00Z", 1, 1.0, "pos")))
    report = store.offline.write(batch, write_time_ms=1767300000000)
    assert (report.files_written, report.files_skipped, report.rows_written) == (1, 0, 1)
    location = store.offline.locate(GROUP)
    (key,) = store.offline.keys(GROUP)
    assert key.startswith(location.prefix + "/year=2026/month=01/day=01/hour=03/")
    body = aws("s3").get_object(Bucket=location.bucket, Key=key)["Body"].read()
    table = pq.read_table(io.BytesIO(body))
    assert table.column_names == [*GROUP.column_names, "write_time", "api_invocation_time", "is_deleted"]
    assert table.column("is_deleted").to_pylist() == [False]
    assert table.column("write_time")[0].value == 1767300000000


def test_keys_are_pruned_by_partition_hour(store):
    batch = validate(
        GROUP,
        records(("c1", "2026-01-01T03:10:00Z", 1, 1.0, "pos"), ("c1", "2026-01-02T03:10:00Z", 1, 1.0, "pos")),
    )
    store.offline.write(batch, write_time_ms=0)
    jan_2 = 1767312000000
    assert len(store.offline.keys(GROUP)) == 2
    assert [k.split("/")[-3] for k in store.offline.keys(GROUP, start_ms=jan_2)] == ["day=02"]
    assert [k.split("/")[-3] for k in store.offline.keys(GROUP, end_ms=jan_2)] == ["day=01"]
