"""`validation.sample_table`: a bounded, uniform sample of a folder of parts that does not depend on how
the rows are spread over the parts (one instance's output or two instances'), and `iter_tables`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_kit.validation import iter_tables, sample_table


def _rows(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "id": np.arange(n, dtype=np.int64),
            "amount": rng.lognormal(3, 1, n),
            "channel": rng.choice(["web", "app", "pos"], n),
            "label": (rng.random(n) < 0.1).astype(np.int64),
        }
    )


def _write_parts(frame: pd.DataFrame, folder: Path, parts: int, seed: int) -> Path:
    """The rows shuffled and cut into `parts` files, named in an order unrelated to the rows."""
    rng = np.random.default_rng(seed)
    shuffled = frame.iloc[rng.permutation(len(frame))]
    for index, piece in enumerate(np.array_split(np.arange(len(frame)), parts)):
        name = f"part-{rng.integers(10**9):010d}-{index}.parquet"
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shuffled.iloc[piece].to_parquet(folder / name)
    return folder


def test_the_sample_is_the_same_however_the_rows_are_split(tmp_path: Path) -> None:
    frame = _rows(20_000)
    one = sample_table(_write_parts(frame, tmp_path / "one", 1, seed=1), 3_000, key=["id"])
    eight = sample_table(_write_parts(frame, tmp_path / "eight", 8, seed=2), 3_000, key=["id"])
    assert one.rows == eight.rows == 20_000
    assert len(one.frame) == 3_000
    pd.testing.assert_frame_equal(one.frame, eight.frame)
    assert one.frame["id"].is_unique  # no row twice


def test_fewer_rows_than_the_bound_are_all_kept(tmp_path: Path) -> None:
    frame = _rows(500)
    sample = sample_table(_write_parts(frame, tmp_path, 3, seed=3), 1_000, key=["id"])
    assert sample.rows == 500 and sample.fraction == 1.0
    assert sorted(sample.frame["id"]) == list(range(500))


def test_the_sample_is_uniform(tmp_path: Path) -> None:
    """Every row has the same chance: the sample's label rate and channel mix match the whole's, and
    its ids are spread over the whole range (not the first files' rows)."""
    frame = _rows(100_000, seed=5)
    sample = sample_table(_write_parts(frame, tmp_path, 10, seed=6), 20_000, key=["id"])
    kept = sample.frame
    assert sample.fraction == pytest.approx(0.2)
    assert kept["label"].mean() == pytest.approx(frame["label"].mean(), abs=0.006)  # ~3 standard errors
    for channel, share in frame["channel"].value_counts(normalize=True).items():
        assert (kept["channel"] == channel).mean() == pytest.approx(share, abs=0.01)
    deciles = np.histogram(kept["id"], bins=10, range=(0, 100_000))[0]
    assert deciles.min() > 1_800 and deciles.max() < 2_200


def test_a_key_column_the_parts_lack_is_named(tmp_path: Path) -> None:
    _write_parts(_rows(10), tmp_path, 1, seed=0)
    with pytest.raises(ValueError, match="no column transaction_id"):
        sample_table(tmp_path, 5, key=["transaction_id"])


def test_iter_tables_reads_one_file_at_a_time_in_path_order(tmp_path: Path) -> None:
    _rows(4).iloc[:2].to_parquet(tmp_path / "b.parquet")
    _rows(4).iloc[2:].to_csv(tmp_path / "a.csv", index=False)
    parts = list(iter_tables(tmp_path))
    assert [list(p["id"]) for p in parts] == [[2, 3], [0, 1]]
