"""The fraud use case's feature records, built from raw transactions (pure: frames in, frames out).

- `transaction-aggregates`: one record per customer and transaction time, holding the customer's count
  and spend over the windows (t - w, t] ending at that time, this transaction included. Transactions that
  share a customer and a second give one record (the one that has seen them all), so no two records of an
  entity share an event time.
- `customer-profile`: one record per customer and day with transactions, at the day's last transaction:
  tenure, and the channel used most so far (ties: alphabetical). Only the past is used.

For scoring a new transaction at time t, look features up as of just before t (the state after the
customer's previous transaction): that is what serving reads from the online store.
"""

from __future__ import annotations

import pandas as pd

from pipelines.features import CUSTOMER_PROFILE, TRANSACTION_AGGREGATES

REQUIRED = ("customer_id", "event_time", "amount", "channel", "customer_tenure_days")
WINDOWS = {"1h": "1h", "24h": "24h", "7d": "7D"}


def compute_aggregates(transactions: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Every feature group's records from raw transactions, by group name."""
    missing = [c for c in REQUIRED if c not in transactions.columns]
    if missing:
        raise ValueError(f"transactions lack columns {', '.join(missing)} needed for the features")
    frame = transactions.loc[:, list(REQUIRED)].copy()
    frame["event_time"] = pd.to_datetime(frame["event_time"], utc=True, format="ISO8601")
    frame = frame.sort_values(["customer_id", "event_time"], kind="stable").reset_index(drop=True)
    return {
        TRANSACTION_AGGREGATES.name: transaction_aggregates(frame),
        CUSTOMER_PROFILE.name: customer_profile(frame),
    }


def transaction_aggregates(frame: pd.DataFrame) -> pd.DataFrame:
    """Rolling counts and sums per customer; `frame` sorted by customer and event time."""
    out = frame[["customer_id", "event_time"]].copy()
    indexed = frame.set_index("event_time")
    by_customer = indexed.groupby("customer_id", sort=False)["amount"]
    for label, window in WINDOWS.items():
        rolling = by_customer.rolling(window)
        out[f"txn_count_{label}"] = rolling.count().to_numpy().astype("int64")
        out[f"amount_sum_{label}"] = rolling.sum().to_numpy()
    out["amount_mean_7d"] = out["amount_sum_7d"] / out["txn_count_7d"]
    out = out.drop_duplicates(["customer_id", "event_time"], keep="last")
    return out[TRANSACTION_AGGREGATES.column_names].reset_index(drop=True)


def customer_profile(frame: pd.DataFrame) -> pd.DataFrame:
    """Tenure and most-used channel so far, at each customer's last transaction of each day."""
    seen = pd.get_dummies(frame["channel"]).astype("int64").groupby(frame["customer_id"]).cumsum()
    out = pd.DataFrame(
        {
            "customer_id": frame["customer_id"],
            "event_time": frame["event_time"],
            "tenure_days": frame["customer_tenure_days"].astype("int64"),
            "home_channel": seen[sorted(seen.columns)].idxmax(axis=1),
            "day": frame["event_time"].dt.floor("D"),
        }
    )
    out = out.drop_duplicates(["customer_id", "day"], keep="last")
    return out[CUSTOMER_PROFILE.column_names].reset_index(drop=True)
