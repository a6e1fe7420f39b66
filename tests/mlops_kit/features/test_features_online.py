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
