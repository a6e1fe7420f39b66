"""The fraud use case's feature records: windows, one record per entity and time, only the past used."""

from __future__ import annotations

import pandas as pd
import pytest

from mlops_kit.features.validation import validate
from pipelines import synthetic
from pipelines.feature_transforms import compute_aggregates
from pipelines.features import CUSTOMER_PROFILE, FEATURE_GROUPS, TRANSACTION_AGGREGATES


def _tx(*rows: tuple) -> pd.DataFrame:
    return pd.DataFrame(
        rows, columns=["customer_id", "event_time", "amount", "channel", "customer_tenure_days"]
    )


TX = _tx(
    ("c1", "2026-01-01T00:00:00Z", 10.0, "pos", 100),
    ("c1", "2026-01-01T00:30:00Z", 20.0, "online", 100),
    ("c1", "2026-01-01T00:30:00Z", 5.0, "online", 100),  # same second: one record that has seen both
    ("c1", "2026-01-01T02:00:00Z", 40.0, "pos", 100),
    ("c1", "2026-01-02T01:00:00Z", 1.0, "online", 101),
    ("c2", "2026-01-01T00:15:00Z", 7.0, "atm", 5),
)


def test_window_aggregates_include_the_transaction_and_drop_what_left_the_window():
    aggs = compute_aggregates(TX)[TRANSACTION_AGGREGATES.name].set_index(["customer_id", "event_time"])
    at = lambda c, t: aggs.loc[(c, pd.Timestamp(t))]  # noqa: E731
    assert at("c1", "2026-01-01T00:30:00Z")[["txn_count_1h", "amount_sum_1h"]].tolist() == [3, 35.0]
    assert at("c1", "2026-01-01T02:00:00Z")[["txn_count_1h", "txn_count_24h", "amount_sum_24h"]].tolist() == [
        1,
        4,
        75.0,
    ]
    assert at("c1", "2026-01-02T01:00:00Z")[["txn_count_24h", "txn_count_7d", "amount_mean_7d"]].tolist() == [
        2,
        5,
        15.2,
    ]
    assert len(aggs) == 5 and aggs.index.is_unique


def test_the_profile_uses_only_channels_seen_so_far_once_per_customer_day():
    profile = compute_aggregates(TX)[CUSTOMER_PROFILE.name]
    c1 = profile[profile["customer_id"] == "c1"]
    assert c1["event_time"].dt.strftime("%d %H:%M").tolist() == ["01 02:00", "02 01:00"]
    assert c1["home_channel"].tolist() == ["online", "online"]  # 2 online vs 2 pos on day 1: alphabetical
    assert c1["tenure_days"].tolist() == [100, 101]


def test_every_group_s_records_validate_against_its_definition():
    frames = compute_aggregates(synthetic.generate(synthetic.GeneratorOptions(rows=500)))
    assert set(frames) == {g.name for g in FEATURE_GROUPS}
    for group in FEATURE_GROUPS:
        assert validate(group, frames[group.name]).rows > 0


def test_missing_transaction_columns_are_named():
    with pytest.raises(ValueError, match="transactions lack columns amount, channel"):
        compute_aggregates(TX.drop(columns=["amount", "channel"]))
