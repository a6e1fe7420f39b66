"""The inference handler every model directory carries (`code/inference.py`).

It follows SageMaker's scikit-learn container convention (`model_fn`, `input_fn`, `predict_fn`,
`output_fn`), which the kit's server serves: in AWS the project's image runs it (`serve`), and locally
`mlops serve` and the local endpoint do. Requests carry
the columns of `fraud_model.REQUEST_COLUMNS`: headerless CSV in that order, or JSON
(`{"instances": [[...], ...]}`, `{"instances": [{...}]}` or a list of records). Records may leave out
the feature-store aggregates (they become missing values) and carry a `customer_id`.
"""

from __future__ import annotations

import io
import json
import os
import sys
from typing import Any

import joblib
import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:  # in a model directory: copied next to this file by the train step
    import fraud_model
except ImportError:  # in the project's source tree
    from pipelines import model as fraud_model

try:  # the kit's server compiles the trees (same numbers, checked when the model loads)
    from mlops_kit.serving.trees import for_serving
except ImportError:  # a server without the kit (SageMaker's framework images): scikit-learn predicts

    def for_serving(model: Any) -> Any:
        return model


def model_fn(model_dir: str) -> dict[str, Any]:
    with open(os.path.join(model_dir, "metadata.json")) as handle:
        metadata = json.load(handle)
    estimator = for_serving(joblib.load(os.path.join(model_dir, "model.joblib")))
    return {"estimator": estimator, "metadata": metadata}


def input_fn(body: bytes | str, content_type: str) -> pd.DataFrame:
    text = body.decode("utf-8") if isinstance(body, (bytes, bytearray)) else body
    columns = list(fraud_model.REQUEST_COLUMNS)
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind == "text/csv":
        frame = pd.read_csv(io.StringIO(text), header=None, skip_blank_lines=True)
        if frame.shape[1] != len(columns):
            raise ValueError(
                f"CSV rows have {frame.shape[1]} columns; expected {len(columns)}: {', '.join(columns)}"
            )
        frame.columns = columns
        return frame
    if kind == "application/json":
        payload = json.loads(text)
        rows = payload.get("instances", payload.get("inputs")) if isinstance(payload, dict) else payload
        if isinstance(payload, dict) and rows is None:
            rows = [payload]
        if not isinstance(rows, list) or not rows:
            raise ValueError('JSON must be {"instances": [...]} or a non-empty list of rows')
        if all(isinstance(r, dict) for r in rows):
            frame = pd.DataFrame.from_records(rows)
            absent = [c for c in ("amount", "merchant_category", "channel", "hour") if c not in frame.columns]
            if absent:
                raise ValueError(f"JSON records lack {', '.join(absent)}")
            for column in columns:
                if column not in frame.columns:
                    frame[column] = np.nan
            return frame
        if all(isinstance(r, list) for r in rows):
            widths = {len(r) for r in rows}
            if widths != {len(columns)}:
                raise ValueError(f"JSON rows have {sorted(widths)} values; expected {len(columns)}")
            return pd.DataFrame(rows, columns=columns)
        raise ValueError("JSON instances must all be lists or all be objects")
    raise ValueError(f"unsupported content type {content_type!r}; use text/csv or application/json")


def predict_fn(data: pd.DataFrame, model: dict[str, Any]) -> np.ndarray:
    try:
        features = fraud_model.build_features(data)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"bad input values: {exc}") from None
    return model["estimator"].predict_proba(features)[:, 1]


def output_fn(prediction: np.ndarray, accept: str) -> tuple[str, str]:
    kind = (accept or "text/csv").split(";")[0].strip().lower()
    if kind == "application/json":
        return json.dumps({"predictions": [float(p) for p in prediction]}), "application/json"
    return "\n".join(f"{float(p):.6f}" for p in prediction) + "\n", "text/csv"
