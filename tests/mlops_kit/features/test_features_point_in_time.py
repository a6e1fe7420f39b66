"""The point-in-time engine: no leakage from the future, TTL, ties, deletions, every entity row kept."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from features_fixtures import GROUP, records

from mlops_kit.features import Feature, FeatureGroup, FeatureType
from mlops_kit.features.pit import point_in_time

DAY = timedelta(days=1)


def _offline(
    frame: pd.DataFrame, write_ms: list[int] | None = None, deleted: list[bool] | None = None
) -> pa.Table:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    n = len(frame)
    stamps = pa.array(write_ms or [0] * n, type=pa.int64()).cast(pa.timestamp("ms", tz="UTC"))
    table = table.append_column("write_time", stamps)
    return table.append_column("is_deleted", pa.array(deleted or [False] * n))


def _entities(*rows: tuple[str, str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["entity_id", "event_time"])


FEATURES = records(
    ("c1", "2026-01-01T10:00:00.000Z", 1, 10.0, "pos"),
    ("c1", "2026-01-01T12:00:00.000Z", 2, 20.0, "atm"),
    ("c2", "2026-01-01T09:00:00.000Z", 5, 50.0, "online"),
)


def test_a_record_from_the_future_is_never_used():
    entities = _entities(("c1", "2026-01-01T11:59:59Z"), ("c1", "2026-01-01T09:59:59Z"))
    out = point_in_time(entities, [(GROUP, _offline(FEATURES))], DAY)
    assert out["txn_count"].tolist() == [1, pd.NA]
    assert out["amount_sum"].iloc[1] != out["amount_sum"].iloc[1]  # NaN


def test_a_record_at_exactly_the_entity_time_is_used():
    out = point_in_time(_entities(("c1", "2026-01-01T12:00:00Z")), [(GROUP, _offline(FEATURES))], DAY)
    assert out["channel"].tolist() == ["atm"]


def test_records_older_than_the_ttl_give_nulls_and_the_boundary_is_inclusive():
    entities = _entities(("c2", "2026-01-02T09:00:00Z"), ("c2", "2026-01-02T09:00:00.001Z"))
    out = point_in_time(entities, [(GROUP, _offline(FEATURES))], DAY)
    assert out["txn_count"].tolist() == [5, pd.NA]


def test_every_entity_row_is_kept_in_order_with_its_columns_untouched():
    entities = _entities(
        ("zz", "2026-01-02T00:00:00Z"), ("c1", "2026-01-02T00:00:00Z"), ("c2", "bad-but-unused")
    )
    entities = entities.iloc[:2].assign(label=[True, False], note=["a", None])
    out = point_in_time(entities, [(GROUP, _offline(FEATURES))], DAY)
    pd.testing.assert_frame_equal(out[entities.columns], entities)
    assert out["txn_count"].tolist() == [pd.NA, 2]


def test_among_records_with_the_same_event_time_the_last_written_wins():
    twins = records(
        ("c1", "2026-01-01T10:00:00Z", 1, 1.0, "old"), ("c1", "2026-01-01T10:00:00Z", 2, 2.0, "new")
    )
    for write_ms in ([1, 2], [2, 1]):
        out = point_in_time(
            _entities(("c1", "2026-01-01T11:00:00Z")), [(GROUP, _offline(twins, write_ms))], DAY
        )
        assert out["channel"].tolist() == (["new"] if write_ms == [1, 2] else ["old"])


def test_a_deleted_latest_record_gives_nulls():
    source = _offline(FEATURES, deleted=[False, True, False])
    entities = _entities(("c1", "2026-01-01T13:00:00Z"), ("c1", "2026-01-01T11:00:00Z"))
    out = point_in_time(entities, [(GROUP, source)], DAY)
    assert out["txn_count"].tolist() == [pd.NA, 1]


def test_several_groups_join_side_by_side():
    other = FeatureGroup(
        "profile",
        Feature("entity_id", FeatureType.STRING),
        Feature("event_time", FeatureType.FRACTIONAL),
        (Feature("tenure_days", FeatureType.INTEGRAL),),
    )
    profile = pd.DataFrame(
        {
            "entity_id": ["c1"],
            "event_time": [pd.Timestamp("2026-01-01T11:00Z").timestamp()],
            "tenure_days": [7],
        }
    )
    out = point_in_time(
        _entities(("c1", "2026-01-01T12:30:00Z")), [(GROUP, _offline(FEATURES)), (other, profile)], DAY
    )
    assert out[["txn_count", "tenure_days"]].iloc[0].tolist() == [2, 7]


def test_a_feature_name_that_clashes_with_an_entity_column_is_refused():
    entities = _entities(("c1", "2026-01-01T12:00:00Z")).assign(channel="x")
    with pytest.raises(
        ValueError, match="feature channel of entity-usage clashes with a column of the entities"
    ):
        point_in_time(entities, [(GROUP, _offline(FEATURES))], DAY)


def test_entity_times_that_are_not_times_are_refused():
    with pytest.raises(ValueError, match=r"entities column event_time: 1 rows are not times \(e.g. 'soon'\)"):
        point_in_time(_entities(("c1", "soon")), [(GROUP, _offline(FEATURES))], DAY)


def test_records_missing_a_feature_column_are_refused():
    with pytest.raises(ValueError, match="entity-usage: the feature records have no column channel"):
        point_in_time(
            _entities(("c1", "2026-01-01T12:00:00Z")), [(GROUP, FEATURES.drop(columns=["channel"]))], DAY
        )


def _as_source(frame: pd.DataFrame, kind: str, folder: Path):
    """The same records as a DataFrame, an Arrow table, Parquet files, or a hive-partitioned dataset."""
    if kind == "frame":
        return frame
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if kind == "arrow":
        return table
    cuts = [0, len(frame) // 5, len(frame) // 2, len(frame)]  # files of unequal sizes, small row groups
    if kind == "parquet":
        paths = []
        for number, (start, end) in enumerate(zip(cuts, cuts[1:], strict=False)):
            paths.append(str(folder / f"{number:02d}.parquet"))
            pq.write_table(table.slice(start, end - start), paths[-1], row_group_size=97)
        return ds.dataset(paths, format="parquet")
    for number, (start, end) in enumerate(zip(cuts, cuts[1:], strict=False)):
        (folder / f"part={number}").mkdir(parents=True)
        pq.write_table(
            table.slice(start, end - start), folder / f"part={number}" / "x.parquet", row_group_size=97
        )
    return ds.dataset(folder, format="parquet", partitioning="hive")


def test_parquet_files_give_what_the_same_records_in_memory_give(tmp_path: Path):
    """Positions across files and row groups, deletions and write-time ties, read from files."""
    twins = records(
        ("c1", "2026-01-01T10:00:00Z", 7, 7.0, "late"), ("c3", "2026-01-01T08:00:00Z", 3, 3.0, "gone")
    )
    frame = pd.concat([FEATURES, twins], ignore_index=True)
    source = _offline(frame, write_ms=[1, 1, 1, 2, 1], deleted=[False, False, False, False, True])
    paths = []
    for number, (start, end) in enumerate([(0, 2), (2, 3), (3, 5)]):
        paths.append(str(tmp_path / f"{number}.parquet"))
        pq.write_table(source.slice(start, end - start), paths[-1], row_group_size=1)
    entities = _entities(
        ("c1", "2026-01-01T11:00:00Z"),
        ("c3", "2026-01-01T09:00:00Z"),
        ("c2", "2026-01-01T09:30:00Z"),
        ("c1", "2026-01-01T12:00:00Z"),
    )
    from_files = point_in_time(entities, [(GROUP, ds.dataset(paths, format="parquet"))], DAY)
    in_memory = point_in_time(entities, [(GROUP, source)], DAY)
    pd.testing.assert_frame_equal(from_files, in_memory)
    assert from_files["channel"].fillna("-").tolist() == ["late", "-", "online", "atm"]


def test_records_of_an_unknown_kind_are_refused():
    with pytest.raises(TypeError, match="entity-usage: feature records must be an Arrow table or dataset"):
        point_in_time(_entities(("c1", "2026-01-01T12:00:00Z")), [(GROUP, FEATURES.to_dict())], DAY)


@pytest.mark.parametrize("kind", ["frame", "arrow", "parquet", "hive"])
def test_values_equal_a_merge_asof_reference_on_random_data(kind: str, tmp_path: Path):
    rng = np.random.default_rng(3)
    base = pd.Timestamp("2026-01-01")
    n, m = 3000, 800
    feats = pd.DataFrame(
        {
            "entity_id": rng.choice([f"c{i}" for i in range(60)], n),
            "ts": base + pd.to_timedelta(rng.integers(0, 10 * 86400, n), unit="s"),
            "txn_count": rng.integers(0, 100, n),
            "amount_sum": rng.random(n),
            "channel": rng.choice(["pos", "atm"], n),
        }
    ).drop_duplicates(["entity_id", "ts"])
    feats["event_time"] = feats["ts"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    entities = pd.DataFrame(
        {
            "entity_id": rng.choice([f"c{i}" for i in range(70)], m),
            "event_time": base + pd.to_timedelta(rng.integers(0, 11 * 86400, m), unit="s"),
            "label": rng.integers(0, 2, m),
        }
    )
    ttl = timedelta(hours=30)
    out = point_in_time(entities, [(GROUP, _as_source(feats[GROUP.column_names], kind, tmp_path))], ttl)

    ref = (
        pd.merge_asof(
            entities.reset_index().sort_values("event_time"),
            feats.rename(columns={"event_time": "iso"}).sort_values("ts"),
            left_on="event_time",
            right_on="ts",
            by="entity_id",
            tolerance=pd.Timedelta(ttl),
            direction="backward",
        )
        .set_index("index")
        .sort_index()
    )
    assert out["amount_sum"].isna().sum() > 0 and out["amount_sum"].notna().sum() > 0
    np.testing.assert_array_equal(out["amount_sum"].to_numpy(), ref["amount_sum"].to_numpy())
    assert out["channel"].fillna("-").tolist() == ref["channel"].fillna("-").tolist()
    assert out["txn_count"].fillna(-1).tolist() == ref["txn_count"].fillna(-1).astype(int).tolist()
