"""Ingestion end to end in moto: validated, idempotent, late records placed by event time, nothing partial."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from botocore.stub import Stubber
from features_fixtures import GROUP, NOW, records

from mlops_kit import naming
from mlops_kit.features import connect, ingest, lookup, training_set
from mlops_kit.features.store import FeatureStoreError, create_request, fill_missing, request_filler
from mlops_kit.features.validation import BatchRejected


def _objects(aws, store) -> dict[str, str]:
    location = store.offline.locate(GROUP)
    listing = aws("s3").list_objects_v2(Bucket=location.bucket, Prefix=location.prefix)
    return {o["Key"]: o["ETag"] for o in listing.get("Contents", [])}


BATCH = records(
    ("c1", "2026-01-05T10:00:00Z", 1, 10.0, "pos"),
    ("c1", "2026-01-05T12:00:00Z", 2, 30.0, "pos"),
    ("c2", "2026-01-06T08:00:00Z", 1, 5.0, "atm"),
)


def test_connect_creates_the_feature_group_in_the_emulator_as_infra_would(store, aws, local_settings):
    described = aws("sagemaker").describe_feature_group(
        FeatureGroupName=naming.feature_group(local_settings, GROUP.name)
    )
    assert described["RecordIdentifierFeatureName"] == "entity_id"
    assert described["FeatureDefinitions"] == GROUP.feature_definitions()
    assert store.offline.locate(GROUP).bucket.startswith(f"{local_settings.prefix}-features-")


def test_reingesting_the_same_batch_changes_nothing(store, aws):
    first = ingest(store, GROUP.name, BATCH, write_time=NOW)
    before = _objects(aws, store)
    second = ingest(store, GROUP.name, BATCH, write_time=NOW + 60)
    assert (first.files_written, first.files_skipped) == (3, 0)
    assert (second.files_written, second.files_skipped) == (0, 3)
    assert _objects(aws, store) == before
    assert store.get(GROUP, "c1")["amount_sum"] == 30.0


def test_a_rejected_batch_writes_nothing_anywhere(store, aws):
    bad = pd.concat([BATCH, records(("c3", None, 1, 1.0, "pos"))])
    with pytest.raises(BatchRejected, match="1 rows with a null event time"):
        ingest(store, GROUP.name, bad)
    assert _objects(aws, store) == {}
    assert store.get(GROUP, "c1") is None


def test_late_records_land_in_their_event_hour_and_never_hide_newer_values(store, aws):
    ingest(store, GROUP.name, BATCH, write_time=NOW)
    late = records(("c1", "2026-01-05T11:00:00Z", 9, 99.0, "online"))  # arrives after 12:00's record
    ingest(store, GROUP.name, late, write_time=NOW + 60)
    hours = sorted(k.split("/")[-2] for k in _objects(aws, store) if "day=05" in k)
    assert hours == ["hour=10", "hour=11", "hour=12"]
    assert store.get(GROUP, "c1")["txn_count"] == 2  # online keeps the latest by event time
    entities = pd.DataFrame(
        {"entity_id": ["c1", "c1"], "event_time": ["2026-01-05T11:30:00Z", "2026-01-05T12:30:00Z"]}
    )
    frame = training_set(store, entities, [GROUP.name])
    assert frame["txn_count"].tolist() == [9, 2]  # the late record answers for the time it describes


def test_a_corrected_record_for_the_same_event_time_wins_by_write_time(store):
    ingest(store, GROUP.name, BATCH, write_time=NOW)
    fix = records(("c2", "2026-01-06T08:00:00Z", 1, 6.0, "atm"))
    ingest(store, GROUP.name, fix, write_time=NOW + 60)
    frame = training_set(
        store, pd.DataFrame({"entity_id": ["c2"], "event_time": ["2026-01-06T09:00:00Z"]}), [GROUP]
    )
    assert frame["amount_sum"].tolist() == [6.0]
    assert store.get(GROUP, "c2")["amount_sum"] == 6.0


def test_training_set_keeps_every_entity_row_and_its_labels(store):
    ingest(store, GROUP.name, BATCH, write_time=NOW)
    entities = pd.DataFrame(
        {
            "entity_id": ["c2", "c1", "nobody", "c1"],
            "event_time": pd.to_datetime(
                ["2026-01-07T00:00", "2026-01-05T11:00", "2026-01-07T00:00", "2026-01-01T00:00"]
            ),
            "label": [1, 0, 0, 1],
        },
        index=[10, 11, 12, 13],
    )
    frame = training_set(store, entities, [GROUP.name])
    assert frame.index.tolist() == [10, 11, 12, 13]
    assert frame["label"].tolist() == [1, 0, 0, 1]
    assert frame["amount_sum"].tolist()[:2] == [5.0, 10.0]
    assert frame[["txn_count", "amount_sum", "channel"]].iloc[2:].isna().all().all()


def test_training_set_with_no_stored_records_gives_nulls(store):
    entities = pd.DataFrame({"entity_id": ["c1"], "event_time": ["2026-01-05T11:00:00Z"]})
    frame = training_set(store, entities, [GROUP.name])
    assert frame["amount_sum"].isna().all() and len(frame) == 1


def test_training_set_needs_the_groups_columns(store):
    with pytest.raises(ValueError, match="entity-usage needs entity columns event_time"):
        training_set(store, pd.DataFrame({"entity_id": ["c1"]}), [GROUP.name])


def test_an_unknown_group_is_named_with_the_known_ones(store):
    with pytest.raises(
        FeatureStoreError, match="no feature group 'nope'; this project declares: entity-usage"
    ):
        ingest(store, "nope", BATCH)


def test_lookup_gives_every_feature_with_none_for_the_unknown(store):
    ingest(store, GROUP.name, BATCH, write_time=NOW)
    fetch = lookup(store)
    assert fetch("c2") == {"txn_count": 1, "amount_sum": 5.0, "channel": "atm"}
    assert fetch("nobody") == {"txn_count": None, "amount_sum": None, "channel": None}


def test_without_an_online_store_ingest_is_offline_only_and_get_says_so(offline_only):
    report = ingest(offline_only, GROUP.name, BATCH)
    assert report.online_records == 0 and report.files_written == 3
    with pytest.raises(FeatureStoreError, match="no online store"):
        offline_only.get(GROUP, "c1")


def test_a_cloud_environment_without_the_group_deployed_says_what_to_do(aws, local_settings):
    cloud = dataclasses.replace(
        local_settings, runtime=dataclasses.replace(local_settings.runtime, kind="aws")
    )
    sagemaker = aws("sagemaker")
    stubber = Stubber(sagemaker)
    stubber.add_client_error("describe_feature_group", "ResourceNotFound", http_status_code=400)
    stubber.activate()
    store = connect(
        cloud, lambda service: sagemaker if service == "sagemaker" else aws(service), groups=[GROUP]
    )
    with pytest.raises(FeatureStoreError, match=f"feature group {cloud.prefix}-entity-usage not found"):
        ingest(store, GROUP.name, BATCH)


def test_the_create_request_is_a_valid_create_feature_group_call(local_settings):
    import botocore.session
    from botocore.validate import ParamValidator

    request = create_request(local_settings, GROUP, "bucket", "123456789012", "arn:aws:kms:us-east-1:1:key/k")
    model = botocore.session.get_session().get_service_model("sagemaker")
    report = ParamValidator().validate(request, model.operation_model("CreateFeatureGroup").input_shape)
    assert not report.has_errors(), report.generate_report()
    assert request["OnlineStoreConfig"]["TtlDuration"] == {
        "Unit": "Hours",
        "Value": local_settings.features.ttl_hours,
    }


def test_fill_missing_takes_only_what_a_record_lacks_in_one_fetch_per_group():
    stored = {"c1": {"txn_count": 4, "amount_sum": 40.0, "channel": "pos"}}
    calls = []

    def fetch(group, ids):
        calls.append((group.name, list(ids)))
        return {i: stored[i] for i in ids if i in stored}

    requests = pd.DataFrame(
        {
            "entity_id": ["c1", "c1", "nobody", None],
            "amount_sum": [None, 7.5, None, None],
            "amount": [1.0, 2.0, 3.0, 4.0],
        }
    )
    filled = fill_missing(requests, [GROUP], fetch)
    assert calls == [("entity-usage", ["c1", "nobody"])]
    assert filled["amount_sum"].tolist()[:2] == [40.0, 7.5]  # a value the record holds is kept
    assert filled["txn_count"].tolist()[:2] == [4.0, 4.0] and filled["channel"].tolist()[:2] == ["pos", "pos"]
    assert filled.iloc[2:][["txn_count", "amount_sum", "channel"]].isna().all().all()  # unknown, no id
    assert filled["amount"].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert "txn_count" not in requests.columns and requests["amount_sum"].isna().sum() == 3


def test_fill_missing_fetches_nothing_for_complete_records_or_rows_without_the_key():
    def fetch(group, ids):
        raise AssertionError(f"fetched {ids}")

    complete = pd.DataFrame({"entity_id": ["c1"], "txn_count": [1], "amount_sum": [1.0], "channel": ["x"]})
    pd.testing.assert_frame_equal(fill_missing(complete, [GROUP], fetch), complete)
    keyless = pd.DataFrame({"amount": [1.0]})
    pd.testing.assert_frame_equal(fill_missing(keyless, [GROUP], fetch), keyless)


def test_request_filler_fills_records_from_the_online_store_and_passes_plain_rows(store):
    ingest(store, GROUP.name, BATCH, write_time=NOW)
    fill = request_filler(store)
    filled = fill(pd.DataFrame({"entity_id": ["c2"], "amount_sum": [None]}))
    assert filled[["txn_count", "amount_sum", "channel"]].iloc[0].tolist() == [1.0, 5.0, "atm"]
    rows = np.zeros((1, 3))
    assert fill(rows) is rows


def test_request_filler_needs_an_online_store(offline_only):
    with pytest.raises(FeatureStoreError, match="no online store"):
        request_filler(offline_only)
