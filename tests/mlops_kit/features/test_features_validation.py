"""Batch validation: a batch fits its group whole, or is rejected with every problem named and counted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from features_fixtures import GROUP, records

from mlops_kit.features import Feature, FeatureGroup, FeatureType
from mlops_kit.features.validation import BatchRejected, validate


def test_a_valid_batch_comes_out_typed_with_normalized_event_times():
    frame = records(
        ("c1", "2026-01-01T00:00:00Z", 1, 10.0, "pos"),
        ("c2", "2026-01-01T05:30:00+02:00", 2, 2.5, None),
    )
    batch = validate(GROUP, frame)
    assert batch.table.schema == GROUP.arrow_schema()
    assert batch.table.column("event_time").to_pylist() == [
        "2026-01-01T00:00:00.000Z",
        "2026-01-01T03:30:00.000Z",
    ]
    assert batch.event_ms.tolist() == [1767225600000, 1767238200000]
    assert batch.table.column("channel").to_pylist() == ["pos", None]


def test_datetimes_and_whole_floats_are_accepted():
    frame = records(("c1", pd.Timestamp("2026-01-01 00:00:01.5"), 3.0, 1, "pos"))
    frame["txn_count"] = frame["txn_count"].astype("float64")
    batch = validate(GROUP, frame)
    assert batch.table.column("txn_count").to_pylist() == [3]
    assert batch.table.column("amount_sum").to_pylist() == [1.0]
    assert batch.table.column("event_time").to_pylist() == ["2026-01-01T00:00:01.500Z"]


def test_a_fractional_event_time_is_stored_as_epoch_seconds():
    group = FeatureGroup("g", Feature("id", FeatureType.STRING), Feature("t", FeatureType.FRACTIONAL), ())
    batch = validate(group, pd.DataFrame({"id": ["a"], "t": ["2026-01-01T00:00:00Z"]}))
    assert batch.table.column("t").to_pylist() == [1767225600.0]


def test_missing_and_unknown_columns_are_named():
    frame = records(("c1", "2026-01-01T00:00:00Z", 1, 1.0, "pos")).drop(columns=["amount_sum"])
    frame["surprise"] = 1
    with pytest.raises(BatchRejected) as caught:
        validate(GROUP, frame)
    assert caught.value.problems == [
        "missing columns: amount_sum",
        "unknown columns (not features of entity-usage): surprise",
    ]


def test_wrong_types_are_counted_per_column_with_an_example():
    frame = records(
        ("c1", "2026-01-01T00:00:00Z", 1.5, "ten", 7),
        ("c2", "2026-01-01T00:00:00Z", 2, "11", 8),
        ("c3", "2026-01-01T00:00:00Z", "x", "zz", 9),
    )
    frame["channel"] = frame["channel"].astype("int64")
    with pytest.raises(BatchRejected) as caught:
        validate(GROUP, frame)
    assert caught.value.rows == 3
    assert caught.value.problems == [
        "column txn_count: expected Integral, 2 rows are not Integral (e.g. 1.5)",
        "column amount_sum: expected Fractional, 2 rows are not Fractional (e.g. 'ten')",
        "column channel: expected String, the column is int64",
    ]


def test_null_record_ids_and_event_times_are_counted():
    frame = records(
        (None, "2026-01-01T00:00:00Z", 1, 1.0, "pos"),
        ("c2", None, 1, 1.0, "pos"),
        ("c3", np.nan, 1, 1.0, "pos"),
    )
    with pytest.raises(BatchRejected) as caught:
        validate(GROUP, frame)
    assert caught.value.problems == [
        "column entity_id: 1 rows with a null record id",
        "column event_time: 2 rows with a null event time",
    ]
    assert "entity-usage: batch of 3 rows rejected, nothing written" in str(caught.value)


def test_unparseable_event_times_are_counted():
    frame = records(("c1", "yesterday", 1, 1.0, "pos"), ("c2", "2026-01-01", 1, 1.0, "pos"))
    with pytest.raises(
        BatchRejected,
        match=r"event_time: expected String, 1 rows are not ISO-8601 times \(e.g. 'yesterday'\)",
    ):
        validate(GROUP, frame)


def test_a_boolean_column_is_not_a_number():
    frame = records(("c1", "2026-01-01T00:00:00Z", True, 1.0, "pos"))
    with pytest.raises(BatchRejected, match="txn_count: expected Integral, the column is bool"):
        validate(GROUP, frame)
