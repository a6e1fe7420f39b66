"""One monitoring run: a window of captured requests against the baseline.

`evaluate` is pure: statistics, violations, drift and model quality of a window. `run` carries it out:
reads the baseline and the capture, writes Model Monitor's files and the kit's `run.json`, emits
CloudWatch metrics, and starts retraining when drift passes the threshold and retraining is on. An empty
window is the result "no data", written and reported like any other, not a failure. A window of fewer rows
than `min_rows` (the settings' `monitoring.min_window_rows`) is "insufficient data": profiled, but not
scored, so a handful of requests never yields a drift score, a violation, an alarm or a retraining.

Drift is also scored per day of the window (UTC days of the requests' `inferenceTime`, the capture's event
time), each day on its own rows and under the same minimum, so the report shows when drift began.

Model quality is measured for the run's task ("binary", "multiclass" or "regression"). When the answers
or labels do not fit the task, the run still writes its files, with the reason in `run.json`, then fails
with that reason: a wrong task is a setting to fix, not a result to read.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlops_kit.monitoring import capture, checks, files, quality, retrain, stats
from mlops_kit.monitoring import metrics as cw

OK = "ok"
NO_DATA = "no_data"
INSUFFICIENT = "insufficient_data"
RUN_FORMAT = 1
# The metrics run.json shows for each task; the full set is in model_quality.json.
HEADLINE = {
    quality.BINARY: ("accuracy", "precision", "recall", "f1", "auc", "au_prc"),
    quality.MULTICLASS: ("accuracy", "macro_f1", "weighted_f1", "macro_precision", "macro_recall"),
    quality.REGRESSION: ("rmse", "mae", "r2", "mse"),
}


@dataclass
class Outcome:
    status: str
    statistics: dict[str, Any]
    violations: list[dict[str, str]]
    summary: dict[str, Any]  # run.json
    quality: dict[str, Any] | None = None

    @property
    def drift_score(self) -> float | None:
        return self.summary["drift_score"]

    @property
    def drifted(self) -> bool:
        return bool(self.summary["drifted"])


def evaluate(
    baseline_statistics: dict[str, Any],
    constraints: dict[str, Any],
    window: capture.Window,
    *,
    endpoint: str = "",
    threshold: float | None = None,
    labels: dict[str, list[float | str]] | None = None,
    task: str = quality.BINARY,
    classes: Sequence[Any] | None = None,
    now: dt.datetime | None = None,
    run_id: str | None = None,
    min_rows: int = 1,
) -> Outcome:
    """Profile the window, check it against the baseline, and summarize; no side effects. `task` says
    how labels and answers are read for model quality; `classes` is the model's class order (the
    positions of its probability vectors); a window (or a day of it) with fewer than `min_rows` rows is
    not scored."""
    if task not in quality.TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {', '.join(quality.TASKS)}")
    now = now or dt.datetime.now(dt.UTC)
    limit = threshold if threshold is not None else _psi_threshold(constraints)
    if min_rows < 1:
        raise ValueError(f"min_rows must be at least 1, got {min_rows}")
    frame = _with_prediction(window, baseline_statistics, task, classes)
    statistics = stats.profile(frame, baseline_statistics)
    label = stats.label_feature(baseline_statistics)
    status = NO_DATA if window.empty else (INSUFFICIENT if len(frame) < min_rows else OK)
    violations: list[dict[str, str]] = []
    if status == INSUFFICIENT:
        _without_drift(statistics)  # too few rows to compare: no score, no check, no alarm
    else:
        # Labels arrive late and for some requests only, so the window's requests never miss the label
        # column: its checks (drift, domain, type) run apart, over the requests whose label has arrived.
        violations = checks.check(
            baseline_statistics, _constraints(constraints, lambda name: name != label), statistics
        )
        if label and labels:
            labelled = _label_frame(window, labels, label, task)
            if len(labelled):
                measured = stats.profile(labelled, baseline_statistics)
                statistics["features"].extend(measured["features"])
                only_label = _constraints(constraints, lambda name: name == label)
                violations.extend(checks.check(baseline_statistics, only_label, measured))
    score = checks.drift_score(statistics)
    prediction = stats.prediction_feature(baseline_statistics)
    per_feature = checks.drift_scores(statistics)
    model_quality, quality_summary = None, None
    if labels:
        try:
            model_quality = _quality(window, labels, task, classes)
            quality_summary = _quality_summary(model_quality)
        except ValueError as exc:
            quality_summary = {"task": task, "error": str(exc)}
    by_feature = Counter(v["feature_name"] for v in violations)
    summary = {
        "format": RUN_FORMAT,
        "run_id": run_id or uuid.uuid4().hex,
        "created": _iso(now),
        "endpoint": endpoint,
        "status": status,
        "task": task,
        "items": len(frame),
        "lines": window.lines,
        "files": window.files,
        "malformed": {"count": window.malformed, "examples": window.problems},
        "window": _time_span(window.inference_times),
        "min_rows": min_rows,
        "by_day": by_day(frame, window.inference_times, baseline_statistics, limit, min_rows),
        "threshold": limit,
        "drift_score": score,
        "drifted": bool(score is not None and score > limit),
        "prediction_psi": per_feature.get(prediction) if prediction else None,
        "label_psi": per_feature.get(label) if label else None,
        "violations": len(violations),
        "violation_types": dict(Counter(v["constraint_check_type"] for v in violations)),
        "features": [_feature_summary(f, by_feature) for f in statistics["features"]],
        "quality": quality_summary,
        "retraining": None,
        "metrics_emitted": 0,
    }
    return Outcome(status, statistics, violations, summary, model_quality)


def run(
    baseline: Path,
    source: str | Path,
    out: Path,
    *,
    endpoint: str,
    threshold: float | None = None,
    retrain_on_drift: bool = False,
    trigger: retrain.Trigger | None = None,
    cloudwatch: Any = None,
    s3: Any = None,
    ground_truth: str | Path | None = None,
    task: str = quality.BINARY,
    classes: Sequence[Any] | None = None,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    partitions: tuple[dt.datetime, dt.datetime] | None = None,
    now: dt.datetime | None = None,
    min_rows: int = 1,
    package: str | None = None,
    metrics_at: dt.datetime | None = None,
) -> Outcome:
    """Monitor one window end to end; see the module docstring. `partitions` limits the capture read to
    those hour partitions; `metrics_at` is the metrics' timestamp (default `now`): a scheduled run's
    is the time it was scheduled for, which the alarm then evaluates. `package` names the model package
    the endpoint serves, for the report's links."""
    now = now or dt.datetime.now(dt.UTC)
    baseline_statistics, constraints = files.read_baseline(Path(baseline))
    window = capture.read(
        source, stats.input_features(baseline_statistics), s3=s3, start=start, end=end, partitions=partitions
    )
    labels = capture.read_ground_truth(ground_truth, s3=s3) if ground_truth else None
    outcome = evaluate(
        baseline_statistics,
        constraints,
        window,
        endpoint=endpoint,
        threshold=threshold,
        labels=labels,
        task=task,
        classes=classes,
        now=now,
        min_rows=min_rows,
    )
    summary = outcome.summary
    summary["retrain_on_drift"] = bool(retrain_on_drift)
    summary["locations"] = {
        "baseline": _location(baseline),
        "capture": _location(source),
        "output": _location(out),
        **({"ground_truth": _location(ground_truth)} if ground_truth else {}),
        **({"package": package} if package else {}),
    }
    summary["window"].update(
        {k: _iso(v) for k, v in (("requested_start", start), ("requested_end", end)) if v is not None}
    )
    if partitions is not None:
        summary["window"]["partitions"] = {"start": _iso(partitions[0]), "end": _iso(partitions[1])}
    if cloudwatch is not None:
        data = cw.metric_data(
            endpoint,
            metrics_at or now,
            items=summary["items"],
            malformed=window.malformed,
            violations=len(outcome.violations),
            drift_score=outcome.drift_score,
            feature_psi={
                k: v
                for k, v in checks.drift_scores(outcome.statistics).items()
                if k
                not in (
                    stats.prediction_feature(baseline_statistics),
                    stats.label_feature(baseline_statistics),
                )
            },
            prediction_psi=summary["prediction_psi"],
            label_psi=summary["label_psi"],
        )
        summary["metrics_emitted"] = cw.put(cloudwatch, data)

    failure: Exception | None = None
    if retrain.should_retrain(outcome.drift_score, summary["threshold"], retrain_on_drift):
        summary["retraining"] = {
            "reason": f"drift score {outcome.drift_score:.4f} > {summary['threshold']:g}"
        }
        if trigger is None:
            summary["retraining"]["started"] = False
            summary["retraining"]["error"] = "no way to start the training pipeline was given"
        else:
            try:
                summary["retraining"]["execution"] = trigger(None)
                summary["retraining"]["started"] = True
            except Exception as exc:  # written down first, then raised: the run's files must exist
                summary["retraining"].update(started=False, error=f"{type(exc).__name__}: {exc}")
                failure = exc
    write(out, outcome)
    if failure is not None:
        raise RuntimeError(f"drift detected but retraining failed to start: {failure}") from failure
    if (summary["quality"] or {}).get("error"):
        raise ValueError(f"model quality not measured: {summary['quality']['error']}")
    return outcome


