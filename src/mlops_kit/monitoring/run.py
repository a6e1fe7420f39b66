"""One monitoring run: a window of captured requests against the baseline.

`evaluate` is pure: statistics, violations, drift and model quality of a window. `run` carries it out:
reads the baseline and the capture, writes Model Monitor's files and the kit's `run.json`, emits
CloudWatch metrics, and starts retraining when drift passes the threshold and retraining is on. An empty
window is the result "no data", written and reported like any other, not a failure.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlops_kit.monitoring import capture, checks, files, quality, retrain, stats
from mlops_kit.monitoring import metrics as cw

OK = "ok"
NO_DATA = "no_data"
RUN_FORMAT = 1


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
    labels: dict[str, list[float]] | None = None,
    now: dt.datetime | None = None,
    run_id: str | None = None,
) -> Outcome:
    """Profile the window, check it against the baseline, and summarize; no side effects."""
    now = now or dt.datetime.now(dt.UTC)
    limit = threshold if threshold is not None else _psi_threshold(constraints)
    frame = _with_prediction(window, baseline_statistics)
    statistics = stats.profile(frame, baseline_statistics)
    violations = checks.check(baseline_statistics, constraints, statistics)
    status = NO_DATA if window.empty else OK
    score = checks.drift_score(statistics)
    prediction = stats.prediction_feature(baseline_statistics)
    per_feature = checks.drift_scores(statistics)
    model_quality = _quality(window, labels) if labels else None
    by_feature = Counter(v["feature_name"] for v in violations)
    summary = {
        "format": RUN_FORMAT,
        "run_id": run_id or uuid.uuid4().hex,
        "created": _iso(now),
        "endpoint": endpoint,
        "status": status,
        "items": len(frame),
        "lines": window.lines,
        "files": window.files,
        "malformed": {"count": window.malformed, "examples": window.problems},
        "window": _time_span(window.inference_times),
        "threshold": limit,
        "drift_score": score,
        "drifted": bool(score is not None and score > limit),
        "prediction_psi": per_feature.get(prediction) if prediction else None,
        "violations": len(violations),
        "violation_types": dict(Counter(v["constraint_check_type"] for v in violations)),
        "features": [_feature_summary(f, by_feature) for f in statistics["features"]],
        "quality": _quality_summary(model_quality),
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
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    now: dt.datetime | None = None,
) -> Outcome:
    """Monitor one window end to end; see the module docstring."""
    now = now or dt.datetime.now(dt.UTC)
    baseline_statistics, constraints = files.read_baseline(Path(baseline))
    window = capture.read(source, stats.input_features(baseline_statistics), s3=s3, start=start, end=end)
    labels = capture.read_ground_truth(ground_truth, s3=s3) if ground_truth else None
    outcome = evaluate(
        baseline_statistics,
        constraints,
        window,
        endpoint=endpoint,
        threshold=threshold,
        labels=labels,
        now=now,
    )
    summary = outcome.summary
    summary["window"].update(
        {k: _iso(v) for k, v in (("requested_start", start), ("requested_end", end)) if v is not None}
    )
    if cloudwatch is not None:
        data = cw.metric_data(
            endpoint,
            now,
            items=summary["items"],
            malformed=window.malformed,
            violations=len(outcome.violations),
            drift_score=outcome.drift_score,
            feature_psi={
                k: v
                for k, v in checks.drift_scores(outcome.statistics).items()
                if k != stats.prediction_feature(baseline_statistics)
            },
            prediction_psi=summary["prediction_psi"],
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
    return outcome


def write(out: Path, outcome: Outcome) -> None:
    out = Path(out)
    files.write_json(out / files.STATISTICS, outcome.statistics)
    files.write_json(out / files.VIOLATIONS, checks.document(outcome.violations))
    if outcome.quality is not None:
        files.write_json(out / files.QUALITY, outcome.quality)
    files.write_json(out / files.RUN, outcome.summary)  # last: its presence marks a complete run


# --- helpers ----------------------------------------------------------------------------------------


def _psi_threshold(constraints: dict[str, Any]) -> float:
    distribution = (constraints.get("monitoring_config") or {}).get("distribution_constraints") or {}
    return float(distribution.get("psi_threshold", stats.DEFAULT_PSI_THRESHOLD))


def _with_prediction(window: capture.Window, baseline_statistics: dict[str, Any]) -> pd.DataFrame:
    """The requests, plus the predictions as the baseline's prediction feature when it has one."""
    name = stats.prediction_feature(baseline_statistics)
    if not name or window.empty or np.isnan(window.predictions).all():
        return window.frame
    frame = window.frame.copy()
    frame[name] = window.predictions
    return frame


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


def _quality(window: capture.Window, labels: dict[str, list[float]]) -> dict[str, Any] | None:
    truth = np.full(len(window.event_ids), np.nan)
    for i, (event, row) in enumerate(zip(window.event_ids, window.row_in_event, strict=True)):
        found = labels.get(event)
        if found is not None and row < len(found):
            truth[i] = found[row]
    joined = ~np.isnan(truth) & ~np.isnan(window.predictions)
    if not joined.any():
        return None
    document = quality.binary_metrics(truth[joined], window.predictions[joined])
    document["mlops_kit"] = {
        "labelled": int(joined.sum()),
        "unlabelled": int(len(truth) - joined.sum()),
        "by_hour": quality.by_hour(
            truth[joined], window.predictions[joined], window.inference_times[joined].reset_index(drop=True)
        ),
    }
    return document


def _quality_summary(document: dict[str, Any] | None) -> dict[str, Any] | None:
    if document is None:
        return None
    metrics = document["binary_classification_metrics"]
    return {
        "labelled": document["mlops_kit"]["labelled"],
        **{k: metrics[k]["value"] for k in ("accuracy", "precision", "recall", "auc")},
        "by_hour": document["mlops_kit"]["by_hour"],
    }


def _time_span(times: pd.Series) -> dict[str, Any]:
    valid = times.dropna()
    if valid.empty:
        return {"first_event": None, "last_event": None}
    return {"first_event": _iso(valid.min()), "last_event": _iso(valid.max())}


def _iso(value: Any) -> str:
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.isoformat().replace("+00:00", "Z")
