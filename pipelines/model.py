"""The fraud model: its request columns, the feature transforms, and the estimator.

`build_features` is the one transform from request columns to model inputs. Training, evaluation and
the inference handler all call it, so training and serving cannot disagree. This module is copied into
every model directory (`code/fraud_model.py`) next to the handler, so it depends on numpy, pandas and
scikit-learn only (the project's runtime image has what uv.lock pins).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder

LABEL = "is_fraud"
ENTITY = "customer_id"

# What a request carries, in this order for headerless CSV. The aggregates come from the feature store
# (as of just before the transaction); serving fills them by customer id when a request lacks them.
REQUEST_COLUMNS = (
    "amount",
    "merchant_category",
    "channel",
    "hour",
    "customer_tenure_days",
    "txn_count_1h",
    "txn_count_24h",
    "txn_count_7d",
    "amount_sum_24h",
    "amount_mean_7d",
)
CATEGORICAL = ("merchant_category", "channel")
DERIVED = ("log_amount", "amount_vs_7d_mean", "is_night")
MODEL_INPUTS = tuple(c for c in REQUEST_COLUMNS if c not in CATEGORICAL) + DERIVED + CATEGORICAL

DEFAULT_HYPERPARAMETERS: dict[str, Any] = {"max_iter": 200, "learning_rate": 0.1, "max_leaf_nodes": 31}


def build_features(frame: pd.DataFrame) -> pd.DataFrame:
    """Request columns -> model inputs. Missing aggregates (a customer's first transaction) stay NaN."""
    missing = [c for c in REQUEST_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(
            f"the rows lack column(s) {', '.join(missing)}; expected {', '.join(REQUEST_COLUMNS)}"
        )
    out = pd.DataFrame(index=frame.index)
    for column in REQUEST_COLUMNS:
        if column in CATEGORICAL:
            out[column] = frame[column].astype("object").where(frame[column].notna(), "missing").astype(str)
        else:
            out[column] = pd.to_numeric(frame[column], errors="raise").astype("float64")
    amount = out["amount"].clip(lower=0.01)
    out["log_amount"] = np.log(amount)
    out["amount_vs_7d_mean"] = amount / out["amount_mean_7d"].where(out["amount_mean_7d"] > 0)
    out["is_night"] = (out["hour"] < 5).astype("float64")
    return out[list(MODEL_INPUTS)]


def make_estimator(hyperparameters: dict[str, Any], seed: int) -> Pipeline:
    """Ordinal-encoded categories feeding a gradient-boosted tree ensemble (native categorical splits)."""
    params = {**DEFAULT_HYPERPARAMETERS, **hyperparameters}
    encode = ColumnTransformer(
        [
            (
                "categories",
                OrdinalEncoder(
                    handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1
                ),
                list(CATEGORICAL),
            )
        ],
        remainder="passthrough",
        verbose_feature_names_out=False,
    )
    classifier = HistGradientBoostingClassifier(
        max_iter=int(params["max_iter"]),
        learning_rate=float(params["learning_rate"]),
        max_leaf_nodes=int(params["max_leaf_nodes"]),
        l2_regularization=float(params.get("l2_regularization", 0.0)),
        categorical_features=list(range(len(CATEGORICAL))),
        # Always stop early on a held-out tenth: with a few hundred positives, a fixed number of rounds
        # overfits small training sets and their scores stop ranking (seen on the demo's window).
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=15,
        random_state=seed,
    )
    return Pipeline([("encode", encode), ("classify", classifier)])
