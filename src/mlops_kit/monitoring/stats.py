"""Statistics and constraints in SageMaker Model Monitor's file formats, from a DataFrame.

`baseline(frame)` profiles the training data into `statistics.json` and `constraints.json` documents;
`profile(frame, baseline_statistics)` profiles a window of captured requests the same way and, feature by
feature, measures its drift from the baseline (PSI on the baseline's decile bins and KS for numbers,
PSI, L-infinity and chi-square for categories). Only numpy and pandas: this runs inside SageMaker's
project's runtime image as the monitoring job.

Model Monitor's documented fields are all there. What the kit adds sits under `"mlops_kit"` keys, which
Model Monitor's readers ignore: the baseline's PSI bins with their counts and a CDF grid (for KS without
the raw data), and, in a window's statistics, the drift measured against the baseline.

Each numeric column is sorted once; every quantile, bucket, bin count and CDF value is then a binary
search into the sorted values, so a profile costs about one sort per numeric column.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from mlops_kit.monitoring import drift

VERSION = 0
KIT = "mlops_kit"  # the key of the kit's additions to Model Monitor's documents
KIT_FORMAT = 1

INTEGRAL, FRACTIONAL, STRING, UNKNOWN = "Integral", "Fractional", "String", "Unknown"
NUMERIC_TYPES = (INTEGRAL, FRACTIONAL)

KLL_BUCKETS = 10  # Model Monitor materializes its distributions in 10 buckets
KLL_PARAMETERS = {"c": 0.64, "k": 2048.0}  # the KLL defaults Model Monitor reports
CDF_GRID = 1000  # quantile resolution of the baseline's CDF: KS is exact to within 1/CDF_GRID
PSI_BINS = 10  # PSI on the baseline's deciles
CATEGORY_BUCKETS_MAX = 100  # the most frequent values kept per string feature; the rest is "other"
DOMAIN_MAX = 50  # string features with at most this many values get a `domains` constraint
OTHER = "(other)"
_SNIFF_ROWS = 1000  # values parsed first to tell a text column from a column of numbers in text

DEFAULT_MONITORING_CONFIG: dict[str, Any] = {
    "evaluate_constraints": "Enabled",
    "emit_metrics": "Enabled",
    "datatype_check_threshold": 0.1,
    "domain_content_threshold": 0.1,
    "distribution_constraints": {
        "perform_comparison": "Enabled",
        "comparison_threshold": 0.1,
        "comparison_method": "Robust",
        "categorical_comparison_threshold": 0.1,
        "categorical_drift_method": "LInfinity",
    },
}
DEFAULT_PSI_THRESHOLD = 0.2


# --- the public functions ---------------------------------------------------------------------------


def baseline_columns(
    frame: pd.DataFrame,
    features: Sequence[str] | None,
    prediction_column: str | None,
    label_column: str | None,
) -> tuple[list[str], list[str]]:
    """The baseline's feature columns and its prediction/label columns, checked against `frame`: at least
    one feature, no name twice, every one present."""
    extra = [c for c in (prediction_column, label_column) if c]
    names = list(features) if features is not None else [c for c in frame.columns if c not in extra]
    wanted = names + extra
    if not names:
        raise ValueError("the baseline needs at least one feature column")
    if len(set(wanted)) != len(wanted):
        raise ValueError(f"duplicate feature names in the baseline: {wanted}")
    absent = [c for c in wanted if c not in frame.columns]
    if absent:
        raise ValueError(f"the baseline data has no column {', '.join(map(repr, absent))}")
    return names, extra


def baseline(
    frame: pd.DataFrame,
    *,
    features: Sequence[str] | None = None,
    prediction_column: str | None = None,
    label_column: str | None = None,
    psi_threshold: float = DEFAULT_PSI_THRESHOLD,
    monitoring_config: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(statistics, constraints) of the training data, in Model Monitor's formats.

    `features` are the model's inputs in the order the endpoint receives them (CSV requests carry no
    header, so a window's columns take this order); by default every column except `prediction_column`
    and `label_column`. `prediction_column`, when given, holds the model's answers on this data (scores,
    values or classes), the baseline for prediction drift; `label_column` the true labels, the baseline
    for label drift once ground truth arrives. `psi_threshold` is the PSI above which a feature counts as
    drifted (the settings' `monitoring.drift_threshold`).
    """
    names, extra = baseline_columns(frame, features, prediction_column, label_column)
    wanted = names + extra
    if len(frame) == 0:
        raise ValueError("the baseline data has no rows")
    if psi_threshold <= 0:
        raise ValueError(f"psi_threshold must be positive, got {psi_threshold}")

    records = [_baseline_feature(str(c), frame[c]) for c in wanted]
    statistics = {
        "version": VERSION,
        "dataset": {"item_count": len(frame)},
        "features": records,
        KIT: {"format": KIT_FORMAT, "prediction_feature": prediction_column},
    }
    if label_column:
        statistics[KIT]["label_feature"] = label_column
    config = _merged(DEFAULT_MONITORING_CONFIG, monitoring_config or {})
    config["distribution_constraints"]["psi_threshold"] = float(psi_threshold)
    constraints = {
        "version": VERSION,
        "features": [_constraint(r, len(frame)) for r in records],
        "monitoring_config": config,
    }
    return statistics, constraints


