from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

from pipelines import synthetic
from pipelines.synthetic import GeneratorOptions


def test_same_seed_same_data() -> None:
    a = synthetic.generate(GeneratorOptions(rows=3000, seed=11))
    b = synthetic.generate(GeneratorOptions(rows=3000, seed=11))
    pd.testing.assert_frame_equal(a, b)
    c = synthetic.generate(GeneratorOptions(rows=3000, seed=12))
    assert not a["amount"].equals(c["amount"])


def test_schema_and_ranges() -> None:
    frame = synthetic.generate(GeneratorOptions(rows=5000, start="2026-01-01", end="2026-02-01"))
    assert list(frame.columns) == list(synthetic.COLUMNS)
    assert frame["transaction_id"].is_unique
    assert frame["event_time"].is_monotonic_increasing
    assert frame["event_time"].min() >= pd.Timestamp("2026-01-01")
    assert frame["event_time"].max() < pd.Timestamp("2026-02-01")
    assert (frame["amount"] > 0).all()
    assert frame["hour"].between(0, 23).all()
    assert set(frame["merchant_category"]) <= set(synthetic.CATEGORIES)
    assert set(frame["channel"]) <= set(synthetic.CHANNELS)


def test_fraud_rate_is_realistic_and_learnable() -> None:
    frame = synthetic.generate(GeneratorOptions(rows=40_000, seed=3))
    assert 0.01 <= frame["is_fraud"].mean() <= 0.03
    features = frame[["amount", "hour", "customer_tenure_days"]].assign(
        category=frame["merchant_category"].astype("category").cat.codes,
        channel=frame["channel"].astype("category").cat.codes,
    )
    train = frame["event_time"] < frame["event_time"].quantile(0.7)
    model = HistGradientBoostingClassifier(random_state=0).fit(features[train], frame["is_fraud"][train])
    auc = roc_auc_score(frame["is_fraud"][~train], model.predict_proba(features[~train])[:, 1])
    assert auc > 0.75


def test_drift_shows_in_the_shifted_columns_only_after_the_date() -> None:
    options = dict(rows=40_000, start="2026-01-01", end="2026-03-01", seed=5)
    clean = synthetic.generate(GeneratorOptions(**options))
    drifted = synthetic.generate(GeneratorOptions(**options, drift_from="2026-02-01"))
    before = drifted["event_time"] < pd.Timestamp("2026-02-01")
    after = ~before
    # Before the drift date nothing moves.
    assert drifted.loc[before, "amount"].median() == pytest.approx(
        clean.loc[before, "amount"].median(), rel=0.05
    )
    # After it, amounts grow and the category mix shifts towards electronics.
    ratio = drifted.loc[after, "amount"].median() / clean.loc[after, "amount"].median()
    assert ratio > 1.4
    share = lambda f: (f["merchant_category"] == "electronics").mean()  # noqa: E731
    assert share(drifted[after]) > 1.8 * share(clean[after])
    assert share(drifted[before]) == pytest.approx(share(clean[before]), abs=0.02)


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (dict(rows=0), "rows"),
        (dict(fraud_rate=0.9), "fraud_rate"),
        (dict(start="2026-03-01", end="2026-01-01"), "before"),
        (dict(drift_from="2027-01-01"), "drift_from"),
    ],
)
def test_bad_options_are_refused(options: dict, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        GeneratorOptions(**options)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_write_round_trips(tmp_path: Path, suffix: str) -> None:
    frame = synthetic.generate(GeneratorOptions(rows=200))
    path = synthetic.write(frame, tmp_path / f"t{suffix}")
    back = pd.read_parquet(path) if suffix == ".parquet" else pd.read_csv(path)
    assert len(back) == 200
    assert np.allclose(back["amount"], frame["amount"])
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left behind


def test_write_refuses_an_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=".parquet or .csv"):
        synthetic.write(synthetic.generate(GeneratorOptions(rows=10)), tmp_path / "t.xlsx")
