"""Model quality once ground-truth labels arrive, for the three task types: overall and by hour.

`model_quality(task, labels, predictions)` answers in Model Monitor's model-quality `statistics.json`
layout: a `binary_classification_metrics`, `multiclass_classification_metrics` or `regression_metrics`
block with `value` and `standard_deviation` per metric, plus the kit's additions under `mlops_kit`.
Standard deviations are closed forms, so no resampling is needed: binomial standard errors for rates
(Hanley-McNeil for AUC), the standard error of the mean for MAE and MSE, the delta method for RMSE, and
None where no closed form is at hand (F-scores, PR AUC, R²).

What a task reads from a prediction:
- binary: a score in [0, 1], a `[p0, p1]` vector (p1 is the score), or a class (one of `classes`,
  `[negative, positive]`, by default 0 and 1); the label is one of the two classes;
- multiclass: a class (text or integer) or a probability vector (its argmax, in the order of `classes`,
  by default positions 0..k-1); the label is a class;
- regression: a number, and a numeric label.
Anything else is refused with a ValueError naming the task and what was seen, because a task that
does not fit the answers would otherwise measure something else without a word (a regression's
values all above 0.5 read as a binary model with accuracy 1.0).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

BINARY, MULTICLASS, REGRESSION = "binary", "multiclass", "regression"
TASKS = (BINARY, MULTICLASS, REGRESSION)
BLOCKS = {
    BINARY: "binary_classification_metrics",
    MULTICLASS: "multiclass_classification_metrics",
    REGRESSION: "regression_metrics",
}
KIT = "mlops_kit"
_BINARY_CLASSES = ("0", "1")


class _Unfit(ValueError):
    """A label or prediction the task cannot read; the message says why, without the task's name."""


# --- the entry points -------------------------------------------------------------------------------


def model_quality(
    task: str,
    labels: Sequence[Any],
    predictions: Sequence[Any] | np.ndarray,
    *,
    threshold: float = 0.5,
    classes: Sequence[Any] | None = None,
) -> dict[str, Any]:
    """The model-quality statistics of `predictions` against `labels` for `task` (see the module)."""
    prepared = prepare(task, labels, predictions, threshold=threshold, classes=classes)
    if prepared.task == BINARY:
        document = binary_metrics(prepared.y, prepared.p, threshold)
        document[KIT] = {"task": BINARY, "threshold": threshold, "classes": list(prepared.classes)}
    elif prepared.task == MULTICLASS:
        document = multiclass_metrics(prepared.y, prepared.p, prepared.classes)
    else:
        document = regression_metrics(prepared.y, prepared.p)
    return document


def by_hour(
    task: str,
    labels: Sequence[Any],
    predictions: Sequence[Any] | np.ndarray,
    times: pd.Series,
    *,
    threshold: float = 0.5,
    classes: Sequence[Any] | None = None,
) -> list[dict[str, Any]]:
    """Quality per hour of inference time: accuracy and AUC (binary), accuracy (multiclass), RMSE
    (regression)."""
    prepared = prepare(task, labels, predictions, threshold=threshold, classes=classes)
    stamps = pd.to_datetime(pd.Series(times).reset_index(drop=True), utc=True).iloc[prepared.kept]
    hours = stamps.dt.floor("h").reset_index(drop=True)
    out = []
    for hour, rows in sorted(hours.groupby(hours).groups.items()):
        index = np.asarray(rows)
        y, p = _take(prepared.y, index), _take(prepared.p, index)
        entry: dict[str, Any] = {"start": hour.isoformat().replace("+00:00", "Z"), "count": len(index)}
        if prepared.task == BINARY:
            entry["accuracy"] = float(np.mean((p >= threshold) == (y > 0.5)))
            entry["auc"] = roc_auc(y > 0.5, p)
        elif prepared.task == MULTICLASS:
            entry["accuracy"] = float(np.mean([a == b for a, b in zip(y, p, strict=True)]))
        else:
            entry["rmse"] = float(math.sqrt(np.mean((p - y) ** 2)))
        out.append(entry)
    return out


