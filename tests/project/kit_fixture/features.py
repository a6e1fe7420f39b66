"""The model's request columns and the one transform to model inputs: training, evaluation and the
inference handler share it (it is copied into every model directory next to the handler)."""

from __future__ import annotations

import pandas as pd

FEATURES = ("x1", "x2", "x3", "segment")  # a request's columns, in this order for headerless CSV
CATEGORICAL = ("segment",)


def build_features(frame: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in FEATURES if c not in frame.columns]
    if missing:
        raise ValueError(f"the rows lack column(s) {', '.join(missing)}; expected {', '.join(FEATURES)}")
    out = pd.DataFrame(index=frame.index)
    for column in FEATURES:
        if column in CATEGORICAL:
            out[column] = frame[column].astype("object").where(frame[column].notna(), "missing").astype(str)
        else:
            out[column] = pd.to_numeric(frame[column], errors="raise").astype("float64")
    return out[[c for c in FEATURES if c in CATEGORICAL] + [c for c in FEATURES if c not in CATEGORICAL]]
