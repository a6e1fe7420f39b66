"""Model quality once ground-truth labels arrive: binary classification metrics, overall and by hour.

The overall block follows Model Monitor's model-quality `statistics.json` (`binary_classification_metrics`
with `value` and `standard_deviation` per metric); standard deviations are binomial standard errors
(Hanley-McNeil for AUC), so no resampling is needed.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd


def binary_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> dict[str, Any]:
    """Confusion matrix and metrics of `scores` (probabilities) against 0/1 `labels`."""
    y = np.asarray(labels, dtype=np.float64)
    p = np.asarray(scores, dtype=np.float64)
    keep = ~(np.isnan(y) | np.isnan(p))
    y, p = y[keep] > 0.5, p[keep]
    n = len(y)
    if n == 0:
        raise ValueError("no labelled predictions to measure")
    predicted = p >= threshold
    tp = int(np.sum(predicted & y))
    fp = int(np.sum(predicted & ~y))
    fn = int(np.sum(~predicted & y))
    tn = int(np.sum(~predicted & ~y))
    positives, negatives = tp + fn, tn + fp

    def rate(hits: int, total: int) -> dict[str, float | None]:
        if total == 0:
            return {"value": None, "standard_deviation": None}
        value = hits / total
        return {"value": value, "standard_deviation": math.sqrt(value * (1 - value) / total)}

    precision = rate(tp, tp + fp)
    recall = rate(tp, positives)
    f1 = None
    if precision["value"] and recall["value"]:
        f1 = 2 * precision["value"] * recall["value"] / (precision["value"] + recall["value"])
    auc = roc_auc(y, p)
    metrics = {
        "confusion_matrix": {"0": {"0": tn, "1": fp}, "1": {"0": fn, "1": tp}},
        "accuracy": rate(tp + tn, n),
        "precision": precision,
        "recall": recall,
        "true_positive_rate": recall,
        "false_positive_rate": rate(fp, negatives),
        "f1": {"value": f1, "standard_deviation": None},
        "auc": {"value": auc, "standard_deviation": _auc_std(auc, positives, negatives)},
        "brier_score": {"value": float(np.mean((p - y) ** 2)), "standard_deviation": None},
    }
    return {"version": 0, "dataset": {"item_count": n}, "binary_classification_metrics": metrics}


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve by ranks (ties share their average rank); None without both classes."""
    y = np.asarray(labels, dtype=bool)
    positives = int(y.sum())
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        return None
    ranks = pd.Series(np.asarray(scores, dtype=np.float64)).rank(method="average").to_numpy()
    return float((ranks[y].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def _auc_std(auc: float | None, positives: int, negatives: int) -> float | None:
    if auc is None:
        return None
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    variance = (auc * (1 - auc) + (positives - 1) * (q1 - auc * auc) + (negatives - 1) * (q2 - auc * auc)) / (
        positives * negatives
    )
    return math.sqrt(max(variance, 0.0))


def by_hour(labels: np.ndarray, scores: np.ndarray, times: pd.Series, threshold: float = 0.5) -> list[dict]:
    """Accuracy and AUC per hour of inference time: model quality over time."""
    frame = pd.DataFrame({"y": labels, "p": scores, "t": pd.to_datetime(times, utc=True)}).dropna()
    out = []
    for hour, group in frame.groupby(frame["t"].dt.floor("h")):
        y = group["y"].to_numpy() > 0.5
        p = group["p"].to_numpy()
        out.append(
            {
                "start": hour.isoformat().replace("+00:00", "Z"),
                "count": len(group),
                "accuracy": float(np.mean((p >= threshold) == y)),
                "auc": roc_auc(y, p),
            }
        )
    return out