def profile(frame: pd.DataFrame, baseline_statistics: dict[str, Any] | None = None) -> dict[str, Any]:
    """Statistics of a window, in Model Monitor's format; with a baseline, each shared feature also
    carries its drift from it (`features[i].mlops_kit.drift`)."""
    by_name = {f["name"]: f for f in (baseline_statistics or {}).get("features", [])}
    records = []
    for column in frame.columns:
        base = by_name.get(str(column))
        records.append(_window_feature(str(column), frame[column], base))
    kit = dict((baseline_statistics or {}).get(KIT) or {"format": KIT_FORMAT, "prediction_feature": None})
    return {"version": VERSION, "dataset": {"item_count": len(frame)}, "features": records, KIT: kit}


def input_features(statistics: dict[str, Any]) -> list[str]:
    """The model's input features, in request order (everything but the prediction and the label)."""
    outputs = {prediction_feature(statistics), label_feature(statistics)}
    return [f["name"] for f in statistics["features"] if f["name"] not in outputs]


def prediction_feature(statistics: dict[str, Any]) -> str | None:
    return (statistics.get(KIT) or {}).get("prediction_feature")


def label_feature(statistics: dict[str, Any]) -> str | None:
    """The true label's feature, when the baseline has one (the baseline of label drift)."""
    return (statistics.get(KIT) or {}).get("label_feature")


def feature_types(statistics: dict[str, Any]) -> dict[str, str]:
    return {f["name"]: f["inferred_type"] for f in statistics["features"]}


# --- classifying a column ---------------------------------------------------------------------------


def _is_numeric_dtype(series: pd.Series) -> bool:
    dtype = series.dtype
    return (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)) and not (
        pd.api.types.is_complex_dtype(dtype)
    )


def _is_text_like(series: pd.Series) -> bool:
    return not _is_numeric_dtype(series) and not pd.api.types.is_datetime64_any_dtype(series.dtype)


def _numbers(series: pd.Series) -> tuple[np.ndarray, int, int]:
    """(float values with NaN where missing or not a number, missing count, non-numeric count)."""
    if _is_numeric_dtype(series):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        return values, -1, 0  # -1: missing is counted after the sort, where it costs nothing
    missing = series.isna().to_numpy()
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    non_numeric = int(np.count_nonzero(np.isnan(values) & ~missing))
    return values, int(missing.sum()), non_numeric


def _looks_numeric(series: pd.Series) -> bool:
    """Whether a text column holds numbers: every one of its first present values parses as one."""
    if _is_numeric_dtype(series):
        return True
    if not _is_text_like(series):
        return False
    sample = series.dropna().head(_SNIFF_ROWS)
    if len(sample) == 0:
        return False
    parsed = pd.to_numeric(sample, errors="coerce")
    return not parsed.isna().any()