def write(out: Path, outcome: Outcome) -> None:
    out = Path(out)
    files.write_json(out / files.STATISTICS, outcome.statistics)
    files.write_json(out / files.VIOLATIONS, checks.document(outcome.violations))
    if outcome.quality is not None:
        files.write_json(out / files.QUALITY, outcome.quality)
    files.write_json(out / files.RUN, outcome.summary)  # last: its presence marks a complete run


def by_day(
    frame: pd.DataFrame,
    times: pd.Series,
    baseline_statistics: dict[str, Any],
    threshold: float,
    min_rows: int,
) -> list[dict[str, Any]]:
    """The drift score of each UTC day of the window, on that day's rows alone, oldest first; a day
    with fewer than `min_rows` rows is listed with its count and no score."""
    if frame.empty:
        return []
    days = pd.to_datetime(pd.Series(times.to_numpy(), index=frame.index), utc=True).dt.floor("D")
    out = []
    for day, rows in frame.groupby(days, sort=True):
        entry: dict[str, Any] = {"day": day.strftime("%Y-%m-%d"), "items": len(rows)}
        if len(rows) < min_rows:
            entry.update(status=INSUFFICIENT, drift_score=None, drifted=False)
        else:
            score = checks.drift_score(stats.profile(rows, baseline_statistics))
            entry.update(status=OK, drift_score=score, drifted=bool(score is not None and score > threshold))
        out.append(entry)
    return out


