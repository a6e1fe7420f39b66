"""Compiled predictions for scikit-learn's HistGradientBoosting models, equal to scikit-learn's to the bit.

scikit-learn predicts a gradient-boosted ensemble one tree at a time: for each tree a Python call, an
output array and an OpenMP region. On a single row that fixed cost is the whole prediction (about 2 ms
for a model of a few hundred trees, where walking them takes microseconds), so a server built on
`model.predict` can never answer faster than that. Here the fitted trees are copied once into flat
arrays and one compiled loop (numba) walks every tree for every row, applying scikit-learn's own rules:
a missing value follows the node's missing side, a categorical split tests the category's bit, an
unknown or negative category counts as missing, and a row's raw score is the baseline plus each tree's
leaf value added in scikit-learn's order (so the float sums are the same).

Categorical columns are encoded the way the estimator's own preprocessor does it (an `OrdinalEncoder`
whose unknown categories become missing, categorical columns first), inside the same loop, for numeric
2-D arrays; any other input (a DataFrame of records) goes through the estimator's own `_preprocess_X`.

`accelerate(model)` returns a stand-in for a fitted `HistGradientBoostingClassifier`/`Regressor` (or a
`Pipeline` ending in one) whose `predict`, `predict_proba` and `decision_function` come from the compiled
loop, after checking on probe rows (every split threshold and its neighbours, every category, unknown
ones, NaN, infinities) that it gives exactly scikit-learn's numbers. Anything it does not recognise, or
a check that differs, leaves the model as it was: acceleration never changes an answer.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

log = logging.getLogger("mlops_kit.serving")

PROBE_SEED = 20261126
_kernel = None
# True while the kit's server loads a model with tree compilation on (`Handler(compile_trees=True)`): a
# model script's `for_serving` call compiles then, and only then; a pipeline step that calls the same
# model_fn to score a test set once, or a promotion's smoke test, gets scikit-learn (compiling costs a
# second or two and only pays back over many requests).
_serving: contextvars.ContextVar[bool] = contextvars.ContextVar("mlops_serving_compiles", default=False)


@contextlib.contextmanager
def serving(compile_trees: bool) -> Iterator[None]:
    token = _serving.set(compile_trees)
    try:
        yield
    finally:
        _serving.reset(token)


def for_serving(model: Any) -> Any:
    """For a model script's `model_fn`: `accelerate(model)` when the kit's server is loading it."""
    return accelerate(model) if _serving.get() else model


def _compiled_kernel() -> Any:
    """The numba loop, compiled on first use (and cached on disk by numba between processes)."""
    global _kernel
    if _kernel is not None:
        return _kernel
    from numba import njit

    @njit(cache=True, nogil=True)
    def accumulate(  # pragma: no cover - runs compiled; tested through CompiledBoosting against sklearn
        X,
        encode,
        source,
        cat_start,
        cat_count,
        cat_values,
        feature,
        threshold,
        missing_left,
        left,
        right,
        is_leaf,
        value,
        is_categorical,
        bitset_row,
        left_bits,
        known_bits,
        known_row,
        roots,
        out,
    ):
        n_features = source.shape[0]
        k = out.shape[1]
        row = np.empty(n_features)
        for r in range(X.shape[0]):
            for j in range(n_features):
                if not encode:
                    row[j] = X[r, j]
                    continue
                v = X[r, source[j]]
                m = cat_count[j]
                if m > 0 and not np.isnan(v):
                    if np.isinf(v):
                        return r  # scikit-learn's encoder refuses an infinite category: so do we
                    # the OrdinalEncoder: a known category becomes its index, an unknown one missing
                    lo = cat_start[j]
                    hi = lo + m
                    while lo < hi:
                        mid = (lo + hi) // 2
                        if cat_values[mid] < v:
                            lo = mid + 1
                        else:
                            hi = mid
                    known = lo < cat_start[j] + m and cat_values[lo] == v
                    v = float(lo - cat_start[j]) if known else np.nan
                row[j] = v
            for t in range(roots.shape[0]):
                node = roots[t]
                while not is_leaf[node]:
                    v = row[feature[node]]
                    if np.isnan(v):
                        go_left = missing_left[node]
                    elif is_categorical[node]:
                        if v < 0 or v >= 256:
                            go_left = missing_left[node]  # outside the encoder's range: missing
                        else:
                            c = np.int64(v)
                            if (left_bits[bitset_row[node], c >> 5] >> (c & 31)) & 1:
                                go_left = True
                            elif (known_bits[known_row[feature[node]], c >> 5] >> (c & 31)) & 1:
                                go_left = False
                            else:
                                go_left = missing_left[node]  # a category the tree never saw
                    else:
                        go_left = v <= threshold[node]
                    node = left[node] if go_left else right[node]
                out[r, t % k] += value[node]
        return -1

    _kernel = accumulate
    return _kernel


class CompiledBoosting:
    """A fitted HistGradientBoosting estimator's trees as flat arrays, walked by one compiled loop."""

    def __init__(self, estimator: Any):
        self.estimator = estimator
        self.n_features = int(estimator.n_features_in_)
        self.k = int(estimator.n_trees_per_iteration_)
        self.baseline = np.asarray(estimator._baseline_prediction, dtype=np.float64).reshape(1, -1)
        self._flatten(estimator._predictors)
        known, f_idx_map = estimator._bin_mapper.make_known_categories_bitsets()
        self.known_bits = _at_least_one_row(np.ascontiguousarray(known, dtype=np.uint32))
        self.known_row = np.ascontiguousarray(f_idx_map, dtype=np.int64)
        self.encoding = _input_encoding(estimator, self.n_features)  # None: only preprocessed input
        self.kernel = _compiled_kernel()
        self._identity = _identity_encoding(self.n_features)

    def _flatten(self, predictors: list[list[Any]]) -> None:
        fields = ("feature_idx", "num_threshold", "missing_go_to_left", "is_leaf", "value", "is_categorical")
        parts: dict[str, list[np.ndarray]] = {name: [] for name in (*fields, "left", "right", "bitset")}
        roots, bitsets = [], []
        offset = bit_offset = 0
        for iteration in predictors:  # iteration-major, as scikit-learn adds them
            for predictor in iteration:
                nodes = predictor.nodes
                roots.append(offset)
                for name in fields:
                    parts[name].append(nodes[name])
                parts["left"].append(nodes["left"].astype(np.int64) + offset)
                parts["right"].append(nodes["right"].astype(np.int64) + offset)
                parts["bitset"].append(nodes["bitset_idx"].astype(np.int64) + bit_offset)
                bitsets.append(np.asarray(predictor.raw_left_cat_bitsets, dtype=np.uint32).reshape(-1, 8))
                offset += len(nodes)
                bit_offset += len(bitsets[-1])
        joined = {name: np.concatenate(chunks) for name, chunks in parts.items()}
        self.feature = joined["feature_idx"].astype(np.int64)
        self.threshold = joined["num_threshold"].astype(np.float64)
        self.missing_left = joined["missing_go_to_left"].astype(np.bool_)
        self.is_leaf = joined["is_leaf"].astype(np.bool_)
        self.value = joined["value"].astype(np.float64)
        self.is_categorical = joined["is_categorical"].astype(np.bool_)
        self.left, self.right, self.bitset_row = joined["left"], joined["right"], joined["bitset"]
        self.left_bits = _at_least_one_row(np.ascontiguousarray(np.concatenate(bitsets), dtype=np.uint32))
        self.roots = np.asarray(roots, dtype=np.int64)
        self.n_nodes = offset

    @property
    def encodes_arrays(self) -> bool:
        """Whether numeric arrays in the estimator's input columns take the fast path."""
        return self.encoding is not None

    def raw_predict(self, X: Any) -> np.ndarray:
        """The raw scores, shape (rows, trees per iteration): scikit-learn's `_raw_predict`."""
        if self.encoding is not None and _plain_rows(X, self.n_features):
            return self._run(np.ascontiguousarray(X, dtype=np.float64), True, self.encoding)
        return self.raw_from_preprocessed(self.estimator._preprocess_X(X, reset=False))

    def raw_from_preprocessed(self, X: np.ndarray) -> np.ndarray:
        return self._run(np.ascontiguousarray(X, dtype=np.float64), False, self._identity)

    def _run(self, X: np.ndarray, encode: bool, encoding: tuple[np.ndarray, ...]) -> np.ndarray:
        out = np.empty((X.shape[0], self.k), dtype=np.float64, order="F")
        out[:] = self.baseline
        bad_row = self.kernel(
            X,
            encode,
            *encoding,
            self.feature,
            self.threshold,
            self.missing_left,
            self.left,
            self.right,
            self.is_leaf,
            self.value,
            self.is_categorical,
            self.bitset_row,
            self.left_bits,
            self.known_bits,
            self.known_row,
            self.roots,
            out,
        )
        if bad_row >= 0:
            raise ValueError(f"Input contains infinity in a categorical column (row {bad_row + 1}).")
        return out

    # scikit-learn's own post-processing of the raw scores, so the outputs match exactly
    def predict(self, X: Any) -> np.ndarray:
        raw = self.raw_predict(X)
        if hasattr(self.estimator, "classes_"):
            encoded = (raw.ravel() > 0).astype(int) if raw.shape[1] == 1 else np.argmax(raw, axis=1)
            return self.estimator.classes_[encoded]
        return self.estimator._loss.link.inverse(raw.ravel())

    def predict_proba(self, X: Any) -> np.ndarray:
        return self.estimator._loss.predict_proba(self.raw_predict(X))

    def decision_function(self, X: Any) -> np.ndarray:
        raw = self.raw_predict(X)
        return raw.ravel() if raw.shape[1] == 1 else raw