def _strings(series: pd.Series) -> pd.Series:
    if pd.api.types.is_string_dtype(series.dtype) or isinstance(series.dtype, pd.CategoricalDtype):
        return series
    text = series.astype("str")
    return text.where(series.notna(), None)


# --- numeric profiles -------------------------------------------------------------------------------


class _Sorted:
    """A numeric column sorted once, with the present values first (NaN sorts last)."""

    def __init__(self, values: np.ndarray):
        ordered = np.sort(values)
        # NaN sorts last and searchsorted places NaN after every number: the present count is O(log n).
        self.present = int(np.searchsorted(ordered, np.nan, side="left"))
        self.values = ordered[: self.present]
        self.missing_sorted = len(ordered) - self.present

    def below(self, points: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.values, points, side="left")

    def at_or_below(self, points: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.values, points, side="right")

    def quantiles(self, probabilities: np.ndarray) -> np.ndarray:
        """Nearest-rank quantiles (values that occur in the data, as a sketch's items do)."""
        index = np.rint(probabilities * (self.present - 1)).astype(np.int64)
        return self.values[index]


def _moments(values: np.ndarray) -> tuple[float, float, float]:
    """(sum, mean, population std) in two passes without temporaries, unless cancellation threatens."""
    n = len(values)
    total = float(values.sum())
    mean = total / n
    second = float(np.dot(values, values)) / n
    variance = second - mean * mean
    if mean * mean > 1e6 * max(variance, 0.0) or variance <= 0:
        centered = values - mean  # E[x^2] - mean^2 would lose the digits that matter here
        variance = float(np.dot(centered, centered)) / n
    return total, mean, float(np.sqrt(max(variance, 0.0)))


def _kll_buckets(column: _Sorted, low: float, high: float) -> list[dict[str, float]]:
    """10 equal-width buckets over [min, max] with their counts, the last one closed."""
    edges = np.linspace(low, high, KLL_BUCKETS + 1) if high > low else np.full(KLL_BUCKETS + 1, low)
    counts = _bucket_counts(column, edges)
    return [
        {"lower_bound": float(edges[i]), "upper_bound": float(edges[i + 1]), "count": float(counts[i])}
        for i in range(KLL_BUCKETS)
    ]


def _bucket_counts(column: _Sorted, edges: np.ndarray) -> np.ndarray:
    """Counts in [e0, e1), [e1, e2), ..., [e_{k-1}, e_k] (values outside are not counted)."""
    positions = column.below(edges[:-1])
    end = column.at_or_below(edges[-1:])
    bounds = np.concatenate([positions, end])
    counts = np.diff(bounds)
    return np.maximum(counts, 0)


def _bin_counts(column: _Sorted, inner_edges: np.ndarray) -> np.ndarray:
    """Counts in (-inf, e1), [e1, e2), ..., [e_last, inf): every present value lands in one bin."""
    positions = column.below(inner_edges)
    return np.diff(np.concatenate([[0], positions, [column.present]]))


def _numeric_statistics(column: _Sorted, missing: int) -> dict[str, Any]:
    common = {"num_present": column.present, "num_missing": missing}
    if column.present == 0:
        return {"common": common}
    total, mean, std = _moments(column.values)
    low, high = float(column.values[0]), float(column.values[-1])
    grid = column.quantiles(np.linspace(0.0, 1.0, CDF_GRID + 1))
    return {
        "common": common,
        "mean": mean,
        "sum": total,
        "std_dev": std,
        "min": low,
        "max": high,
        "distribution": {
            "kll": {
                "buckets": _kll_buckets(column, low, high),
                # One compactor level of evenly spaced ranks: a valid sketch for any KLL reader.
                "sketch": {"parameters": dict(KLL_PARAMETERS), "data": [grid.tolist()]},
            }
        },
    }