# --- reading labels and predictions as a task does ---------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    """Labels and predictions as the task reads them, only the pairs where both are present."""

    task: str
    y: Any  # binary: 0/1 floats; multiclass: class labels (text); regression: floats
    p: Any  # binary: scores; multiclass: predicted classes (text); regression: floats
    kept: np.ndarray  # positions of the kept pairs in the inputs
    classes: tuple[str, ...] = ()


def prepare(
    task: str,
    labels: Sequence[Any],
    predictions: Sequence[Any] | np.ndarray,
    *,
    threshold: float = 0.5,
    classes: Sequence[Any] | None = None,
) -> Prepared:
    """Read labels and predictions for `task`; a pair with either missing is left out."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    items = _items(predictions)
    labels = list(labels)
    if len(labels) != len(items):
        raise ValueError(f"{task}: {len(labels)} labels but {len(items)} predictions")
    try:
        known = _classes(task, classes)
        if task == BINARY:
            prepared = _prepare_binary(labels, items, known)
        elif task == MULTICLASS:
            prepared = _prepare_multiclass(labels, items, known)
        else:
            prepared = _prepare_regression(labels, items)
    except _Unfit as unfit:
        raise ValueError(f"{task}: {unfit}") from None
    if len(prepared.kept) == 0:
        raise ValueError(f"{task}: no labelled predictions to measure")
    return prepared


def class_label(value: Any) -> str | None:
    """One spelling per class, so a class read from CSV text, JSON or a list of classes matches:
    integral numbers as integers (`2`, `2.0` and `"2"` are `"2"`), booleans as 1 and 0, text stripped.
    None for a missing value (None, NaN, empty text)."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return "1" if value else "0"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        number = float(value)
        if not math.isfinite(number):
            return None
        return str(int(number)) if number.is_integer() else repr(number)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            number = float(text)
        except ValueError:
            return text
        return class_label(number) if math.isfinite(number) else None
    raise _Unfit(f"a class must be a number or a text, got {type(value).__name__} {value!r}")


def predicted_class(
    task: str, prediction: Any, *, threshold: float = 0.5, classes: Sequence[Any] | None = None
) -> str | None:
    """The class a classifier's prediction names, for prediction drift; None where it names none.

    Lenient where `model_quality` refuses: a prediction that fits no class is missing here, and the
    drift checks count it. A binary score or `[p0, p1]` names the positive class at or above the
    threshold; a multiclass vector names its argmax.
    """
    kind = _kind(prediction)
    known = tuple(class_label(c) for c in classes) if classes else ()
    if task == BINARY:
        negative, positive = known if len(known) == 2 else _BINARY_CLASSES
        if kind == "vector" and len(prediction) == 2:
            kind, prediction = "number", prediction[1]
        if kind == "number":
            return positive if _number(prediction) >= threshold else negative
        return class_label(prediction) if kind == "text" else None
    if task == MULTICLASS:
        if kind == "vector":
            try:
                vector = _vector(prediction, 0)
            except _Unfit:
                return None
            if known and len(known) != len(vector):
                return None
            best = int(np.argmax(vector))
            return known[best] if known else str(best)
        return class_label(prediction) if kind in ("number", "text") else None
    raise ValueError(f"a {task} model predicts no class")


def _items(predictions: Sequence[Any] | np.ndarray) -> list[Any]:
    if isinstance(predictions, np.ndarray):
        if predictions.ndim == 2:
            return [tuple(row) for row in predictions.tolist()]
        return predictions.tolist()
    return list(predictions)


def _kind(item: Any) -> str:
    """ "missing", "number", "text" or "vector"."""
    if item is None:
        return "missing"
    if isinstance(item, (list, tuple, np.ndarray)):
        return "vector"
    if isinstance(item, (bool, int, float, np.bool_, np.integer, np.floating)):
        return "number" if math.isfinite(float(item)) else "missing"
    if isinstance(item, str):
        text = item.strip()
        if not text:
            return "missing"
        try:
            number = float(text)
        except ValueError:
            return "text"
        return "number" if math.isfinite(number) else "missing"
    return type(item).__name__