def _at_least_one_row(bits: np.ndarray) -> np.ndarray:
    return bits if len(bits) else np.zeros((1, 8), dtype=np.uint32)


def _plain_rows(X: Any, width: int) -> bool:
    return (
        type(X) is np.ndarray
        and X.ndim == 2
        and X.shape[1] == width
        and X.dtype.kind in "fiu"
        and X.dtype != np.float16
    )


def _identity_encoding(n_features: int) -> tuple[np.ndarray, ...]:
    """Model column j is input column j and no column is categorical (source, start, count, values)."""
    zeros = np.zeros(n_features, dtype=np.int64)
    return np.arange(n_features, dtype=np.int64), zeros, zeros, np.zeros(1, dtype=np.float64)


def _input_encoding(estimator: Any, n_features: int) -> tuple[np.ndarray, ...] | None:
    """How the estimator's preprocessor maps input columns to model columns, as arrays for the loop.

    Without categorical features there is no preprocessor: model column j is input column j. With them,
    scikit-learn's ColumnTransformer puts the ordinal-encoded categorical columns first, then the others.
    None when the categories are not numbers (strings only arrive in DataFrames, which take the slow path).
    """
    preprocessor = getattr(estimator, "_preprocessor", None)
    if preprocessor is None:
        return _identity_encoding(n_features)
    mask = np.asarray(estimator.is_categorical_, dtype=bool)
    if mask.shape != (n_features,):
        return None
    encoder = preprocessor.named_transformers_["encoder"]
    source = np.concatenate([np.flatnonzero(mask), np.flatnonzero(~mask)]).astype(np.int64)
    cat_start = np.zeros(n_features, dtype=np.int64)
    cat_count = np.zeros(n_features, dtype=np.int64)
    values: list[float] = []
    for j, categories in enumerate(encoder.categories_):
        if np.asarray(categories).dtype.kind not in "fiub":
            return None
        known = np.asarray(categories, dtype=np.float64)
        known = known[~np.isnan(known)]
        if np.any(np.diff(known) <= 0):
            return None  # the binary search needs sorted, distinct categories (the encoder's own order)
        cat_start[j], cat_count[j] = len(values), len(known)
        values.extend(known.tolist())
    return source, cat_start, cat_count, np.asarray(values or [0.0], dtype=np.float64)


