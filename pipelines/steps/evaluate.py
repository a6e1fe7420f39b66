"""Evaluate a trained model on the held-out test set, through the model's own inference handler.

Writes `evaluation.json`: ROC AUC, PR AUC, precision and recall at the model's operating threshold,
calibration (Brier score, expected calibration error), and the same metrics per segment (channel), with
the largest gap between segments, so a gate can refuse a model that serves one segment much worse.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tarfile
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

from mlops_kit.validation import iter_tables
from pipelines.steps.io import write_json

SEGMENT_COLUMN = "channel"
MIN_SEGMENT_POSITIVES = 5  # fewer positives than this make a segment's AUC noise, not evidence


def load_handler(model_dir: Path) -> Any:
    """Import the model directory's own `code/inference.py`, as the serving container would."""
    spec = importlib.util.spec_from_file_location("model_inference", model_dir / "code" / "inference.py")
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"{model_dir}/code/inference.py is missing")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def expected_calibration_error(labels: np.ndarray, scores: np.ndarray, bins: int = 10) -> float:
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(scores, edges[1:-1]), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        members = index == b
        if members.any():
            error += members.mean() * abs(scores[members].mean() - labels[members].mean())
    return float(error)


def metrics(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    predicted = (scores >= threshold).astype(int)
    both = len(np.unique(labels)) == 2
    return {
        "roc_auc": float(roc_auc_score(labels, scores)) if both else float("nan"),
        "pr_auc": float(average_precision_score(labels, scores)) if both else float("nan"),
        "precision": float(precision_score(labels, predicted, zero_division=0)),
        "recall": float(recall_score(labels, predicted, zero_division=0)),
        "brier": float(brier_score_loss(labels, scores)),
        "calibration_error": expected_calibration_error(labels, scores),
        "positives": float(labels.sum()),
        "rows": float(len(labels)),
    }


def evaluate(
    test: pd.DataFrame | Iterable[pd.DataFrame], handler: Any, model: Any, label: str = "is_fraud"
) -> dict[str, Any]:
    """The metrics of `model` on the test rows: one frame, or its parts one at a time (only each row's
    label, score and segment are kept between parts, so the step's memory is one part's)."""
    threshold = float(model["metadata"]["threshold"])
    parts = [test] if isinstance(test, pd.DataFrame) else test
    scores, labels, segment_values = [], [], []
    for part in parts:
        scores.append(np.asarray(handler.predict_fn(part, model), dtype=float))
        labels.append(part[label].to_numpy().astype(int))
        segment_values.append(part[SEGMENT_COLUMN].astype("object").to_numpy())
    if not scores:
        raise ValueError("no test rows to evaluate on")
    all_scores, all_labels = np.concatenate(scores), np.concatenate(labels)
    overall = metrics(all_labels, all_scores, threshold)
    segments = {}
    by_segment = pd.Series(np.concatenate(segment_values))
    for value, members in by_segment.groupby(by_segment, sort=True).groups.items():
        rows = np.asarray(members)
        if all_labels[rows].sum() >= MIN_SEGMENT_POSITIVES and all_labels[rows].sum() < len(rows):
            segments[str(value)] = metrics(all_labels[rows], all_scores[rows], threshold)
    aucs = [s["roc_auc"] for s in segments.values()]
    gap = float(max(aucs) - min(aucs)) if len(aucs) >= 2 else 0.0
    overall["segment_gap"] = gap
    overall["threshold"] = threshold
    return {"metrics": overall, "segments": {SEGMENT_COLUMN: segments}, "segment_gap": gap}


def evaluate_model_dir(model_dir: str | Path, frame: pd.DataFrame) -> dict[str, float]:
    """The use case's `evaluate` entry point: the declared metrics of a model directory on labelled rows.

    The Evaluate step and the champion/challenger re-scoring both measure through it.
    """
    handler = load_handler(Path(model_dir))
    model = handler.model_fn(str(model_dir))
    report = evaluate(frame, handler, model)
    return {k: float(v) for k, v in report["metrics"].items()}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Evaluate the model on the test set.")
    p.add_argument("--model", default="/opt/ml/processing/input/model")
    p.add_argument("--test", default="/opt/ml/processing/input/test")
    p.add_argument("--evaluation", default="/opt/ml/processing/evaluation")
    args = p.parse_args(argv)
    archive = next(Path(args.model).rglob("model.tar.gz"), None)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp)
        if archive is None:
            print(f"evaluate failed: no model.tar.gz under {args.model}", file=sys.stderr)
            return 1
        with tarfile.open(archive) as tar:
            tar.extractall(model_dir, filter="data")
        handler = load_handler(model_dir)
        model = handler.model_fn(str(model_dir))
        report = evaluate(iter_tables(args.test), handler, model)
    write_json(report, Path(args.evaluation) / "evaluation.json")
    m = report["metrics"]
    print(f"roc_auc {m['roc_auc']:.4f} pr_auc {m['pr_auc']:.4f} segment gap {report['segment_gap']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