def _number(item: Any) -> float:
    return float(item.strip()) if isinstance(item, str) else float(item)


def _vector(item: Any, at: int) -> np.ndarray:
    try:
        vector = np.asarray(item, dtype=np.float64) if len(item) else np.empty(0)
    except (TypeError, ValueError):
        vector = np.empty(0)
    if vector.ndim != 1 or len(vector) == 0 or not np.isfinite(vector).all():
        raise _Unfit(f"prediction {_show(item)} (item {at}) is not a vector of finite numbers")
    return vector


def _show(item: Any) -> str:
    if isinstance(item, (list, tuple, np.ndarray)):
        values = ", ".join(_show(v) for v in list(item)[:4])
        return f"[{values}{', ...' if len(item) > 4 else ''}] ({len(item)} values)"
    if isinstance(item, (float, np.floating)):
        return f"{float(item):g}"
    return repr(item)


def _classes(task: str, classes: Sequence[Any] | None) -> tuple[str, ...]:
    if classes is None:
        return _BINARY_CLASSES if task == BINARY else ()
    known = tuple(class_label(c) for c in classes)
    if any(c is None for c in known):
        raise _Unfit(f"classes {list(classes)!r} has an empty entry")
    if len(set(known)) != len(known):
        raise _Unfit(f"classes {list(classes)!r} names a class twice")
    if task == BINARY and len(known) != 2:
        raise _Unfit(f"classes must be [negative, positive], got {len(known)}: {list(classes)!r}")
    if task == REGRESSION:
        raise _Unfit("a regression has no classes; leave classes out")
    return known  # type: ignore[return-value]


def _prepare_binary(labels: list[Any], items: list[Any], classes: tuple[str, ...]) -> Prepared:
    negative, positive = classes
    y, p, kept = [], [], []
    for at, (label, item) in enumerate(zip(labels, items, strict=True)):
        truth = class_label(label) if _kind(label) != "vector" else "vector"
        kind = _kind(item)
        if truth is None or kind == "missing":
            continue
        if truth not in classes:
            raise _Unfit(
                f"label {label!r} (item {at}) is neither of the classes [{negative}, {positive}]; "
                "pass classes=[negative, positive], or use task 'multiclass' for more classes"
            )
        if kind == "vector":
            vector = _vector(item, at)
            if len(vector) != 2:
                raise _Unfit(
                    f"prediction {_show(item)} (item {at}) is not one score or two probabilities "
                    f"[p_{negative}, p_{positive}]; use task 'multiclass' for {len(vector)} classes"
                )
            score = float(vector[1])
        elif kind == "number":
            score = _number(item)
        elif kind == "text":
            answered = class_label(item)
            if answered not in classes:
                raise _Unfit(
                    f"prediction {item!r} (item {at}) is neither of the classes [{negative}, {positive}]; "
                    "pass classes=[negative, positive], or use task 'multiclass'"
                )
            score = 1.0 if answered == positive else 0.0
        else:
            raise _Unfit(f"prediction {item!r} (item {at}) is a {kind}, not a score or a class")
        if not 0.0 <= score <= 1.0:
            raise _Unfit(
                f"prediction {score:g} (item {at}) is not a probability in [0, 1]; "
                "a number to compare with a numeric label needs task 'regression'"
            )
        y.append(1.0 if truth == positive else 0.0)
        p.append(score)
        kept.append(at)
    return Prepared(BINARY, np.asarray(y), np.asarray(p), np.asarray(kept, dtype=np.int64), classes)


