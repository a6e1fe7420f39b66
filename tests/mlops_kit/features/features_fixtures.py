"""Shared definitions for the feature store tests: a small group, a fixed clock, record builders."""

from __future__ import annotations

import pandas as pd

from mlops_kit.features import Feature, FeatureGroup, FeatureType

GROUP = FeatureGroup(
    name="entity-usage",
    record_identifier=Feature("entity_id", FeatureType.STRING),
    event_time=Feature("event_time", FeatureType.STRING),
    features=(
        Feature("txn_count", FeatureType.INTEGRAL),
        Feature("amount_sum", FeatureType.FRACTIONAL),
        Feature("channel", FeatureType.STRING),
    ),
)
NOW = pd.Timestamp("2026-01-10T00:00:00Z").timestamp()  # the online store's clock in these tests


def records(*rows: tuple) -> pd.DataFrame:
    """Records of GROUP from (entity_id, event_time, txn_count, amount_sum, channel) tuples."""
    return pd.DataFrame(rows, columns=GROUP.column_names)