def _numeric_type(column: _Sorted, integer_dtype: bool) -> str:
    if column.present == 0:
        return UNKNOWN
    if integer_dtype:
        return INTEGRAL
    return FRACTIONAL if _has_fraction(column.values) else INTEGRAL


def _has_fraction(values: np.ndarray) -> bool:
    """Whether any value is not a whole number; a spread sample answers most columns without a full pass."""
    sample = values[:: max(1, len(values) // _SNIFF_ROWS)]
    if np.any(sample != np.floor(sample)):
        return True
    return bool(np.any(values != np.floor(values)))


def _fraction_count(values: np.ndarray) -> int:
    return int(np.count_nonzero(values != np.floor(values)))


def _baseline_numeric_kit(column: _Sorted) -> dict[str, Any]:
    """The baseline's PSI bins and CDF grid, so windows are compared without the training data."""
    inner = np.unique(column.quantiles(np.arange(1, PSI_BINS) / PSI_BINS))
    values = np.unique(column.quantiles(np.linspace(0.0, 1.0, CDF_GRID + 1)))
    n = column.present
    return {
        "bins": {"edges": inner.tolist(), "counts": _bin_counts(column, inner).tolist()},
        "cdf": {
            "values": values.tolist(),
            "below": (column.below(values) / n).tolist(),
            "at_or_below": (column.at_or_below(values) / n).tolist(),
        },
    }


# --- string profiles --------------------------------------------------------------------------------


def _string_statistics(series: pd.Series) -> tuple[dict[str, Any], pd.Series]:
    text = _strings(series)
    counts = text.value_counts(dropna=True, sort=True)
    counts = counts[counts > 0]
    present = int(counts.sum())
    top = counts.head(CATEGORY_BUCKETS_MAX)
    stats = {
        "common": {"num_present": present, "num_missing": len(series) - present},
        "distinct_count": float(len(counts)),
        "distribution": {
            "categorical": {"buckets": [{"value": str(v), "count": float(c)} for v, c in top.items()]}
        },
    }
    return stats, counts


# --- features ---------------------------------------------------------------------------------------


def _baseline_feature(name: str, series: pd.Series) -> dict[str, Any]:
    if _looks_numeric(series):
        values, missing, non_numeric = _numbers(series)
        if non_numeric == 0:
            column = _Sorted(values)
            missing = column.missing_sorted if missing < 0 else missing
            record: dict[str, Any] = {
                "name": name,
                "inferred_type": _numeric_type(
                    column,
                    pd.api.types.is_integer_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype),
                ),
                "numerical_statistics": _numeric_statistics(column, missing),
            }
            if column.present:
                record[KIT] = _baseline_numeric_kit(column)
            return record
    stats, _ = _string_statistics(series)
    kind = STRING if stats["common"]["num_present"] else UNKNOWN
    return {"name": name, "inferred_type": kind, "string_statistics": stats}


def _window_feature(name: str, series: pd.Series, base: dict[str, Any] | None) -> dict[str, Any]:
    """A window's feature, profiled as the baseline typed it (or by its own look, if new)."""
    numeric = base["inferred_type"] in NUMERIC_TYPES if base else _looks_numeric(series)
    if not numeric:
        stats, counts = _string_statistics(series)
        record = {
            "name": name,
            "inferred_type": STRING if stats["common"]["num_present"] else UNKNOWN,
            "string_statistics": stats,
        }
        if base is not None and "string_statistics" in base:
            record[KIT] = {"drift": _categorical_drift(base, counts)}
        return record

    values, missing, non_numeric = _numbers(series)
    column = _Sorted(values)
    missing = column.missing_sorted if missing < 0 else missing
    integer_dtype = pd.api.types.is_integer_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype)
    kind = _numeric_type(column, integer_dtype) if non_numeric == 0 else STRING
    # Only an Integral baseline needs the exact count of fractional values (its data type check).
    fractional = 0
    if base is not None and base["inferred_type"] == INTEGRAL and not integer_dtype and column.present:
        fractional = _fraction_count(column.values)
    record = {
        "name": name,
        "inferred_type": kind,
        "numerical_statistics": _numeric_statistics(column, missing),
        KIT: {"non_numeric": non_numeric, "fractional": fractional},
    }
    if base is not None and KIT in base and column.present:
        record[KIT]["drift"] = _numeric_drift(base, column)
    return record