# --- checking the compiled loop against scikit-learn -------------------------------------------------


def _thresholds(compiled: CompiledBoosting, feature: int) -> np.ndarray:
    mask = (compiled.feature == feature) & ~compiled.is_leaf & ~compiled.is_categorical
    found = compiled.threshold[mask]
    found = found[np.isfinite(found)]
    return np.unique(np.concatenate([found, np.nextafter(found, -np.inf), np.nextafter(found, np.inf)]))


def probe_rows(compiled: CompiledBoosting, rows: int = 2048, seed: int = PROBE_SEED) -> np.ndarray:
    """Rows in the model's own columns that reach every split's edges, every category, NaN and worse."""
    rng = np.random.default_rng(seed)
    is_cat_feature = np.zeros(compiled.n_features, dtype=bool)
    is_cat_feature[compiled.feature[compiled.is_categorical & ~compiled.is_leaf]] = True
    out = np.empty((rows, compiled.n_features), dtype=np.float64)
    for j in range(compiled.n_features):
        if is_cat_feature[j]:
            n = int(max(1, np.unpackbits(compiled.known_bits.view(np.uint8)).sum()))
            pool = np.concatenate([np.arange(n + 2, dtype=np.float64), [-1.0, 0.5, 300.0, np.nan]])
        else:
            edges = _thresholds(compiled, j)
            pool = np.concatenate([edges, [np.nan, np.inf, -np.inf, 0.0]]) if len(edges) else np.array([0.0])
        out[:, j] = rng.choice(pool, size=rows)
    return out


