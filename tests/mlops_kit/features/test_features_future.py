"""Records from the future never reach the online store, and `repair` rewrites a group's online store
from the offline store (each entity's latest record that is not from the future)."""

from __future__ import annotations

from datetime import timedelta

import boto3
import pandas as pd
import pytest
from botocore.stub import ANY, Stubber
from features_fixtures import GROUP, NOW, records

from mlops_kit import settings
from mlops_kit.features.online import DynamoOnlineStore, RuntimeOnlineStore, latest_allowed_ms
from mlops_kit.features.store import connect, ingest, repair
from mlops_kit.features.validation import validate

TTL = timedelta(days=7)
HOUR = timedelta(hours=1)
EDGE = pd.Timestamp(NOW + 3600, unit="s", tz="UTC")  # NOW + the default tolerance of one hour


def _iso(stamp: pd.Timestamp) -> str:
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def test_the_bound_is_now_plus_the_tolerance():
    assert latest_allowed_ms(NOW, HOUR) == int(NOW * 1000) + 3_600_000
    assert latest_allowed_ms(NOW, timedelta(0)) == int(NOW * 1000)


def test_a_record_at_the_bound_is_taken_and_one_ms_past_it_refused(aws):
    store = DynamoOnlineStore(aws("dynamodb"), lambda g: "t", TTL, clock=lambda: NOW, future_tolerance=HOUR)
    at_edge = _iso(EDGE)
    past_edge = _iso(EDGE + pd.Timedelta(milliseconds=1))
    assert (
        store.put(
            validate(GROUP, records(("edge", at_edge, 1, 1.0, "pos"), ("past", past_edge, 2, 2.0, "pos")))
        )
        == 1
    )
    assert store.get(GROUP, "edge")["txn_count"] == 1
    assert store.get(GROUP, "past") is None


def test_an_entitys_true_record_is_kept_beside_its_record_from_the_future(aws):
    store = DynamoOnlineStore(aws("dynamodb"), lambda g: "t", TTL, clock=lambda: NOW)
    batch = validate(
        GROUP,
        records(("c1", "2026-01-09T12:00:00Z", 5, 5.0, "pos"), ("c1", "2099-01-01T00:00:00Z", 9, 9.0, "atm")),
    )
    assert store.put(batch) == 1
    assert store.get(GROUP, "c1")["txn_count"] == 5
    # and a later true record still replaces it: nothing from the future is in the way
    store.put(validate(GROUP, records(("c1", "2026-01-09T13:00:00Z", 6, 6.0, "pos"))))
    assert store.get(GROUP, "c1")["txn_count"] == 6


def test_the_tolerance_comes_from_the_settings(aws):
    local = settings.load("local")
    store = connect(local, aws, groups=[GROUP], clock=lambda: NOW)
    assert store.online.future_tolerance == timedelta(hours=local.training.future_tolerance_hours)


def test_ingest_counts_what_the_online_store_refused(aws):
    store = connect(settings.load("local"), aws, groups=[GROUP], clock=lambda: NOW)
    frame = records(
        ("c1", "2026-01-09T12:00:00Z", 1, 1.0, "pos"),
        ("c2", "2099-01-01T00:00:00Z", 2, 2.0, "pos"),
        ("c3", "2099-06-01T00:00:00Z", 3, 3.0, "pos"),
    )
    report = ingest(store, GROUP.name, frame, write_time=NOW)
    assert (report.rows, report.online_records, report.online_future) == (3, 1, 2)
    assert report.online_not_after == "2026-01-10T01:00:00+00:00"
    assert store.get(GROUP, "c2") is None
    assert len(store.offline.read(GROUP)) == 3  # history keeps them; only serving refuses them


def _poisoned(aws):
    """A group whose online store took records from 2099 (as before this rule, or by another writer)."""
    store = connect(settings.load("local"), aws, groups=[GROUP], clock=lambda: NOW)
    lax = DynamoOnlineStore(
        aws("dynamodb"),
        store.online.table_name,
        TTL,
        clock=lambda: NOW,
        future_tolerance=timedelta(days=40_000),
    )
    rows = [
        ("c1", "2026-01-09T10:00:00Z", 1, 1.0, "pos"),
        ("c1", "2026-01-09T11:00:00Z", 2, 2.0, "pos"),  # c1's true latest
        ("c1", "2099-01-01T00:00:00Z", 99, 99.0, "atm"),
        ("c2", "2099-01-01T00:00:00Z", 98, 98.0, "atm"),  # c2 has only a record from the future
        ("c3", "2026-01-09T09:00:00Z", 3, 3.0, "pos"),
    ]
    batch = validate(GROUP, records(*rows))
    store.offline.write(batch, int(NOW * 1000))
    lax.put(batch)
    assert store.get(GROUP, "c1")["txn_count"] == 99 and store.get(GROUP, "c2")["txn_count"] == 98
    return store


