"""The online store: latest by event time, TTL, and the same behaviour locally (DynamoDB) and in AWS."""

from __future__ import annotations

from datetime import timedelta

import boto3
import pytest
from botocore.stub import Stubber
from features_fixtures import GROUP, NOW, records

from mlops_kit.features.online import DynamoOnlineStore, RuntimeOnlineStore, latest_per_entity
from mlops_kit.features.validation import validate

TTL = timedelta(days=7)


def test_the_latest_record_per_entity_wins_and_ties_go_to_the_later_row():
    batch = validate(
        GROUP,
        records(
            ("c1", "2026-01-05T12:00:00Z", 2, 2.0, "pos"),
            ("c1", "2026-01-05T10:00:00Z", 1, 1.0, "pos"),
            ("c2", "2026-01-05T10:00:00Z", 1, None, "atm"),
            ("c2", "2026-01-05T10:00:00Z", 3, 3.5, None),
        ),
    )
    latest = {r.record_id: r for r in latest_per_entity(batch)}
    assert latest["c1"].values["txn_count"] == "2"
    assert latest["c2"].values == {
        "entity_id": "c2",
        "event_time": "2026-01-05T10:00:00.000Z",
        "txn_count": "3",
        "amount_sum": "3.5",
    }


@pytest.fixture
def dynamo(aws):
    return DynamoOnlineStore(aws("dynamodb"), lambda g: f"test-{g.name}", TTL, clock=lambda: NOW)


def test_a_late_record_does_not_replace_a_newer_one(dynamo):
    dynamo.put(validate(GROUP, records(("c1", "2026-01-05T12:00:00Z", 2, 2.0, "pos"))))
    dynamo.put(validate(GROUP, records(("c1", "2026-01-05T11:00:00Z", 1, 1.0, "atm"))))
    assert dynamo.get(GROUP, "c1")["txn_count"] == 2
    dynamo.put(validate(GROUP, records(("c1", "2026-01-05T12:00:00Z", 4, 4.0, "pos"))))  # same time: a fix
    assert dynamo.get(GROUP, "c1") == {
        "entity_id": "c1",
        "event_time": "2026-01-05T12:00:00.000Z",
        "txn_count": 4,
        "amount_sum": 4.0,
        "channel": "pos",
    }


def test_expired_records_read_as_absent(aws):
    young = DynamoOnlineStore(aws("dynamodb"), lambda g: "t", TTL, clock=lambda: NOW)
    young.put(
        validate(
            GROUP,
            records(
                ("old", "2026-01-02T23:59:59Z", 1, 1.0, "pos"), ("new", "2026-01-03T00:00:01Z", 1, 1.0, "pos")
            ),
        )
    )
    assert young.get(GROUP, "old") is None  # NOW is 2026-01-10T00:00Z: expired at 2026-01-09T23:59:59
    assert young.get(GROUP, "new")["txn_count"] == 1
    assert set(young.batch_get(GROUP, ["old", "new", "none"])) == {"new"}


def test_batch_get_pages_past_one_hundred_ids(dynamo):
    rows = [(f"c{i:03d}", "2026-01-09T00:00:00Z", i, float(i), "pos") for i in range(150)]
    dynamo.put(validate(GROUP, records(*rows)))
    found = dynamo.batch_get(GROUP, [f"c{i:03d}" for i in range(150)])
    assert len(found) == 150 and found["c149"]["txn_count"] == 149


def test_a_group_never_written_reads_as_absent(dynamo):
    assert dynamo.get(GROUP, "c1") is None
    assert dynamo.batch_get(GROUP, ["c1"]) == {}


def _runtime():
    client = boto3.client("sagemaker-featurestore-runtime", region_name="us-east-1")
    return client, Stubber(client)


