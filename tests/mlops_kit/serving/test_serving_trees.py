"""Compiled tree predictions give exactly scikit-learn's numbers, or the model is left alone."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd
import pytest
from serving_helpers import fitted_model, write_model_dir
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from mlops_kit.serving import trees
from mlops_kit.serving.handler import Handler

warnings.filterwarnings("ignore", message="X does not have valid feature names")


def _data(rows: int = 1500, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two numeric columns (with gaps), then two category codes, a label that needs all four."""
    rng = np.random.default_rng(seed)
    x = np.column_stack(
        [
            rng.normal(size=rows),
            rng.exponential(size=rows),
            rng.integers(0, 6, size=rows).astype(float),
            rng.integers(0, 3, size=rows).astype(float),
        ]
    )
    x[rng.random(rows) < 0.05, 0] = np.nan
    x[rng.random(rows) < 0.05, 2] = np.nan
    score = x[:, 1] + np.nan_to_num(x[:, 0]) + np.isin(x[:, 2], [1, 4]) - (x[:, 3] == 2)
    return x, (score > 1.2).astype(int)


def _hard_rows(seed: int = 1) -> np.ndarray:
    """Rows a server may be sent: unseen and negative categories, fractions, NaN, infinities."""
    x, _ = _data(400, seed)
    x[::7, 2] = 99.0
    x[::11, 2] = -1.0
    x[::13, 3] = 1.5
    x[::17, 1] = np.inf
    x[::19, 0] = -np.inf
    x[::23, 3] = np.nan
    return x


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)


def test_binary_classifier_with_categories_matches_sklearn_bit_for_bit():
    x, y = _data()
    model = HistGradientBoostingClassifier(max_iter=40, categorical_features=[2, 3], random_state=0).fit(x, y)
    fast = trees.accelerate(model)
    assert isinstance(fast, trees.Accelerated)
    rows = _hard_rows()
    assert _same(fast.predict_proba(rows), model.predict_proba(rows))
    assert _same(fast.decision_function(rows), model.decision_function(rows))
    assert _same(fast.predict(rows), model.predict(rows))
    assert _same(fast.predict(rows[:1]), model.predict(rows[:1]))  # one row: the server's common case
    assert fast.n_features_in_ == 4 and fast.wrapped is model  # everything else is the model's own
    rows[5, 2] = np.inf  # scikit-learn's encoder refuses an infinite category; so must the loop
    with pytest.raises(ValueError, match="infinity"):
        model.predict(rows)
    with pytest.raises(ValueError, match=r"infinity in a categorical column \(row 6\)"):
        fast.predict(rows)


def test_string_categories_take_sklearn_preprocessing_and_still_match():
    x, y = _data()
    frame = pd.DataFrame(x[:, :2], columns=["a", "b"])
    frame["shop"] = pd.Categorical(np.where(x[:, 2] > 2, "big", "small"))
    model = HistGradientBoostingClassifier(max_iter=20, categorical_features="from_dtype").fit(frame, y)
    fast = trees.accelerate(model)
    compiled = fast._compiled
    assert isinstance(fast, trees.Accelerated) and not compiled.encodes_arrays
    assert _same(fast.predict_proba(frame), model.predict_proba(frame))


def test_multiclass_and_regressors_match_sklearn():
    x, y = _data()
    classes = np.digitize(x[:, 1], [0.5, 1.5])
    multi = HistGradientBoostingClassifier(max_iter=15, categorical_features=[2, 3]).fit(x, classes)
    squared = HistGradientBoostingRegressor(max_iter=15).fit(x, x[:, 1] * 3)
    poisson = HistGradientBoostingRegressor(max_iter=15, loss="poisson").fit(x, np.floor(x[:, 1] * 4))
    rows = _hard_rows()
    rows[:, 1] = np.where(np.isinf(rows[:, 1]), 2.0, rows[:, 1])
    for model in (multi, squared, poisson):
        fast = trees.accelerate(model)
        assert isinstance(fast, trees.Accelerated), model
        assert _same(fast.predict(rows), model.predict(rows)), model
    assert _same(trees.accelerate(multi).predict_proba(rows), multi.predict_proba(rows))


def test_a_use_cases_pipeline_matches_on_dataframes():
    """A use case's estimator as `mlops init` writes it (the test project's): ordinal-encoded categories
    into gradient-boosted trees, fed a DataFrame with gaps and categories it never saw."""
    from kit_fixture import data
    from kit_fixture.features import build_features
    from kit_fixture.steps.train import make_estimator

    frame = data.sample(3000, seed=3)
    rng = np.random.default_rng(3)
    frame.loc[rng.random(len(frame)) < 0.1, "x3"] = np.nan  # gaps, as a feature store's lookups leave
    features = build_features(frame)
    estimator = make_estimator({"max_iter": 30}, seed=3).fit(features, frame["label"])
    fast = trees.accelerate(estimator)
    assert isinstance(fast, trees.Accelerated)
    odd = features.head(200).copy()
    odd.loc[odd.index[::5], "segment"] = "never-seen"
    odd.loc[odd.index[::7], "x1"] = np.nan
    assert _same(fast.predict_proba(odd), estimator.predict_proba(odd))