def test_repair_rewrites_the_online_store_from_the_offline_store(aws):
    store = _poisoned(aws)
    report = repair(store, GROUP.name)
    assert (report.offline_rows, report.entities, report.written, report.deleted, report.future_rows) == (
        5,
        3,
        2,
        1,
        2,
    )
    assert store.get(GROUP, "c1")["txn_count"] == 2
    assert store.get(GROUP, "c1")["event_time"] == "2026-01-09T11:00:00.000Z"
    assert store.get(GROUP, "c2") is None
    assert store.get(GROUP, "c3")["txn_count"] == 3
    again = repair(store, GROUP.name)  # a repair of a repaired group changes nothing
    assert (again.written, again.deleted) == (2, 1) and store.get(GROUP, "c1")["txn_count"] == 2


@pytest.mark.parametrize(("first", "last"), [(1, 7), (7, 1)])
def test_repair_takes_the_last_written_of_equal_event_times(aws, first: int, last: int):
    """Both orders: whichever file the listing gives first, the record written last wins."""
    store = connect(settings.load("local"), aws, groups=[GROUP], clock=lambda: NOW)
    for count, written in ((first, 1_000), (last, 2_000)):
        batch = validate(GROUP, records(("c1", "2026-01-09T11:00:00Z", count, float(count), "pos")))
        store.offline.write(batch, written)
    repair(store, GROUP.name)
    assert store.get(GROUP, "c1")["txn_count"] == last


def _runtime():
    client = boto3.client("sagemaker-featurestore-runtime", region_name="us-east-1")
    return client, Stubber(client)


def test_aws_put_leaves_records_from_the_future_out():
    client, stub = _runtime()
    stub.add_response(
        "put_record",
        {},
        {"FeatureGroupName": "g", "Record": ANY, "TargetStores": ["OnlineStore"], "TtlDuration": ANY},
    )
    with stub:
        store = RuntimeOnlineStore(client, lambda g: "g", TTL, clock=lambda: NOW)
        batch = validate(
            GROUP,
            records(
                ("c1", "2026-01-09T12:00:00Z", 1, 1.0, "pos"), ("c2", "2099-01-01T00:00:00Z", 2, 2.0, "pos")
            ),
        )
        assert store.put(batch) == 1
    stub.assert_no_pending_responses()


def test_aws_replace_deletes_the_online_record_before_putting_the_older_one():
    """SageMaker's online store keeps the record with the latest event time: a true, older record
    replaces one from the future only after a hard delete."""
    client, stub = _runtime()
    stub.add_response(
        "delete_record",
        {},
        {
            "FeatureGroupName": "g",
            "RecordIdentifierValueAsString": "c1",
            "EventTime": "2026-01-10T00:00:00.000Z",
            "TargetStores": ["OnlineStore"],
            "DeletionMode": "HardDelete",
        },
    )
    stub.add_response(
        "put_record",
        {},
        {"FeatureGroupName": "g", "Record": ANY, "TargetStores": ["OnlineStore"], "TtlDuration": ANY},
    )
    with stub:
        store = RuntimeOnlineStore(client, lambda g: "g", TTL, clock=lambda: NOW)
        from mlops_kit.features.online import latest_per_entity

        [record] = latest_per_entity(validate(GROUP, records(("c1", "2026-01-09T12:00:00Z", 1, 1.0, "pos"))))
        assert store.replace(GROUP, [record]) == 1
    stub.assert_no_pending_responses()


@pytest.mark.parametrize("tolerance", [0.0, 1.0])
def test_the_ingestion_job_passes_its_tolerance(tolerance: float, monkeypatch, tmp_path):
    from mlops_kit.features import job

    seen = {}

    def connect_named(*args, **kwargs):
        seen.update(kwargs)
        raise SystemExit(0)

    monkeypatch.setattr(job, "connect_named", connect_named)
    (tmp_path / "entity-usage.parquet").write_bytes(b"")
    monkeypatch.setattr(job, "load_groups", lambda ref: (GROUP,))
    with pytest.raises(SystemExit):
        job.main(
            [
                "--records", str(tmp_path), "--definitions", "x:y", "--resource-prefix", "p", "--ttl-hours", "1",
                "--online", "dynamodb", "--future-tolerance-hours", str(tolerance),
            ]
        )  # fmt: skip
    assert seen["future_tolerance"] == timedelta(hours=tolerance)