def _prepare_multiclass(labels: list[Any], items: list[Any], classes: tuple[str, ...]) -> Prepared:
    y, p, kept = [], [], []
    width: int | None = None
    for at, (label, item) in enumerate(zip(labels, items, strict=True)):
        kind = _kind(item)
        truth = _class_of(label, classes, "label", at)
        if truth is None or kind == "missing":
            continue
        if kind == "vector":
            vector = _vector(item, at)
            if width is not None and len(vector) != width:
                raise _Unfit(f"probability vectors of {width} and of {len(vector)} values (item {at})")
            width = len(vector)
            if classes and len(classes) != width:
                raise _Unfit(
                    f"prediction {_show(item)} (item {at}) has {width} probabilities "
                    f"but {len(classes)} classes were given ({', '.join(classes)})"
                )
            best = int(np.argmax(vector))  # the first of tied maxima, as predict() does
            answered = classes[best] if classes else str(best)
        elif kind in ("number", "text"):
            answered = _class_of(item, classes, "prediction", at)
        else:
            raise _Unfit(f"prediction {item!r} (item {at}) is a {kind}, not a class or probabilities")
        y.append(truth)
        p.append(answered)
        kept.append(at)
    if width is not None and not classes:
        # Without the class order a vector's positions are the classes 0..k-1 (scikit-learn's
        # `classes_` for integer labels); labels of any other name would silently never match.
        stray = sorted({label for label in y if label not in {str(i) for i in range(width)}})
        if stray:
            raise _Unfit(
                f"probability vectors need the class order: label {stray[0]!r} is not a position "
                f"0..{width - 1}; pass classes=[...] in the model's order"
            )
    return Prepared(MULTICLASS, y, p, np.asarray(kept, dtype=np.int64), classes)


def _class_of(value: Any, classes: tuple[str, ...], what: str, at: int) -> str | None:
    kind = _kind(value)
    if kind == "missing":
        return None
    if kind == "vector":
        raise _Unfit(f"{what} {_show(value)} (item {at}) is a vector, not a class")
    label = class_label(value)
    if kind == "number" and label not in classes and not float(label).is_integer():  # type: ignore[arg-type]
        raise _Unfit(
            f"{what} {_show(_number(value))} (item {at}) is a fractional number, not a class; "
            "a score needs task 'binary', a value task 'regression'"
        )
    return label


def _prepare_regression(labels: list[Any], items: list[Any]) -> Prepared:
    y, p, kept = [], [], []
    for at, (label, item) in enumerate(zip(labels, items, strict=True)):
        truth_kind, kind = _kind(label), _kind(item)
        if truth_kind == "missing" or kind == "missing":
            continue
        if truth_kind != "number":
            raise _Unfit(
                f"label {label!r} (item {at}) is not a number; class labels need task 'binary' or 'multiclass'"
            )
        if kind == "vector":
            raise _Unfit(
                f"prediction {_show(item)} (item {at}) is a vector, not a number; "
                "probability vectors need task 'binary' or 'multiclass'"
            )
        if kind != "number":
            raise _Unfit(
                f"prediction {item!r} (item {at}) is a class label, not a number; use task 'multiclass'"
            )
        y.append(_number(label))
        p.append(_number(item))
        kept.append(at)
    return Prepared(REGRESSION, np.asarray(y), np.asarray(p), np.asarray(kept, dtype=np.int64))


def _take(values: Any, index: np.ndarray) -> Any:
    if isinstance(values, np.ndarray):
        return values[index]
    return [values[i] for i in index]


# --- binary -----------------------------------------------------------------------------------------


def _rate(hits: int, total: int) -> dict[str, float | None]:
    if total == 0:
        return {"value": None, "standard_deviation": None}
    value = hits / total
    return {"value": value, "standard_deviation": math.sqrt(value * (1 - value) / total)}


def _f_beta(tp: int, fp: int, fn: int, beta: float) -> float | None:
    """(1 + b²)·tp / ((1 + b²)·tp + b²·fn + fp): 0 when nothing was right, None when nothing to score."""
    b2 = beta * beta
    denominator = (1 + b2) * tp + b2 * fn + fp
    return None if denominator == 0 else (1 + b2) * tp / denominator


