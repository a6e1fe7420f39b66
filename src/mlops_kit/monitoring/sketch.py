"""Baseline statistics computed a shard at a time and merged: what a sharded Baseline step needs.

`sketch(frame)` summarises one chunk of the training data (a partition on one instance) into a small JSON
document; `merge(sketches)` adds any number of them; `baseline(merged)` turns the sum into the same
`statistics.json` / `constraints.json` documents as `stats.baseline(whole frame)`. Per column:
- exact, whatever the sharding: row, present and missing counts, sum, min, max, the inferred type,
  and every category's count;
- exact up to floating-point rounding: mean and standard deviation (counts, means and centred second
  moments, merged with Chan et al.'s pairwise update);
- within a documented rank error: everything read from the distribution (the CDF grid, the PSI decile
  edges and their bin counts, the histogram buckets). A chunk of n present values keeps its values
  exactly when n <= SKETCH_POINTS, else SKETCH_POINTS of them at evenly spaced ranks, each standing for
  the < n / SKETCH_POINTS + 1 values up to the next; merging concatenates these weighted points, so the
  merged estimate of "how many values are below x" is off by at most `rank_error` (the sum over chunks
  of their largest weight): at most n / SKETCH_POINTS + (number of chunks) for n values in all. One
  chunk of at most SKETCH_POINTS values, or chunks that all are, give exactly `stats.baseline`'s answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from mlops_kit.monitoring import stats

FORMAT = 1
SKETCH_POINTS = 4096  # points kept per chunk and column: rank error <= n / 4096 + chunks


# --- one chunk ----------------------------------------------------------------------------------------


def sketch(
    frame: pd.DataFrame,
    *,
    features: Sequence[str] | None = None,
    prediction_column: str | None = None,
    label_column: str | None = None,
) -> dict[str, Any]:
    """The mergeable summary of one chunk of baseline data (same columns as `stats.baseline` takes)."""
    names, extra = stats.baseline_columns(frame, features, prediction_column, label_column)
    wanted = names + extra
    return {
        "format": FORMAT,
        "rows": len(frame),
        "columns": [str(c) for c in wanted],
        "prediction_feature": prediction_column,
        "label_feature": label_column,
        "features": {str(c): _column(frame[c]) for c in wanted},
    }


def _column(series: pd.Series) -> dict[str, Any]:
    if stats._looks_numeric(series):
        values, missing, non_numeric = stats._numbers(series)
        if non_numeric == 0:
            present_values = np.sort(values[~np.isnan(values)])
            n = len(present_values)
            points, weights, error = _summary(present_values)
            out: dict[str, Any] = {
                "kind": "numeric",
                "present": n,
                "missing": len(series) - n if missing < 0 else missing,
                "integer_dtype": bool(
                    pd.api.types.is_integer_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype)
                ),
                "fractional": bool(n and stats._has_fraction(present_values)),
                "points": points.tolist(),
                "weights": weights.tolist(),
                "rank_error": error,
            }
            if n:
                mean = float(present_values.mean())
                centred = present_values - mean
                out.update(
                    sum=float(present_values.sum()),
                    mean=mean,
                    m2=float(np.dot(centred, centred)),
                    min=float(present_values[0]),
                    max=float(present_values[-1]),
                )
            return out
    text = stats._strings(series)
    counts = text.value_counts(dropna=True)
    counts = counts[counts > 0]
    present = int(counts.sum())
    return {
        "kind": "string",
        "present": present,
        "missing": len(series) - present,
        "counts": {str(v): int(c) for v, c in counts.items()},
    }


def _summary(ordered: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """(points, integer weights, rank error) of sorted values: all of them when few, else SKETCH_POINTS
    at ranks floor(j n / m), each weighted by the number of values up to the next."""
    n = len(ordered)
    if n <= SKETCH_POINTS:
        points, weights = np.unique(ordered, return_counts=True)
        return points, weights.astype(np.int64), 0
    ranks = (np.arange(SKETCH_POINTS + 1, dtype=np.int64) * n) // SKETCH_POINTS
    weights = np.diff(ranks)
    points, inverse = np.unique(ordered[ranks[:-1]], return_inverse=True)
    merged = np.bincount(inverse, weights=weights).astype(np.int64)
    return points, merged, int(weights.max())


# --- merging -----------------------------------------------------------------------------------------


def merge(sketches: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The sum of chunks' sketches: as if one chunk had held all their rows (see the module)."""
    if not sketches:
        raise ValueError("no baseline sketches to merge: the shards wrote none")
    first = sketches[0]
    for other in sketches[1:]:
        for key in ("format", "columns", "prediction_feature", "label_feature"):
            if other.get(key) != first.get(key):
                raise ValueError(
                    f"baseline sketches disagree on {key}: {first.get(key)!r} and {other.get(key)!r}"
                )
    return {
        **{k: first[k] for k in ("format", "columns", "prediction_feature", "label_feature")},
        "rows": sum(int(s["rows"]) for s in sketches),
        "features": {
            name: _merge_column(name, [s["features"][name] for s in sketches]) for name in first["columns"]
        },
    }