# --- helpers ----------------------------------------------------------------------------------------


def _without_drift(statistics: dict[str, Any]) -> None:
    for feature in statistics["features"]:
        (feature.get(stats.KIT) or {}).pop("drift", None)


def _location(where: str | Path) -> str:
    """An s3:// URI as given; a local path made absolute, so a report's link leads to it."""
    text = str(where)
    return text if text.startswith("s3://") else str(Path(text).resolve())


def _psi_threshold(constraints: dict[str, Any]) -> float:
    distribution = (constraints.get("monitoring_config") or {}).get("distribution_constraints") or {}
    return float(distribution.get("psi_threshold", stats.DEFAULT_PSI_THRESHOLD))


def _with_prediction(
    window: capture.Window, baseline_statistics: dict[str, Any], task: str, classes: Sequence[Any] | None
) -> pd.DataFrame:
    """The requests, plus the answers as the baseline's prediction feature when it has one.

    Numbers (regression values, binary scores) drift as numbers. A class (a multiclass answer, or a
    binary one against a baseline of classes) drifts as a category, and a probability vector by the
    class it names: its argmax. Why the argmax and not each class's probability: the baseline keeps
    one prediction column, so `predict` and `predict_proba` endpoints compare alike against it; the
    class is what the model's callers act on; and K probability columns would be K more drift alarms
    that move together, while a shift in confidence alone shows first in the input features' drift.
    """
    name = stats.prediction_feature(baseline_statistics)
    if not name or window.empty:
        return window.frame
    kinds = stats.feature_types(baseline_statistics)
    if task == quality.MULTICLASS or (task == quality.BINARY and kinds.get(name) == stats.STRING):
        answers = [_answer_for(task, a) for a in _answers(window)]
        column: Any = [
            None if a is None else quality.predicted_class(task, a, classes=classes) for a in answers
        ]
        if all(v is None for v in column):
            return window.frame
        column = pd.Series(column, index=window.frame.index, dtype=object)
    else:
        if np.isnan(window.predictions).all():
            return window.frame
        column = window.predictions
    frame = window.frame.copy()
    frame[name] = column
    return frame


def _constraints(constraints: dict[str, Any], keep: Any) -> dict[str, Any]:
    return {**constraints, "features": [f for f in constraints["features"] if keep(f["name"])]}