def binary_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> dict[str, Any]:
    """Confusion matrix and metrics of `scores` (probabilities) against 0/1 `labels`; a score equal to
    the threshold counts as positive."""
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
    recall = _rate(tp, positives)
    auc = roc_auc(y, p)

    def unmeasured(value: float | None) -> dict[str, float | None]:
        return {"value": value, "standard_deviation": None}

    metrics = {
        "confusion_matrix": {"0": {"0": tn, "1": fp}, "1": {"0": fn, "1": tp}},
        "accuracy": _rate(tp + tn, n),
        "precision": _rate(tp, tp + fp),
        "recall": recall,
        "true_positive_rate": recall,
        "true_negative_rate": _rate(tn, negatives),
        "false_positive_rate": _rate(fp, negatives),
        "false_negative_rate": _rate(fn, positives),
        "f0_5": unmeasured(_f_beta(tp, fp, fn, 0.5)),
        "f1": unmeasured(_f_beta(tp, fp, fn, 1.0)),
        "f2": unmeasured(_f_beta(tp, fp, fn, 2.0)),
        "auc": {"value": auc, "standard_deviation": _auc_std(auc, positives, negatives)},
        # Area under the precision-recall curve, as average precision (scikit-learn's
        # average_precision_score); `au_prc` is Model Monitor's CloudWatch name for it.
        "au_prc": unmeasured(average_precision(y, p)),
        "brier_score": unmeasured(float(np.mean((p - y) ** 2))),
    }
    return {"version": 0, "dataset": {"item_count": n}, BLOCKS[BINARY]: metrics}


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve by ranks (ties share their average rank); None without both classes."""
    y = np.asarray(labels, dtype=bool)
    positives = int(y.sum())
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        return None
    ranks = pd.Series(np.asarray(scores, dtype=np.float64)).rank(method="average").to_numpy()
    return float((ranks[y].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """Σ (R_k - R_k-1)·P_k over the distinct score thresholds, highest first; None without positives."""
    y = np.asarray(labels, dtype=bool)
    positives = int(y.sum())
    if positives == 0:
        return None
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="mergesort")
    ranked, hits = np.asarray(scores, dtype=np.float64)[order], y[order]
    last_of_each_score = np.r_[np.flatnonzero(np.diff(ranked)), len(ranked) - 1]
    tp = np.cumsum(hits)[last_of_each_score]
    precision = tp / (last_of_each_score + 1)
    recall = tp / positives
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _auc_std(auc: float | None, positives: int, negatives: int) -> float | None:
    if auc is None:
        return None
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    variance = (auc * (1 - auc) + (positives - 1) * (q1 - auc * auc) + (negatives - 1) * (q2 - auc * auc)) / (
        positives * negatives
    )
    return math.sqrt(max(variance, 0.0))


# --- multiclass -------------------------------------------------------------------------------------


def _class_order(known: Sequence[str], seen: set[str]) -> list[str]:
    """The given classes in their order, then any other class seen, numbers by value, then text."""

    def key(label: str) -> tuple[int, float, str]:
        try:
            return (0, float(label), "")
        except ValueError:
            return (1, 0.0, label)

    return [*known, *sorted(seen - set(known), key=key)]


def multiclass_metrics(labels: Sequence[str], predicted: Sequence[str], classes: Sequence[str] = ()) -> dict:
    """Accuracy, weighted and macro precision/recall/F-scores, per-class results and the confusion
    matrix (actual class, then predicted class) of predicted classes against labels.

    Averages run over the classes that occur as a label or a prediction, a class's undefined precision
    or recall counting as 0 (scikit-learn's `average="macro"/"weighted"` with zero_division=0); per class
    an undefined value is None.
    """
    n = len(labels)
    if n == 0:
        raise ValueError("no labelled predictions to measure")
    order = _class_order(classes, set(labels) | set(predicted))
    index = {c: i for i, c in enumerate(order)}
    matrix = np.zeros((len(order), len(order)), dtype=np.int64)
    np.add.at(matrix, ([index[c] for c in labels], [index[c] for c in predicted]), 1)
    tp = np.diag(matrix).astype(np.float64)
    support = matrix.sum(axis=1).astype(np.float64)
    answered = matrix.sum(axis=0).astype(np.float64)
    occurring = (support + answered) > 0
    precision = np.divide(tp, answered, out=np.full_like(tp, np.nan), where=answered > 0)
    recall = np.divide(tp, support, out=np.full_like(tp, np.nan), where=support > 0)

    def f_beta(beta: float) -> np.ndarray:
        b2 = beta * beta
        return np.divide(
            (1 + b2) * tp, b2 * support + answered, out=np.full_like(tp, np.nan), where=occurring
        )

    def macro(values: np.ndarray) -> dict[str, float | None]:
        return {"value": float(np.mean(np.nan_to_num(values[occurring]))), "standard_deviation": None}

    def weighted(values: np.ndarray, std: float | None = None) -> dict[str, float | None]:
        return {"value": float(np.sum(support * np.nan_to_num(values)) / n), "standard_deviation": std}

    accuracy = _rate(int(tp.sum()), n)
    f1 = f_beta(1.0)
    metrics = {
        "confusion_matrix": {
            a: {p: int(matrix[i, j]) for j, p in enumerate(order)} for i, a in enumerate(order)
        },
        "accuracy": accuracy,
        # Weighted recall is accuracy itself (Σ support·tp/support / n), so it shares its standard error.
        "weighted_recall": weighted(recall, accuracy["standard_deviation"]),
        "weighted_precision": weighted(precision),
        "weighted_f0_5": weighted(f_beta(0.5)),
        "weighted_f1": weighted(f1),
        "weighted_f2": weighted(f_beta(2.0)),
        "macro_precision": macro(precision),
        "macro_recall": macro(recall),
        "macro_f1": macro(f1),
    }

    def value(x: float) -> float | None:
        return None if math.isnan(x) else float(x)

    per_class = {
        c: {
            "support": int(support[i]),
            "predicted": int(answered[i]),
            "precision": value(precision[i]),
            "recall": value(recall[i]),
            "f1": value(f1[i]),
        }
        for i, c in enumerate(order)
    }
    return {
        "version": 0,
        "dataset": {"item_count": n},
        BLOCKS[MULTICLASS]: metrics,
        KIT: {"task": MULTICLASS, "classes": order, "per_class": per_class},
    }


# --- regression -------------------------------------------------------------------------------------


def regression_metrics(labels: np.ndarray, predictions: np.ndarray) -> dict[str, Any]:
    """MAE, MSE, RMSE and R² of numeric predictions against numeric labels."""
    y = np.asarray(labels, dtype=np.float64)
    p = np.asarray(predictions, dtype=np.float64)
    n = len(y)
    if n == 0:
        raise ValueError("no labelled predictions to measure")
    error = p - y
    squared, absolute = error * error, np.abs(error)
    mse, mae = float(np.mean(squared)), float(np.mean(absolute))
    rmse = math.sqrt(mse)

    def standard_error(values: np.ndarray) -> float | None:
        return float(np.std(values, ddof=1) / math.sqrt(n)) if n > 1 else None

    mse_std = standard_error(squared)
    total = float(np.sum((y - y.mean()) ** 2))
    metrics = {
        "mae": {"value": mae, "standard_deviation": standard_error(absolute)},
        "mse": {"value": mse, "standard_deviation": mse_std},
        # The delta method: d sqrt(m) = dm / (2 sqrt(m)).
        "rmse": {"value": rmse, "standard_deviation": mse_std / (2 * rmse) if mse_std and rmse else None},
        # Undefined when every label is the same (nothing to explain).
        "r2": {
            "value": 1 - float(np.sum(squared)) / total if total > 0 else None,
            "standard_deviation": None,
        },
    }
    return {
        "version": 0,
        "dataset": {"item_count": n},
        BLOCKS[REGRESSION]: metrics,
        KIT: {"task": REGRESSION},
    }