def _input_probe_rows(
    compiled: CompiledBoosting, model_rows: np.ndarray, seed: int = PROBE_SEED
) -> np.ndarray:
    """The same probes in the estimator's input columns and raw category values (plus unknown ones)."""
    source, cat_start, cat_count, cat_values = compiled.encoding
    rng = np.random.default_rng(seed + 1)
    out = np.empty_like(model_rows)
    for j in range(compiled.n_features):
        column = model_rows[:, j].copy()
        if cat_count[j]:
            known = cat_values[cat_start[j] : cat_start[j] + cat_count[j]]
            pool = np.concatenate([known, [known.min() - 1, known.max() + 1, known[0] + 0.5, np.nan]])
            column = rng.choice(pool, size=len(column))
        out[:, source[j]] = column
    return out


def _reference_from_preprocessed(estimator: Any, X: np.ndarray) -> np.ndarray:
    raw = np.zeros((X.shape[0], estimator.n_trees_per_iteration_), dtype=np.float64, order="F")
    raw += estimator._baseline_prediction
    estimator._predict_iterations(X, estimator._predictors, raw, is_binned=False, n_threads=1)
    return raw


def check(compiled: CompiledBoosting, rows: int = 2048) -> str | None:
    """None when the loop matches scikit-learn on every probe row; else what differed.

    If only the encoding of raw input columns differs, the fast path for numeric arrays is switched off
    (they then go through scikit-learn's preprocessing) and the loop itself still counts as checked.
    """
    model_rows = probe_rows(compiled, rows)
    expected = _reference_from_preprocessed(compiled.estimator, model_rows)
    got = compiled.raw_from_preprocessed(model_rows)
    if not np.array_equal(expected, got):
        return f"preprocessed rows differ from scikit-learn on {_differing(expected, got)} of {rows} probes"
    if compiled.encoding is not None:
        inputs = _input_probe_rows(compiled, model_rows)
        try:
            with warnings.catch_warnings():  # scikit-learn's encoder on rows it may refuse
                warnings.simplefilter("ignore", RuntimeWarning)
                expected = compiled.estimator._raw_predict(inputs)
            got = compiled.raw_predict(inputs)
            differing = None if np.array_equal(expected, got) else _differing(expected, got)
        except ValueError:  # scikit-learn refused rows the encoding took for valid ones: it is wrong
            differing = rows
        if differing is not None:
            compiled.encoding = None
            log.warning(
                "compiled input encoding differs from scikit-learn on %d of %d probes; numeric rows use "
                "scikit-learn's preprocessing",
                differing,
                rows,
            )
    return None