def _label_frame(
    window: capture.Window, labels: dict[str, list[float | str]], name: str, task: str
) -> pd.DataFrame:
    """The labels of the window's requests, one row per request whose label has arrived: numbers for a
    regression, classes in `quality.class_label`'s spelling for a classifier."""
    found = []
    for event, row in zip(window.event_ids, window.row_in_event, strict=True):
        values = labels.get(event)
        if values is not None and row < len(values):
            found.append(values[row])
    if task != quality.REGRESSION:
        found = [_spelled(v) for v in found]
    return pd.DataFrame({name: pd.Series(found, dtype=object)}).infer_objects()


def _spelled(value: Any) -> Any:
    try:
        return quality.class_label(value)
    except ValueError:
        return value


def _feature_summary(feature: dict[str, Any], violations: Counter) -> dict[str, Any]:
    measured = (feature.get(stats.KIT) or {}).get("drift") or {}
    block = feature.get("numerical_statistics") or feature.get("string_statistics")
    out = {
        "name": feature["name"],
        "inferred_type": feature["inferred_type"],
        "present": block["common"]["num_present"],
        "missing": block["common"]["num_missing"],
        "violations": violations.get(feature["name"], 0),
    }
    for key in ("kind", "psi", "ks", "linf", "chi_square", "chi_square_p", "unseen", "histogram"):
        if key in measured:
            out[key] = measured[key]
    return out


def _quality(
    window: capture.Window, labels: dict[str, list[float | str]], task: str, classes: Sequence[Any] | None
) -> dict[str, Any] | None:
    """Model quality over the rows whose label has arrived; None when no label meets an answer."""
    truth: list[Any] = [None] * len(window.event_ids)
    for i, (event, row) in enumerate(zip(window.event_ids, window.row_in_event, strict=True)):
        found = labels.get(event)
        if found is not None and row < len(found):
            truth[i] = found[row]
    answers = [_answer_for(task, a) for a in _answers(window)]
    joined = [
        i for i, (y, p) in enumerate(zip(truth, answers, strict=True)) if y is not None and p is not None
    ]
    if not joined:
        return None
    y, p = [truth[i] for i in joined], [answers[i] for i in joined]
    times = window.inference_times.iloc[joined].reset_index(drop=True)
    document = quality.model_quality(task, y, p, classes=classes)
    labelled = document["dataset"]["item_count"]
    document.setdefault(quality.KIT, {"task": task}).update(
        {
            "labelled": labelled,
            "unlabelled": len(truth) - labelled,
            "by_hour": quality.by_hour(task, y, p, times, classes=classes),
        }
    )
    return document


def _answers(window: capture.Window) -> list[capture.Answer | None]:
    if window.answers or window.empty:
        return window.answers
    return [None if np.isnan(x) else capture.Answer(value=float(x)) for x in window.predictions]


def _answer_for(task: str, answer: capture.Answer | None) -> Any:
    """The part of an answer a task reads: binary wants a score, multiclass the model's class, a
    regression its number; the others stand in when that part is missing (and may be refused)."""
    if answer is None:
        return None
    if task == quality.BINARY:
        order = (answer.probabilities, answer.score, answer.value)
    elif task == quality.MULTICLASS:
        order = (answer.value, answer.probabilities, answer.score)
    else:
        order = (answer.value, answer.score, answer.probabilities)
    return next((part for part in order if part is not None), None)


def _quality_summary(document: dict[str, Any] | None) -> dict[str, Any] | None:
    """The task's own headline metrics (never accuracy for a regression)."""
    if document is None:
        return None
    kit = document[quality.KIT]
    task = kit["task"]
    metrics = document[quality.BLOCKS[task]]
    summary: dict[str, Any] = {"task": task, "labelled": kit["labelled"]}
    summary.update({k: metrics[k]["value"] for k in HEADLINE[task]})
    if task == quality.MULTICLASS:
        summary["recall_by_class"] = {c: v["recall"] for c, v in kit["per_class"].items()}
    summary["by_hour"] = kit["by_hour"]
    return summary


def _time_span(times: pd.Series) -> dict[str, Any]:
    valid = times.dropna()
    if valid.empty:
        return {"first_event": None, "last_event": None}
    return {"first_event": _iso(valid.min()), "last_event": _iso(valid.max())}


def _iso(value: Any) -> str:
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.isoformat().replace("+00:00", "Z")
