"""The inference handler every model directory carries (`code/inference.py`), in the contract the kit's
server (and SageMaker's framework containers) follow: `model_fn`, `input_fn`, `predict_fn`, `output_fn`.
Requests are the columns of `FEATURES`: headerless CSV in that order, or JSON (`{"instances": [...]}`
of lists or records)."""

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
    import model_features as features
except ImportError:  # in the project's source tree
    from kit_fixture import features


def model_fn(model_dir: str) -> dict[str, Any]:
    with open(os.path.join(model_dir, "metadata.json")) as handle:
        metadata = json.load(handle)
    return {"estimator": joblib.load(os.path.join(model_dir, "model.joblib")), "metadata": metadata}


def input_fn(body: bytes | str, content_type: str) -> pd.DataFrame:
    text = body.decode("utf-8") if isinstance(body, (bytes, bytearray)) else body
    columns = list(features.FEATURES)
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind == "text/csv":
        frame = pd.read_csv(io.StringIO(text), header=None)
        if frame.shape[1] != len(columns):
            raise ValueError(
                f"CSV rows have {frame.shape[1]} columns; expected {len(columns)}: {', '.join(columns)}"
            )
        frame.columns = columns
        return frame
    if kind == "application/json":
        payload = json.loads(text)
        rows = payload.get("instances") if isinstance(payload, dict) else payload
        if not isinstance(rows, list) or not rows:
            raise ValueError('JSON must be {"instances": [...]} or a non-empty list of rows')
        if all(isinstance(r, dict) for r in rows):
            return pd.DataFrame.from_records(rows)
        return pd.DataFrame(rows, columns=columns)
    raise ValueError(f"unsupported content type {content_type!r}; use text/csv or application/json")


def predict_fn(data: pd.DataFrame, model: dict[str, Any]) -> np.ndarray:
    """The positive class's probability."""
    try:
        inputs = features.build_features(data)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"bad input values: {exc}") from None
    return model["estimator"].predict_proba(inputs)[:, 1]


def output_fn(prediction: np.ndarray, accept: str) -> tuple[str, str]:
    values = [v.item() if hasattr(v, "item") else v for v in prediction]
    if (accept or "").split(";")[0].strip().lower() == "text/csv":
        return "\n".join(str(v) for v in values) + "\n", "text/csv"
    return json.dumps({"predictions": values}), "application/json"