def _merge_column(name: str, parts: list[dict[str, Any]]) -> dict[str, Any]:
    kinds = {p["kind"] for p in parts if p["present"]} or {parts[0]["kind"]}
    if len(kinds) > 1:
        raise ValueError(f"column {name!r} holds numbers in some shards and text in others")
    kind = kinds.pop()
    if kind == "string":
        counts: dict[str, int] = {}
        for part in parts:
            for value, count in part.get("counts", {}).items():
                counts[value] = counts.get(value, 0) + int(count)
        present = sum(counts.values())
        missing = sum(int(p["present"]) + int(p["missing"]) for p in parts) - present
        return {"kind": "string", "present": present, "missing": missing, "counts": counts}
    numeric = [p for p in parts if p["kind"] == "numeric" and p["present"]]
    out: dict[str, Any] = {
        "kind": "numeric",
        "present": sum(int(p["present"]) for p in numeric),
        "missing": sum(int(p["present"]) + int(p["missing"]) for p in parts)
        - sum(int(p["present"]) for p in numeric),
        "integer_dtype": all(p["integer_dtype"] for p in numeric) if numeric else False,
        "fractional": any(p["fractional"] for p in numeric),
        "rank_error": sum(int(p["rank_error"]) for p in numeric),
    }
    if not numeric:
        return {**out, "points": [], "weights": []}
    points = np.concatenate([np.asarray(p["points"], dtype=np.float64) for p in numeric])
    weights = np.concatenate([np.asarray(p["weights"], dtype=np.int64) for p in numeric])
    unique, inverse = np.unique(points, return_inverse=True)
    n, mean, m2 = 0, 0.0, 0.0
    for p in numeric:  # Chan et al.: exact merge of counts, means and centred second moments
        nb, mb = int(p["present"]), float(p["mean"])
        delta = mb - mean
        total = n + nb
        mean += delta * nb / total
        m2 += float(p["m2"]) + delta * delta * n * nb / total
        n = total
    return {
        **out,
        "points": unique.tolist(),
        "weights": np.bincount(inverse, weights=weights).astype(np.int64).tolist(),
        "sum": float(sum(p["sum"] for p in numeric)),
        "mean": mean,
        "m2": m2,
        "min": min(float(p["min"]) for p in numeric),
        "max": max(float(p["max"]) for p in numeric),
    }


def rank_error(merged: dict[str, Any], column: str) -> int:
    """How far, in values, a merged sketch's count of "values below x" may be from the truth."""
    return int(merged["features"][column].get("rank_error", 0))


# --- the baseline ------------------------------------------------------------------------------------


