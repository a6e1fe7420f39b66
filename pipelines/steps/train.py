"""Train the fraud classifier, in SageMaker's script-mode contract.

Reads the `train` channel (`SM_CHANNEL_TRAIN`), hyperparameters from the command line (as SageMaker's
training toolkit passes them) and writes a model directory to `SM_MODEL_DIR` that the
project's image serves as it is (`serve`): `model.joblib`, `metadata.json` and `code/` (the inference
handler with the feature transforms it needs).

The operating threshold is chosen on the latest 20 % of the training events (a time-ordered
validation slice): the score that maximises F1 there. With `tuning_trials > 0`, a seeded random search
over a small grid picks the hyperparameters on the same slice, by PR AUC. The final model is refit on
all training data.

A training set of more than `max_train_rows` rows (the settings' `training.max_train_rows`, passed as a
hyperparameter) is fitted on a uniform sample of that many (`mlops_kit.validation.sample_table`, by
transaction id: the same rows whatever instances wrote the parts), read one part at a time, so Train's
memory does not grow with the data; `metadata.json` records both counts.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, precision_recall_curve

from mlops_kit.validation import sample_table
from pipelines import model as fraud_model
from pipelines.schema import ID
from pipelines.steps.io import write_json

SEARCH_SPACE: dict[str, Sequence[Any]] = {
    "learning_rate": (0.03, 0.05, 0.1, 0.2),
    "max_leaf_nodes": (15, 31, 63),
    "max_iter": (100, 200, 300),
    "l2_regularization": (0.0, 0.1, 1.0),
}
DEFAULT_MAX_ROWS = 1_500_000  # the settings' default (`training.max_train_rows`), when none is passed
HANDLER_FILES = {
    "inference.py": Path(__file__).with_name("inference.py"),
    "fraud_model.py": Path(fraud_model.__file__),
}


def time_validation_split(frame: pd.DataFrame, fraction: float = 0.2) -> tuple[pd.DataFrame, pd.DataFrame]:
    ordered = frame.sort_values("event_time", kind="stable").reset_index(drop=True)
    cut = int(len(ordered) * (1 - fraction))
    return ordered.iloc[:cut], ordered.iloc[cut:]


def best_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """The score threshold with the best F1 (ties: the higher threshold)."""
    if labels.sum() == 0:
        return 0.5
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
    best = np.flatnonzero(f1 == f1.max())[-1]
    return float(thresholds[best])


def candidates(base: dict[str, Any], trials: int, seed: int) -> list[dict[str, Any]]:
    """The base hyperparameters, then `trials` distinct draws from the search space (seeded)."""
    rng = np.random.default_rng(seed)
    seen = [dict(base)]
    keys = sorted(SEARCH_SPACE)
    attempts = 0
    while len(seen) < trials + 1 and attempts < 100 * (trials + 1):
        attempts += 1
        draw = {**base, **{k: SEARCH_SPACE[k][rng.integers(len(SEARCH_SPACE[k]))] for k in keys}}
        if draw not in seen:
            seen.append(draw)
    return seen


def train(
    frame: pd.DataFrame, hyperparameters: dict[str, Any], seed: int, tuning_trials: int = 0
) -> dict[str, Any]:
    """Fit, tune and pick the threshold. Returns the fitted estimator and what was decided."""
    label = fraud_model.LABEL
    if label not in frame.columns:
        raise ValueError(f"the training data has no label column {label!r}")
    if frame[label].nunique() < 2:
        raise ValueError(f"the training data has a single class in {label!r} ({len(frame):,} rows)")
    fit_part, valid_part = time_validation_split(frame)
    x_fit, y_fit = fraud_model.build_features(fit_part), fit_part[label].to_numpy()
    x_valid, y_valid = fraud_model.build_features(valid_part), valid_part[label].to_numpy()
    trials = []
    for params in candidates(hyperparameters, tuning_trials, seed):
        estimator = fraud_model.make_estimator(params, seed).fit(x_fit, y_fit)
        scores = estimator.predict_proba(x_valid)[:, 1]
        pr_auc = float(average_precision_score(y_valid, scores)) if y_valid.sum() else 0.0
        trials.append({"hyperparameters": params, "validation_pr_auc": pr_auc, "scores": scores})
    chosen = max(trials, key=lambda t: t["validation_pr_auc"])
    threshold = best_threshold(y_valid, chosen["scores"])
    final = fraud_model.make_estimator(chosen["hyperparameters"], seed)
    final.fit(fraud_model.build_features(frame), frame[label].to_numpy())
    return {
        "estimator": final,
        "hyperparameters": chosen["hyperparameters"],
        "threshold": threshold,
        "trials": [{k: v for k, v in t.items() if k != "scores"} for t in trials],
    }


def write_model_dir(
    result: dict[str, Any], model_dir: Path, seed: int, rows: int, offered_rows: int | None = None
) -> None:
    model_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(result["estimator"], model_dir / "model.joblib")
    metadata = {
        "request_columns": list(fraud_model.REQUEST_COLUMNS),
        "entity": fraud_model.ENTITY,
        "threshold": result["threshold"],
        "hyperparameters": result["hyperparameters"],
        "tuning_trials": result["trials"],
        "seed": seed,
        "training_rows": rows,
        "training_rows_offered": rows if offered_rows is None else offered_rows,
    }
    write_json(metadata, model_dir / "metadata.json")
    code = model_dir / "code"
    code.mkdir(exist_ok=True)
    for name, source in HANDLER_FILES.items():
        shutil.copyfile(source, code / name)


def parse_hyperparameters(values: dict[str, str]) -> dict[str, Any]:
    """SageMaker passes hyperparameters as strings (JSON-encoded in script mode)."""
    out: dict[str, Any] = {}
    for key, raw in values.items():
        try:
            out[key] = json.loads(raw)
        except (TypeError, ValueError):
            out[key] = raw
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Train the fraud classifier (SageMaker script mode).")
    p.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    p.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"))
    args, rest = p.parse_known_args(argv)
    # The remaining `--name value` pairs are the hyperparameters, as the training toolkit passes them.
    if len(rest) % 2:
        print(f"train: odd hyperparameter arguments {rest}", file=sys.stderr)
        return 2
    given = parse_hyperparameters({k.lstrip("-"): v for k, v in zip(rest[::2], rest[1::2], strict=True)})
    seed = int(given.pop("seed", 42))
    trials = int(given.pop("tuning_trials", 0))
    max_rows = int(given.pop("max_train_rows", DEFAULT_MAX_ROWS))
    try:
        sample = sample_table(args.train, max_rows, key=[ID])
        result = train(sample.frame, given, seed, trials)
    except ValueError as exc:
        print(f"train failed: {exc}", file=sys.stderr)
        return 1
    frame = sample.frame
    write_model_dir(result, Path(args.model_dir), seed, len(frame), sample.rows)
    of = f" (a uniform sample of {sample.rows:,}: max_train_rows)" if len(frame) < sample.rows else ""
    print(
        f"trained on {len(frame):,} rows{of}; threshold {result['threshold']:.4f}; {result['hyperparameters']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
