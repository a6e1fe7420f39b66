"""Feature group definitions: what infra and the stores read from them."""

from __future__ import annotations

import pyarrow as pa
import pytest
from features_fixtures import GROUP

from mlops_kit.features import Feature, FeatureGroup, FeatureType


def test_feature_definitions_list_key_event_time_and_features_in_order():
    assert GROUP.feature_definitions() == [
        {"FeatureName": "entity_id", "FeatureType": "String"},
        {"FeatureName": "event_time", "FeatureType": "String"},
        {"FeatureName": "txn_count", "FeatureType": "Integral"},
        {"FeatureName": "amount_sum", "FeatureType": "Fractional"},
        {"FeatureName": "channel", "FeatureType": "String"},
    ]


def test_arrow_schema_types_match_the_glue_types():
    schema = GROUP.arrow_schema()
    assert schema.field("txn_count").type == pa.int64()
    assert schema.field("amount_sum").type == pa.float64()
    assert schema.field("channel").type == pa.string()


@pytest.mark.parametrize(
    ("kind", "value", "wire"),
    [
        (FeatureType.INTEGRAL, 42, "42"),
        (FeatureType.FRACTIONAL, 0.1, "0.1"),
        (FeatureType.STRING, "pos", "pos"),
    ],
)
def test_values_round_trip_through_the_online_wire_form(kind, value, wire):
    assert kind.to_wire(value) == wire
    assert kind.from_wire(wire) == value


def test_unknown_feature_lookup_names_the_group_and_its_columns():
    with pytest.raises(KeyError, match="entity-usage: no feature 'nope'"):
        GROUP.feature("nope")


def test_integral_event_time_is_refused():
    with pytest.raises(ValueError, match="event time must be String"):
        FeatureGroup("g", Feature("id", FeatureType.STRING), Feature("t", FeatureType.INTEGRAL), ())
