"""Baseline statistics merged from shards: exact where the module says exact, within the documented
rank error elsewhere, and the same documents as `stats.baseline` of the whole."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mlops_kit.monitoring import sketch, stats

FEATURES = ["amount", "count", "channel"]


def _frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "amount": rng.lognormal(3, 1, n),
            "count": rng.integers(0, 40, n),
            "channel": rng.choice(["pos", "online", "atm"], n, p=[0.6, 0.3, 0.1]),
            "score": rng.random(n),
        }
    )
    frame.loc[frame.index[::97], "amount"] = np.nan
    return frame


def _shards(frame: pd.DataFrame, k: int) -> list[dict]:
    bounds = np.linspace(0, len(frame), k + 1).astype(int)
    parts = [
        sketch.sketch(frame.iloc[a:b], features=FEATURES, prediction_column="score")
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    ]
    return json.loads(json.dumps(parts))  # as the shards write and the merge step reads them


def test_shards_small_enough_to_keep_every_value_give_exactly_the_whole_baseline() -> None:
    frame = _frame(3000)
    whole = stats.baseline(frame, features=FEATURES, prediction_column="score", psi_threshold=0.3)
    merged = sketch.baseline(sketch.merge(_shards(frame, 4)), psi_threshold=0.3)
    assert merged[1] == whole[1]  # constraints
    for got, want in zip(merged[0]["features"], whole[0]["features"], strict=True):
        for key in ("mean", "sum", "std_dev"):  # moments: exact up to rounding
            if key in want.get("numerical_statistics", {}):
                assert got["numerical_statistics"].pop(key) == pytest.approx(
                    want["numerical_statistics"].pop(key), rel=1e-12
                )
        assert got == want
    assert merged[0]["dataset"] == whole[0]["dataset"] and merged[0]["mlops_kit"] == whole[0]["mlops_kit"]


@pytest.mark.parametrize("shards", [1, 3, 8])
def test_large_shards_stay_within_the_documented_rank_error(shards: int) -> None:
    frame = _frame(60_000, seed=shards)
    merged = sketch.merge(_shards(frame, shards))
    statistics, _ = sketch.baseline(merged)
    whole, _ = stats.baseline(frame, features=FEATURES, prediction_column="score")
    for got, want in zip(statistics["features"], whole["features"], strict=True):
        if "string_statistics" in want:
            assert got["string_statistics"]["common"] == want["string_statistics"]["common"]
            assert {b["value"]: b["count"] for b in got["string_statistics"]["distribution"]["categorical"]["buckets"]} == {
                b["value"]: b["count"] for b in want["string_statistics"]["distribution"]["categorical"]["buckets"]
            }  # fmt: skip
            continue
        g, w = got["numerical_statistics"], want["numerical_statistics"]
        assert g["common"] == w["common"] and (g["min"], g["max"]) == (w["min"], w["max"])
        assert got["inferred_type"] == want["inferred_type"]
        assert g["mean"] == pytest.approx(w["mean"], rel=1e-9) and g["std_dev"] == pytest.approx(
            w["std_dev"], rel=1e-9
        )
        n = w["common"]["num_present"]
        error = sketch.rank_error(merged, got["name"])
        # the bound the module documents: n / SKETCH_POINTS + one per chunk
        assert 0 < error <= n / sketch.SKETCH_POINTS + shards
        values = np.sort(frame[got["name"]].dropna().to_numpy(dtype=float))
        # every CDF value the merged baseline states is within `error` values of the truth
        cdf = got["mlops_kit"]["cdf"]
        grid = np.asarray(cdf["values"])
        true_below = np.searchsorted(values, grid, side="left")
        true_at = np.searchsorted(values, grid, side="right")
        assert np.max(np.abs(np.asarray(cdf["below"]) * n - true_below)) <= error
        assert np.max(np.abs(np.asarray(cdf["at_or_below"]) * n - true_at)) <= error
        # each PSI decile edge holds a rank within `error` of its decile; bins count every value
        for q, edge in zip(np.arange(1, 10) / 10, got["mlops_kit"]["bins"]["edges"], strict=False):
            target = np.rint(q * (n - 1))
            lo, hi = np.searchsorted(values, edge, "left"), np.searchsorted(values, edge, "right") - 1
            assert lo - error <= target <= hi + error
        assert sum(got["mlops_kit"]["bins"]["counts"]) == n
        assert sum(b["count"] for b in g["distribution"]["kll"]["buckets"]) == n


def test_the_sketch_is_exact_up_to_its_size_and_approximate_one_value_beyond() -> None:
    at = pd.DataFrame({"x": np.arange(sketch.SKETCH_POINTS, dtype=float)})
    beyond = pd.DataFrame({"x": np.arange(sketch.SKETCH_POINTS + 1, dtype=float)})
    assert sketch.sketch(at)["features"]["x"]["rank_error"] == 0
    assert sketch.sketch(beyond)["features"]["x"]["rank_error"] == 2  # one point stands for two values
    assert len(sketch.sketch(beyond)["features"]["x"]["points"]) == sketch.SKETCH_POINTS


def test_merging_refuses_sketches_that_do_not_add_up() -> None:
    frame = _frame(100)
    one = sketch.sketch(frame, features=FEATURES, prediction_column="score")
    other = sketch.sketch(frame, features=["amount", "count"], prediction_column="score")
    with pytest.raises(ValueError, match="disagree on columns"):
        sketch.merge([one, other])
    text = frame.assign(count=frame["count"].map(lambda v: f"n{v}"))
    mixed = sketch.sketch(text, features=FEATURES, prediction_column="score")
    with pytest.raises(ValueError, match="column 'count' holds numbers in some shards and text in others"):
        sketch.merge([one, mixed])
    with pytest.raises(ValueError, match="no baseline sketches"):
        sketch.merge([])


def test_a_shard_without_values_of_a_column_merges_as_missing() -> None:
    frame = _frame(200)
    empty = frame.iloc[:50].assign(amount=None)  # object column, all missing: read as text with no value
    merged = sketch.merge(
        [sketch.sketch(p, features=FEATURES, prediction_column="score") for p in (empty, frame.iloc[50:])]
    )
    amount = merged["features"]["amount"]
    assert amount["kind"] == "numeric"
    assert amount["present"] + amount["missing"] == 200 and amount["missing"] >= 50


def test_the_merge_job_writes_model_monitors_documents(tmp_path) -> None:
    from mlops_kit.monitoring import files, merge_job

    frame = _frame(500)
    parts = tmp_path / "sketches"
    parts.mkdir()
    for i, shard in enumerate(_shards(frame, 2)):
        (parts / f"sketch-algo-{i + 1}.json").write_text(json.dumps(shard))
    out = tmp_path / "baseline"
    assert (
        merge_job.main(["--sketches", str(parts), "--baseline", str(out), "--drift-threshold", "0.25"]) == 0
    )
    statistics, constraints = files.read_baseline(out)
    assert statistics["dataset"]["item_count"] == 500
    assert constraints["monitoring_config"]["distribution_constraints"]["psi_threshold"] == 0.25
    (parts / "sketch-algo-3.json").write_text("{not json")
    assert (
        merge_job.main(["--sketches", str(parts), "--baseline", str(out), "--drift-threshold", "0.25"]) == 1
    )
