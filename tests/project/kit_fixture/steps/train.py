"""Train the model in SageMaker's script-mode contract (`SM_CHANNEL_TRAIN`, `SM_MODEL_DIR`, hyperparameters
as `--name value`), and write a model directory the kit's server serves as it is: `model.joblib`,
`metadata.json` and `code/` (the inference handler and the feature transform)."""

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
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder

from kit_fixture import USE_CASE, features
from kit_fixture.steps.prepare import read_table

HANDLER = Path(__file__).with_name("inference.py")


def make_estimator(hyperparameters: dict[str, Any], seed: int) -> Pipeline:
    encode = ColumnTransformer(
        [
            (
                "categories",
                OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
                list(features.CATEGORICAL),
            )
        ],
        remainder="passthrough",
        verbose_feature_names_out=False,
    )
    model = HistGradientBoostingClassifier(
        max_iter=int(hyperparameters.get("max_iter", 200)),
        learning_rate=float(hyperparameters.get("learning_rate", 0.1)),
        max_leaf_nodes=int(hyperparameters.get("max_leaf_nodes", 31)),
        categorical_features=list(range(len(features.CATEGORICAL))),
        random_state=seed,
    )
    return Pipeline([("encode", encode), ("model", model)])


def train(frame: pd.DataFrame, hyperparameters: dict[str, Any], seed: int) -> Pipeline:
    if USE_CASE.label not in frame.columns:
        raise ValueError(f"the training data ({len(frame):,} rows) has no label column {USE_CASE.label!r}")
    labels = frame[USE_CASE.label]
    if labels.nunique() < 2:
        raise ValueError(f"the training data has a single class in {USE_CASE.label!r} ({len(frame):,} rows)")
    return make_estimator(hyperparameters, seed).fit(features.build_features(frame), labels.to_numpy())


def write_model_dir(estimator: Pipeline, model_dir: Path, hyperparameters: dict[str, Any], rows: int) -> None:
    model_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(estimator, model_dir / "model.joblib")
    metadata = {
        "task": USE_CASE.task,
        "features": list(features.FEATURES),
        "hyperparameters": hyperparameters,
        "training_rows": rows,
    }
    (model_dir / "metadata.json").write_text(json.dumps(metadata, indent=2))
    code = model_dir / "code"
    code.mkdir(exist_ok=True)
    shutil.copyfile(HANDLER, code / "inference.py")
    shutil.copyfile(features.__file__, code / "model_features.py")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Train the model (SageMaker script mode).")
    p.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    p.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"))
    args, rest = p.parse_known_args(argv)
    given = {k.lstrip("-"): json.loads(v) for k, v in zip(rest[::2], rest[1::2], strict=True)}
    seed = int(given.pop("seed", 42))
    frame = read_table(args.train)
    try:
        estimator = train(frame, given, seed)
    except ValueError as exc:
        print(f"train failed: {exc}", file=sys.stderr)
        return 1
    write_model_dir(estimator, Path(args.model_dir), given, len(frame))
    print(f"trained on {len(frame):,} rows with {given}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