def test_aws_put_sends_putrecord_to_the_online_store_only_with_the_ttl():
    client, stub = _runtime()
    stub.add_response(
        "put_record",
        {},
        {
            "FeatureGroupName": "p-e-entity-usage",
            "Record": [
                {"FeatureName": "entity_id", "ValueAsString": "c1"},
                {"FeatureName": "event_time", "ValueAsString": "2026-01-05T12:00:00.000Z"},
                {"FeatureName": "txn_count", "ValueAsString": "2"},
                {"FeatureName": "channel", "ValueAsString": "pos"},
            ],
            "TargetStores": ["OnlineStore"],
            "TtlDuration": {"Unit": "Hours", "Value": 168},
        },
    )
    with stub:
        store = RuntimeOnlineStore(client, lambda g: f"p-e-{g.name}", TTL)
        assert store.put(validate(GROUP, records(("c1", "2026-01-05T12:00:00Z", 2, None, "pos")))) == 1
    stub.assert_no_pending_responses()


def test_aws_get_and_batch_get_decode_typed_values():
    client, stub = _runtime()
    wire = [
        {"FeatureName": "entity_id", "ValueAsString": "c1"},
        {"FeatureName": "amount_sum", "ValueAsString": "2.5"},
    ]
    stub.add_response(
        "get_record", {"Record": wire}, {"FeatureGroupName": "g", "RecordIdentifierValueAsString": "c1"}
    )
    stub.add_response("get_record", {}, {"FeatureGroupName": "g", "RecordIdentifierValueAsString": "c9"})
    stub.add_response(
        "batch_get_record",
        {
            "Records": [{"FeatureGroupName": "g", "RecordIdentifierValueAsString": "c1", "Record": wire}],
            "Errors": [],
            "UnprocessedIdentifiers": [],
        },
        {"Identifiers": [{"FeatureGroupName": "g", "RecordIdentifiersValueAsString": ["c1", "c9"]}]},
    )
    with stub:
        store = RuntimeOnlineStore(client, lambda g: "g", TTL)
        assert store.get(GROUP, "c1")["amount_sum"] == 2.5
        assert store.get(GROUP, "c9") is None
        assert store.batch_get(GROUP, ["c1", "c9", "c1"]) == {
            "c1": {
                "entity_id": "c1",
                "event_time": None,
                "txn_count": None,
                "amount_sum": 2.5,
                "channel": None,
            }
        }


def test_aws_batch_get_errors_are_reported_with_an_example():
    client, stub = _runtime()
    stub.add_response(
        "batch_get_record",
        {
            "Records": [],
            "Errors": [
                {
                    "FeatureGroupName": "g",
                    "RecordIdentifierValueAsString": "c1",
                    "ErrorCode": "X",
                    "ErrorMessage": "throttled",
                }
            ],
            "UnprocessedIdentifiers": [],
        },
    )
    with stub, pytest.raises(RuntimeError, match="g: BatchGetRecord failed for 1 ids, e.g. c1: throttled"):
        RuntimeOnlineStore(client, lambda g: "g", TTL).batch_get(GROUP, ["c1"])


# --- writing in batches, and what a busy store does to them ----------------------------------------


class _Counting:
    """A DynamoDB client that counts calls and leaves the first `unprocessed` items of the first
    BatchWriteItem unprocessed, as DynamoDB does under load."""

    def __init__(self, client, unprocessed: int = 0):
        self.client, self.unprocessed, self.calls = client, unprocessed, {}

    def __getattr__(self, name):
        attribute = getattr(self.client, name)
        if not callable(attribute):
            return attribute

        def call(*args, **kwargs):
            self.calls[name] = self.calls.get(name, 0) + 1
            if name == "batch_write_item" and self.unprocessed:
                ((table, items),) = kwargs["RequestItems"].items()
                held, self.unprocessed = items[: self.unprocessed], 0
                response = attribute(RequestItems={table: items[len(held) :]})
                return {**response, "UnprocessedItems": {table: held}}
            return attribute(*args, **kwargs)

        return call


