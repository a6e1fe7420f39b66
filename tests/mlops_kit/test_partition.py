"""The Partition step: every row in exactly one partition, each entity whole in one, as many partitions
as the size asks for, and the one instant that splits train from test."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_kit import partition, sharding


def _events(n: int, entities: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "entity_id": [f"e{i:04d}" for i in rng.integers(0, entities, n)],
            "event_time": pd.Timestamp("2026-01-01")
            + pd.to_timedelta(rng.integers(0, 86400 * 30, n), unit="s"),
            "value": rng.normal(size=n),
        }
    )


def _run(tmp_path: Path, raw: Path, **options) -> dict:
    defaults = dict(
        key="entity_id", time_column="event_time", split_quantile=0.8, min_partitions=4, partition_rows=1000
    )
    return partition.run(
        raw, tmp_path / "parts", tmp_path / "plan", **{**defaults, **options}, batch_rows=700
    )


def test_every_row_lands_in_one_partition_with_its_whole_entity(tmp_path: Path) -> None:
    frame = _events(5000, 300)
    raw = tmp_path / "raw"
    raw.mkdir()
    frame.iloc[:2000].to_parquet(raw / "a.parquet")
    frame.iloc[2000:3500].to_parquet(raw / "b.parquet")
    frame.iloc[3500:].to_csv(raw / "c.csv", index=False)  # CSV text times: promoted with the others
    plan = _run(tmp_path, raw)
    parts = sorted((tmp_path / "parts").glob("part-*.parquet"))
    assert plan["partitions"] == len(parts) == 5  # 5000 rows / 1000 per partition > the minimum of 4
    read = [pd.read_parquet(p) for p in parts]
    assert sum(len(r) for r in read) == 5000
    owners: dict[str, int] = {}
    for index, part in enumerate(read):
        assert (sharding.partition_of(part["entity_id"], 5) == index).all()
        for entity in part["entity_id"].unique():
            assert owners.setdefault(entity, index) == index  # no entity in two partitions
    both = pd.concat(read).sort_values(["entity_id", "value"]).reset_index(drop=True)
    want = frame.sort_values(["entity_id", "value"]).reset_index(drop=True)
    assert np.allclose(both["value"], want["value"])
    assert json.loads((tmp_path / "plan" / "plan.json").read_text()) == plan


@pytest.mark.parametrize(("rows", "expected"), [(3999, 4), (4000, 4), (4001, 5)])
def test_partitions_hold_at_most_partition_rows_and_are_at_least_the_minimum(
    rows: int, expected: int
) -> None:
    assert partition.partition_count(rows, 1000, 4) == expected


def test_the_split_instant_leaves_the_quantile_before_it(tmp_path: Path) -> None:
    frame = _events(1000, 50)
    raw = tmp_path / "raw.parquet"
    frame.to_parquet(raw)
    plan = _run(tmp_path, raw, split_quantile=0.75)
    at = pd.Timestamp(plan["split_time"]).tz_localize(None)
    before = int((frame["event_time"] < at).sum())
    assert before == 750 or (frame["event_time"] == at).sum() > 1
    ordered = np.sort(frame["event_time"].to_numpy())
    assert ordered[750] == np.datetime64(at)
    with pytest.raises(ValueError, match="too few to split"):
        partition.split_time(ordered[:1], 0.5)


def test_bad_input_is_refused_naming_the_file_and_column(tmp_path: Path, capsys) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    _events(100, 10).rename(columns={"entity_id": "who"}).to_parquet(raw / "x.parquet")
    args = ["--raw", str(raw), "--parts", str(tmp_path / "p"), "--plan", str(tmp_path / "q")]
    args += ["--key", "entity_id", "--min-partitions", "2", "--partition-rows", "1000"]
    assert partition.main(args) == 1
    assert "x.parquet: no entity column 'entity_id'" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert partition.main([*args[:1], str(empty), *args[2:]]) == 1
    assert "no .csv, .parquet or .jsonl file" in capsys.readouterr().err