def _differing(expected: np.ndarray, got: np.ndarray) -> int:
    same = (expected == got) | (np.isnan(expected) & np.isnan(got))
    return int((~same.all(axis=1)).sum())


# --- the stand-in a server holds ----------------------------------------------------------------------


# Above this many rows the fixed cost the loop saves is nothing next to the work itself, and
# scikit-learn spreads the rows over its OpenMP threads where the loop uses one core: its own predict
# is used (the numbers are the same either way).
LARGE_BATCH = 10_000


class Accelerated:
    """A fitted model whose predictions come from compiled trees; every other attribute is the model's."""

    def __init__(self, model: Any, compiled: CompiledBoosting, steps: list[Any]):
        self._model = model
        self._compiled = compiled
        self._steps = steps  # a Pipeline's transformers before its final estimator

    def __getattr__(self, name: str) -> Any:
        if name in ("_model", "_compiled", "_steps") or name.startswith("__"):
            raise AttributeError(name)  # not set yet (copy, unpickling): never recurse
        return getattr(self._model, name)

    def __repr__(self) -> str:
        return f"Accelerated({self._model!r})"

    @property
    def wrapped(self) -> Any:
        return self._model

    def _transform(self, X: Any) -> Any:
        for step in self._steps:
            X = step.transform(X)
        return X

    def predict(self, X: Any) -> np.ndarray:
        if len(X) > LARGE_BATCH:
            return self._model.predict(X)
        return self._compiled.predict(self._transform(X))

    def predict_proba(self, X: Any) -> np.ndarray:
        if len(X) > LARGE_BATCH:
            return self._model.predict_proba(X)
        return self._compiled.predict_proba(self._transform(X))

    def decision_function(self, X: Any) -> np.ndarray:
        if len(X) > LARGE_BATCH:
            return self._model.decision_function(X)
        return self._compiled.decision_function(self._transform(X))


def _final_boosting(model: Any) -> tuple[Any, list[Any]] | None:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.pipeline import Pipeline

    steps: list[Any] = []
    final = model
    if isinstance(model, Pipeline):
        steps = [step for _, step in model.steps[:-1] if step not in (None, "passthrough")]
        final = model.steps[-1][1]
    if isinstance(final, (HistGradientBoostingClassifier, HistGradientBoostingRegressor)):
        return final, steps
    return None


def accelerate(model: Any) -> Any:
    """`model` with compiled tree predictions when that gives exactly its answers; otherwise `model`."""
    if isinstance(model, Accelerated):
        return model
    try:
        found = _final_boosting(model)
    except ImportError:
        return model
    if found is None:
        return model
    estimator, steps = found
    try:
        compiled = CompiledBoosting(estimator)
        problem = check(compiled)
    except Exception as exc:  # a scikit-learn internals change, numba missing: serve the model as it is
        log.warning(
            "tree compilation skipped (%s: %s); predictions use scikit-learn", type(exc).__name__, exc
        )
        return model
    if problem is not None:
        log.warning("tree compilation skipped: %s; predictions use scikit-learn", problem)
        return model
    log.info(
        "compiled %d trees (%d nodes) for predictions; equal to scikit-learn on its probe rows",
        len(compiled.roots),
        compiled.n_nodes,
    )
    return Accelerated(model, compiled, steps)


def describe(model: Any) -> str:
    return "compiled trees" if isinstance(model, Accelerated) else "scikit-learn"


__all__ = [
    "Accelerated",
    "CompiledBoosting",
    "accelerate",
    "check",
    "describe",
    "for_serving",
    "probe_rows",
    "serving",
]