def test_local_puts_go_in_batches_of_25_and_leftovers_are_retried(aws):
    client = _Counting(aws("dynamodb"), unprocessed=3)
    store = DynamoOnlineStore(client, lambda g: "batched", TTL, clock=lambda: NOW)
    rows = [(f"c{i:03d}", "2026-01-09T00:00:00Z", i, float(i), "pos") for i in range(120)]
    assert store.put(validate(GROUP, records(*rows))) == 120
    assert client.calls["batch_write_item"] == 5 + 1  # 120 records: 5 batches, and the 3 left over
    assert client.calls.get("put_item", 0) == 0
    assert client.calls["batch_get_item"] == 2  # the stored event times, 100 ids a call
    found = store.batch_get(GROUP, [f"c{i:03d}" for i in range(120)])
    assert len(found) == 120 and found["c119"]["txn_count"] == 119


def test_a_batch_never_replaces_a_newer_record(aws):
    store = DynamoOnlineStore(aws("dynamodb"), lambda g: "late", TTL, clock=lambda: NOW)
    store.put(validate(GROUP, records(("c1", "2026-01-05T12:00:00Z", 2, 2.0, "pos"))))
    late = [("c1", "2026-01-05T11:00:00Z", 1, 1.0, "atm"), ("c2", "2026-01-05T11:00:00Z", 7, 7.0, "atm")]
    store.put(validate(GROUP, records(*late)))
    assert store.get(GROUP, "c1")["txn_count"] == 2  # kept: the stored record is newer
    assert store.get(GROUP, "c2")["txn_count"] == 7  # new entity: written in the same batch


def _put_args(record_id: str) -> dict:
    return {
        "FeatureGroupName": "g",
        "Record": [
            {"FeatureName": "entity_id", "ValueAsString": record_id},
            {"FeatureName": "event_time", "ValueAsString": "2026-01-05T12:00:00.000Z"},
            {"FeatureName": "txn_count", "ValueAsString": "2"},
            {"FeatureName": "channel", "ValueAsString": "pos"},
        ],
        "TargetStores": ["OnlineStore"],
        "TtlDuration": {"Unit": "Hours", "Value": 168},
    }


def test_aws_put_retries_a_throttled_record_with_growing_waits():
    from mlops_kit.features import online

    client, stub = _runtime()
    for _ in range(3):
        stub.add_client_error("put_record", "ThrottlingException", "slow down", 400, _put_args("c1"))
    stub.add_response("put_record", {}, _put_args("c1"))
    waits: list[float] = []
    with stub:
        store = RuntimeOnlineStore(client, lambda g: "g", TTL, sleep=waits.append)
        assert store.put(validate(GROUP, records(("c1", "2026-01-05T12:00:00Z", 2, None, "pos")))) == 1
    stub.assert_no_pending_responses()
    assert len(waits) == 3  # one wait before each retry, each within its growing (jittered) cap
    assert all(0 <= w <= online.BASE_DELAY_S * 2**i for i, w in enumerate(waits))


def test_aws_put_reports_every_record_that_failed_and_writes_the_rest():
    from mlops_kit.features import online

    client, stub = _runtime()
    # c1 is throttled on every attempt; c2 is refused outright (not worth a retry); c3 goes through.
    rows = [(f"c{i}", "2026-01-05T12:00:00Z", 2, None, "pos") for i in (1, 2, 3)]
    calls = {"c1": 0, "c2": 0, "c3": 0}

    def put_record(**kwargs):
        record_id = kwargs["Record"][0]["ValueAsString"]
        calls[record_id] += 1
        from botocore.exceptions import ClientError

        if record_id == "c1":
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "busy"}}, "PutRecord")
        if record_id == "c2":
            raise ClientError({"Error": {"Code": "ValidationError", "Message": "bad"}}, "PutRecord")
        return {}

    class Runtime:
        pass

    runtime = Runtime()
    runtime.put_record = put_record
    store = RuntimeOnlineStore(runtime, lambda g: "g", TTL, sleep=lambda _: None)
    with pytest.raises(online.OnlineWriteFailed, match=r"g: 2 of 3 records were not written") as failed:
        store.put(validate(GROUP, records(*rows)))
    assert sorted(failed.value.failed) == [
        ("c1", "ThrottlingException: busy"),
        ("c2", "ValidationError: bad"),
    ]
    assert calls == {"c1": online.MAX_ATTEMPTS, "c2": 1, "c3": 1}