class _Weighted:
    """Weighted points standing in for a sorted column (`stats._Sorted`'s reading interface)."""

    def __init__(self, points: Sequence[float], weights: Sequence[int]):
        self.points = np.asarray(points, dtype=np.float64)
        self.cumulative = np.concatenate([[0], np.cumsum(np.asarray(weights, dtype=np.int64))])
        self.present = int(self.cumulative[-1])

    def below(self, x: np.ndarray) -> np.ndarray:
        return self.cumulative[np.searchsorted(self.points, x, side="left")]

    def at_or_below(self, x: np.ndarray) -> np.ndarray:
        return self.cumulative[np.searchsorted(self.points, x, side="right")]

    def quantiles(self, probabilities: np.ndarray) -> np.ndarray:
        """Nearest-rank quantiles, as `stats._Sorted.quantiles` (the value holding each rank)."""
        ranks = np.rint(np.asarray(probabilities) * (self.present - 1)).astype(np.int64)
        return self.points[np.searchsorted(self.cumulative[1:], ranks, side="right")]


def baseline(
    merged: dict[str, Any],
    *,
    psi_threshold: float = stats.DEFAULT_PSI_THRESHOLD,
    monitoring_config: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(statistics, constraints) from a (merged) sketch, in the documents `stats.baseline` writes."""
    if merged.get("format") != FORMAT:
        raise ValueError(f"not a baseline sketch of format {FORMAT}: {merged.get('format')!r}")
    rows = int(merged["rows"])
    if rows == 0:
        raise ValueError("the baseline data has no rows")
    if psi_threshold <= 0:
        raise ValueError(f"psi_threshold must be positive, got {psi_threshold}")
    records = [_record(name, merged["features"][name]) for name in merged["columns"]]
    statistics: dict[str, Any] = {
        "version": stats.VERSION,
        "dataset": {"item_count": rows},
        "features": records,
        stats.KIT: {"format": stats.KIT_FORMAT, "prediction_feature": merged["prediction_feature"]},
    }
    if merged.get("label_feature"):
        statistics[stats.KIT]["label_feature"] = merged["label_feature"]
    config = stats._merged(stats.DEFAULT_MONITORING_CONFIG, monitoring_config or {})
    config["distribution_constraints"]["psi_threshold"] = float(psi_threshold)
    constraints = {
        "version": stats.VERSION,
        "features": [stats._constraint(r, rows) for r in records],
        "monitoring_config": config,
    }
    return statistics, constraints


def _record(name: str, column: dict[str, Any]) -> dict[str, Any]:
    common = {"num_present": int(column["present"]), "num_missing": int(column["missing"])}
    if column["kind"] == "string":
        ordered = sorted(column["counts"].items(), key=lambda item: (-item[1], item[0]))
        return {
            "name": name,
            "inferred_type": stats.STRING if common["num_present"] else stats.UNKNOWN,
            "string_statistics": {
                "common": common,
                "distinct_count": float(len(ordered)),
                "distribution": {
                    "categorical": {
                        "buckets": [
                            {"value": v, "count": float(c)} for v, c in ordered[: stats.CATEGORY_BUCKETS_MAX]
                        ]
                    }
                },
            },
        }
    if not common["num_present"]:
        return {"name": name, "inferred_type": stats.UNKNOWN, "numerical_statistics": {"common": common}}
    weighted = _Weighted(column["points"], column["weights"])
    low, high = float(column["min"]), float(column["max"])
    grid = weighted.quantiles(np.linspace(0.0, 1.0, stats.CDF_GRID + 1))
    n = common["num_present"]
    kind = stats.INTEGRAL if column["integer_dtype"] or not column["fractional"] else stats.FRACTIONAL
    return {
        "name": name,
        "inferred_type": kind,
        "numerical_statistics": {
            "common": common,
            "mean": float(column["mean"]),
            "sum": float(column["sum"]),
            "std_dev": float(np.sqrt(max(float(column["m2"]) / n, 0.0))),
            "min": low,
            "max": high,
            "distribution": {
                "kll": {
                    "buckets": stats._kll_buckets(weighted, low, high),
                    "sketch": {"parameters": dict(stats.KLL_PARAMETERS), "data": [grid.tolist()]},
                }
            },
        },
        stats.KIT: stats._baseline_numeric_kit(weighted),
    }