def test_models_without_boosted_trees_are_left_alone():
    model = fitted_model()
    assert trees.accelerate(model) is model
    assert trees.describe(model) == "scikit-learn"


def test_a_loop_that_disagrees_with_sklearn_is_not_used(monkeypatch, caplog):
    x, y = _data()
    model = HistGradientBoostingClassifier(max_iter=10).fit(x, y)
    real = trees.CompiledBoosting.raw_from_preprocessed
    monkeypatch.setattr(
        trees.CompiledBoosting, "raw_from_preprocessed", lambda self, rows: real(self, rows) + 1e-12
    )
    with caplog.at_level(logging.WARNING, logger="mlops_kit.serving"):
        assert trees.accelerate(model) is model
    assert "differ from scikit-learn" in caplog.text


def test_a_wrong_input_encoding_falls_back_to_sklearn_preprocessing(monkeypatch):
    x, y = _data()
    model = HistGradientBoostingClassifier(max_iter=10, categorical_features=[2, 3]).fit(x, y)
    original = trees._input_encoding

    def shuffled(estimator, n_features):
        source, *rest = original(estimator, n_features)
        return (source[::-1].copy(), *rest)  # columns in the wrong order

    monkeypatch.setattr(trees, "_input_encoding", shuffled)
    fast = trees.accelerate(model)
    assert isinstance(fast, trees.Accelerated) and not fast._compiled.encodes_arrays
    rows = _hard_rows()
    assert _same(fast.predict_proba(rows), model.predict_proba(rows))


def test_compilation_can_be_switched_off_per_handler(tmp_path):
    x, y = _data()
    model = HistGradientBoostingClassifier(max_iter=10).fit(x, y)
    folder = write_model_dir(tmp_path / "m", script=None, model=model)
    assert isinstance(Handler(folder).model, trees.Accelerated)
    assert Handler(folder, compile_trees=False).model is not None
    assert not isinstance(Handler(folder, compile_trees=False).model, trees.Accelerated)
    assert trees.for_serving(model) is model  # a model script's call, outside the kit's server
    with trees.serving(True):
        assert isinstance(trees.for_serving(model), trees.Accelerated)


def test_the_handler_answers_with_sklearn_numbers(tmp_path):
    x, y = _data()
    model = HistGradientBoostingClassifier(max_iter=25, categorical_features=[2, 3]).fit(x, y)
    handler = Handler(write_model_dir(tmp_path / "m", script=None, model=model))
    hard = _hard_rows()[:50]
    # a request cannot carry an infinity (400); the largest doubles stand in for them here
    rows = np.clip(hard, -np.finfo(np.float64).max, np.finfo(np.float64).max)

    def csv(rows: np.ndarray) -> bytes:
        return "\n".join(
            ",".join("" if np.isnan(v) else repr(float(v)) for v in row) for row in rows
        ).encode()

    response = handler.invoke(csv(rows), "text/csv", "application/json")
    assert response.status == 200
    assert response.body.decode() == str(model.predict(rows).tolist()).replace(" ", "")
    assert handler.invoke(csv(hard), "text/csv", "application/json").status == 400


def test_without_a_compiler_the_model_is_served_as_it_is(monkeypatch, caplog):
    def unavailable():
        raise ImportError("No module named 'numba'")

    x, y = _data()
    model = HistGradientBoostingClassifier(max_iter=5).fit(x, y)
    monkeypatch.setattr(trees, "_compiled_kernel", unavailable)
    with caplog.at_level(logging.WARNING, logger="mlops_kit.serving"):
        assert trees.accelerate(model) is model
    assert "numba" in caplog.text


def test_large_batches_use_sklearns_threads(monkeypatch):
    x, y = _data()
    model = HistGradientBoostingClassifier(max_iter=10).fit(x, y)
    fast = trees.accelerate(model)

    def unused(self, rows):
        raise AssertionError("the compiled loop ran on a large batch")

    monkeypatch.setattr(trees, "LARGE_BATCH", 20)
    monkeypatch.setattr(trees.CompiledBoosting, "raw_predict", unused)
    rows = _hard_rows()[:50]
    assert _same(fast.predict_proba(rows), model.predict_proba(rows))
    with pytest.raises(AssertionError, match="compiled loop"):
        fast.predict_proba(rows[:5])


def test_the_stand_in_copies_and_pickles():
    import copy
    import pickle

    x, y = _data()
    model = HistGradientBoostingClassifier(max_iter=5).fit(x, y)
    fast = trees.accelerate(model)
    rows = _hard_rows()[:20]
    assert _same(copy.deepcopy(fast).predict(rows), model.predict(rows))
    assert _same(pickle.loads(pickle.dumps(fast)).predict(rows), model.predict(rows))
