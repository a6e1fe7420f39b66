"""A binary use case of the registry tests' own: its model is any directory the kit's handler loads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mlops_kit.usecase import Direction, EntryPoints, LabelType, Metric, Task, UseCase

HERE = "tests.mlops_kit.registry.toy_use_case"
LABEL = "label"

USE_CASE = UseCase(
    name="toy",
    task=Task.BINARY,
    label=LABEL,
    label_type=LabelType.INT,
    entity="id",
    event_time="time",
    metrics=(
        Metric("roc_auc", Direction.HIGHER),
        Metric("pr_auc", Direction.HIGHER),
        Metric("precision", Direction.HIGHER),
        Metric("recall", Direction.HIGHER),
        Metric("segment_gap", Direction.LOWER),
        Metric("mean_score", Direction.HIGHER),
    ),
    deciding_metric="roc_auc",
    entry_points=EntryPoints(
        prepare=HERE,
        train=HERE,
        evaluate=f"{HERE}:evaluate",
        inference="tests/mlops_kit/registry/toy_use_case.py",
        request_builder=f"{HERE}:requests",
        sample_data=f"{HERE}:sample",
    ),
)


def evaluate(model_dir: str, frame: pd.DataFrame) -> dict[str, float]:
    from sklearn.metrics import average_precision_score, precision_score, recall_score, roc_auc_score

    from mlops_kit.serving.handler import Handler

    handler = Handler(Path(model_dir), compile_trees=False)
    features = frame.drop(columns=[LABEL])
    scores = np.asarray(handler.predict_fn(features, handler.model), dtype=float)
    labels = frame[LABEL].to_numpy().astype(int) if LABEL in frame else np.zeros(len(frame), dtype=int)
    both = len(np.unique(labels)) == 2
    return {
        "roc_auc": float(roc_auc_score(labels, scores)) if both else float("nan"),
        "pr_auc": float(average_precision_score(labels, scores)) if both else float("nan"),
        "precision": float(precision_score(labels, scores >= 0.5, zero_division=0)),
        "recall": float(recall_score(labels, scores >= 0.5, zero_division=0)),
        "segment_gap": 0.0,
        "mean_score": float(scores.mean()),
    }


def requests(events: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    return events.drop(columns=[LABEL])


def sample(
    rows: int, *, seed: int = 0, start: str = "", end: str = "", drift_from: str | None = None
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    label = (rng.random(rows) < 0.3).astype(int)
    return pd.DataFrame({"good": label * 1.5 + rng.normal(0, 1, rows), LABEL: label})
