"""The monitor's tests' own data: seeded card payments with a label, and drift from a date on.

The monitor is the kit's, so its tests bring their own data rather than the example's: five request
columns a monitor profiles (numbers, integers, categories), a label, and a drift that moves amounts and
the category and channel mix. Seeded, so every figure a test asserts is the same on every run.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CATEGORIES = ("grocery", "fuel", "restaurants", "retail", "travel", "electronics", "gaming", "services")
MIX = np.array([0.26, 0.14, 0.16, 0.18, 0.06, 0.08, 0.04, 0.08])
DRIFTED_MIX = np.array([0.16, 0.10, 0.12, 0.16, 0.10, 0.18, 0.10, 0.08])
SCALE = np.array([0.8, 1.0, 0.9, 1.2, 3.0, 2.5, 0.7, 1.1])
RISK = np.array([-0.6, -0.3, -0.4, 0.0, 0.9, 1.1, 1.0, 0.0])
CHANNELS = ("pos", "online", "atm")
CHANNEL_RISK = np.array([-0.3, 0.7, 0.2])
POSITIVE_RATE = 0.02
DRIFT_AMOUNT = 1.8


def payments(
    rows: int, seed: int, drifted: bool = False, start: str = "2026-01-01", end: str = "2026-01-03"
) -> pd.DataFrame:
    """`rows` payments between `start` and `end`, sorted by time; all drifted when `drifted`."""
    rng = np.random.default_rng(seed)
    n, customers = rows, max(50, rows // 40)
    tenure = np.minimum(rng.gamma(1.5, 300.0, customers), 3650).astype(np.int64)
    spend = rng.lognormal(3.4, 0.5, customers)
    home = rng.choice(len(CHANNELS), customers, p=[0.6, 0.3, 0.1])
    rng.random(customers)  # a second card per customer: not a column here, drawn to keep the stream
    first, last = pd.Timestamp(start), pd.Timestamp(end)
    when = first + pd.to_timedelta(
        np.floor(np.sort(rng.random(n) * (last - first).total_seconds())), unit="s"
    )
    shifted = np.full(n, drifted)
    customer = rng.integers(0, customers, n)
    rng.random(n)  # which card: not a column here
    category = np.where(
        shifted, rng.choice(len(CATEGORIES), n, p=DRIFTED_MIX), rng.choice(len(CATEGORIES), n, p=MIX)
    )
    own = rng.random(n) < np.where(shifted, 0.55, 0.8)
    channel = np.where(own, home[customer], rng.choice(len(CHANNELS), n, p=[0.3, 0.6, 0.1]))
    amount = (
        spend[customer] * SCALE[category] * rng.lognormal(0.0, 0.6, n) * np.where(shifted, DRIFT_AMOUNT, 1.0)
    )
    amount = np.round(np.maximum(amount, 0.5), 2)
    hour = np.asarray(when.hour, dtype=np.int64)
    logit = (
        1.4 * np.log(amount / spend[customer])
        + RISK[category]
        + CHANNEL_RISK[channel]
        + 0.9 * (hour < 5)
        - 0.5 * (tenure[customer] > 365)
        + rng.normal(0.0, 0.4, n)
    )
    low, high = -30.0, 30.0  # the intercept that gives the positive rate (bisection)
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (low, mid) if _sigmoid(logit + mid).mean() > POSITIVE_RATE else (mid, high)
    label = rng.random(n) < _sigmoid(logit + (low + high) / 2)
    return pd.DataFrame(
        {
            "event_time": when,
            "amount": amount,
            "merchant_category": np.asarray(CATEGORIES, dtype=object)[category].astype(str),
            "channel": np.asarray(CHANNELS, dtype=object)[channel].astype(str),
            "hour": hour,
            "customer_tenure_days": tenure[customer],
            "is_fraud": label.astype(np.int64),
        }
    )


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))
