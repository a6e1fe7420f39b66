"""Measure a model directory on labelled rows through its own inference handler.

`evaluate(model_dir, frame)` is the use case's `evaluate` entry point: the pipeline's Evaluate step and
the kit's champion/challenger comparison both measure through it. `main()` writes `evaluation.json`
(`{"metrics": {...}}`), whose metrics the pipeline's gates read.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as sk

from kit_fixture import USE_CASE
from kit_fixture.steps.prepare import read_table


def load_handler(model_dir: Path) -> Any:
    """The model directory's own `code/inference.py`, as the server would import it."""
    spec = importlib.util.spec_from_file_location(
        f"handler_{abs(hash(str(model_dir)))}", model_dir / "code" / "inference.py"
    )
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"{model_dir}/code/inference.py is missing")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    return float(sk.roc_auc_score(labels, scores)) if len(np.unique(labels)) == 2 else float("nan")


def measure(labels: np.ndarray, scores: np.ndarray, segments: np.ndarray) -> dict[str, float]:
    """The declared metrics; `segment_gap` is the largest ROC AUC gap between the segments that hold
    both classes (0 when fewer than two do)."""
    by_segment = [roc_auc(labels[segments == s], scores[segments == s]) for s in np.unique(segments)]
    by_segment = [v for v in by_segment if not np.isnan(v)]
    return {
        "roc_auc": roc_auc(labels, scores),
        "pr_auc": float(sk.average_precision_score(labels, scores))
        if len(np.unique(labels)) == 2
        else float("nan"),
        "f1": float(sk.f1_score(labels, scores >= 0.5, zero_division=0)),
        "segment_gap": float(max(by_segment) - min(by_segment)) if len(by_segment) > 1 else 0.0,
    }


def evaluate(model_dir: str | Path, frame: pd.DataFrame) -> dict[str, float]:
    handler = load_handler(Path(model_dir))
    model = handler.model_fn(str(model_dir))
    scores = np.asarray(handler.predict_fn(frame.drop(columns=[USE_CASE.label]), model), dtype=float)
    return measure(frame[USE_CASE.label].to_numpy(), scores, frame["segment"].astype(str).to_numpy())


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Evaluate the model on the test set.")
    p.add_argument("--model", default="/opt/ml/processing/input/model")
    p.add_argument("--test", default="/opt/ml/processing/input/test")
    p.add_argument("--evaluation", default="/opt/ml/processing/evaluation")
    args = p.parse_args(argv)
    archive = next(Path(args.model).rglob("model.tar.gz"), None)
    if archive is None:
        print(f"evaluate failed: no model.tar.gz under {args.model}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        report = {"metrics": evaluate(tmp, read_table(args.test))}
    out = Path(args.evaluation) / "evaluation.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, sort_keys=True))
    print(" ".join(f"{k} {v:.4f}" for k, v in report["metrics"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