def _numeric_drift(base: dict[str, Any], column: _Sorted) -> dict[str, Any]:
    kit = base[KIT]
    inner = np.asarray(kit["bins"]["edges"], dtype=np.float64)
    expected = np.asarray(kit["bins"]["counts"], dtype=np.float64)
    actual = _bin_counts(column, inner)
    cdf = kit["cdf"]
    grid = np.asarray(cdf["values"], dtype=np.float64)
    n = column.present
    ks = drift.ks_from_cdf(
        cdf["below"], cdf["at_or_below"], column.below(grid) / n, column.at_or_below(grid) / n
    )
    buckets = base["numerical_statistics"]["distribution"]["kll"]["buckets"]
    edges = np.asarray([b["lower_bound"] for b in buckets] + [buckets[-1]["upper_bound"]], dtype=np.float64)
    current_hist = _bucket_counts(column, edges)
    return {
        "kind": "numeric",
        "psi": drift.psi(expected, actual),
        "ks": ks,
        "baseline_count": int(expected.sum()),
        "count": n,
        "bins": {
            "edges": inner.tolist(),
            "baseline": expected.astype(int).tolist(),
            "current": actual.tolist(),
        },
        "histogram": {
            "edges": edges.tolist(),
            "baseline": [int(b["count"]) for b in buckets],
            "current": current_hist.tolist(),
            "below": int(column.below(edges[:1])[0]),
            "above": int(n - column.at_or_below(edges[-1:])[0]),
        },
    }


def _categorical_drift(base: dict[str, Any], counts: pd.Series) -> dict[str, Any] | None:
    stats = base["string_statistics"]
    buckets = stats["distribution"]["categorical"]["buckets"]
    values = [b["value"] for b in buckets]
    expected = np.asarray([b["count"] for b in buckets], dtype=np.float64)
    base_other = max(stats["common"]["num_present"] - expected.sum(), 0.0)
    present = int(counts.sum())
    if present == 0 or expected.sum() <= 0:
        return None
    index = {str(v): i for i, v in enumerate(values)}
    actual = np.zeros(len(values), dtype=np.float64)
    for value, count in counts.items():
        i = index.get(str(value))
        if i is not None:
            actual[i] += count
    unseen = float(present - actual.sum())
    expected_all = np.append(expected, base_other)
    actual_all = np.append(actual, unseen)
    chi2, p_value = drift.chi_square(expected_all, actual_all)
    return {
        "kind": "categorical",
        "psi": drift.psi(expected_all, actual_all),
        "linf": drift.l_infinity(expected_all, actual_all),
        "chi_square": chi2,
        "chi_square_p": p_value,
        "baseline_count": int(expected_all.sum()),
        "count": present,
        "unseen": int(unseen),
        "histogram": {
            "values": [*values, OTHER],
            "baseline": expected_all.astype(int).tolist(),
            "current": actual_all.astype(int).tolist(),
        },
    }


# --- constraints ------------------------------------------------------------------------------------


def _constraint(record: dict[str, Any], item_count: int) -> dict[str, Any]:
    kind = record["inferred_type"]
    stats = record.get("numerical_statistics") or record.get("string_statistics")
    present = stats["common"]["num_present"]
    out: dict[str, Any] = {
        "name": record["name"],
        "inferred_type": kind,
        "completeness": present / item_count,
    }
    if "numerical_statistics" in record and present:
        out["num_constraints"] = {"is_non_negative": bool(stats["min"] >= 0)}
    if "string_statistics" in record and present and stats["distinct_count"] <= DOMAIN_MAX:
        out["string_constraints"] = {
            "domains": [b["value"] for b in stats["distribution"]["categorical"]["buckets"]]
        }
    return out


def _merged(default: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in default.items()}
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out
