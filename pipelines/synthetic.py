"""A seeded synthetic card-transactions data set for fraud detection, with optional injected drift.

The fraud label follows a logistic model of amount (against the customer's usual spend), merchant
category, channel, night hours and tenure, so a classifier has real signal to learn; the intercept is
solved for the requested positive rate. From `drift_from` on, amounts grow and the category and channel
mix shifts, which is what the monitor should notice and the retrained model should absorb.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

CATEGORIES = ("grocery", "fuel", "restaurants", "retail", "travel", "electronics", "gaming", "services")
CATEGORY_MIX = np.array([0.26, 0.14, 0.16, 0.18, 0.06, 0.08, 0.04, 0.08])
DRIFTED_MIX = np.array([0.16, 0.10, 0.12, 0.16, 0.10, 0.18, 0.10, 0.08])
CATEGORY_SCALE = np.array([0.8, 1.0, 0.9, 1.2, 3.0, 2.5, 0.7, 1.1])  # typical ticket per category
CATEGORY_RISK = np.array([-0.6, -0.3, -0.4, 0.0, 0.9, 1.1, 1.0, 0.0])
CHANNELS = ("pos", "online", "atm")
CHANNEL_RISK = np.array([-0.3, 0.7, 0.2])

COLUMNS = (
    "transaction_id",
    "customer_id",
    "card_id",
    "event_time",
    "amount",
    "merchant_category",
    "channel",
    "hour",
    "customer_tenure_days",
    "is_fraud",
)


@dataclass(frozen=True)
class GeneratorOptions:
    rows: int = 20_000
    start: str = "2026-01-01"
    end: str = "2026-03-01"
    seed: int = 7
    fraud_rate: float = 0.02
    drift_from: str | None = None
    drift_amount_factor: float = 1.8

    def __post_init__(self) -> None:
        if self.rows < 1:
            raise ValueError(f"rows must be at least 1, got {self.rows}")
        if not 0.0 < self.fraud_rate < 0.5:
            raise ValueError(f"fraud_rate must be between 0 and 0.5, got {self.fraud_rate}")
        if pd.Timestamp(self.start) >= pd.Timestamp(self.end):
            raise ValueError(f"start {self.start} must be before end {self.end}")
        if self.drift_from is not None and not (
            pd.Timestamp(self.start) <= pd.Timestamp(self.drift_from) < pd.Timestamp(self.end)
        ):
            raise ValueError(f"drift_from {self.drift_from} must fall within [{self.start}, {self.end})")


def generate(options: GeneratorOptions | None = None) -> pd.DataFrame:
    """The transactions, sorted by event time; identical for identical options."""
    o = options or GeneratorOptions()
    rng = np.random.default_rng(o.seed)
    n = o.rows

    n_customers = max(50, n // 40)
    tenure = np.minimum(rng.gamma(1.5, 300.0, n_customers), 3650).astype(np.int64)
    spend_scale = rng.lognormal(3.4, 0.5, n_customers)  # the customer's typical ticket, ~30
    home_channel = rng.choice(len(CHANNELS), n_customers, p=[0.6, 0.3, 0.1])
    second_card = rng.random(n_customers) < 0.3

    start, end = pd.Timestamp(o.start), pd.Timestamp(o.end)
    span_s = (end - start).total_seconds()
    offsets = np.sort(rng.random(n) * span_s)
    event_time = start + pd.to_timedelta(np.floor(offsets), unit="s")
    drifted = (
        np.asarray(event_time >= pd.Timestamp(o.drift_from)) if o.drift_from else np.zeros(n, dtype=bool)
    )

    customer = rng.integers(0, n_customers, n)
    card = np.where(second_card[customer] & (rng.random(n) < 0.4), 1, 0)
    category = np.where(
        drifted,
        rng.choice(len(CATEGORIES), n, p=DRIFTED_MIX),
        rng.choice(len(CATEGORIES), n, p=CATEGORY_MIX),
    )
    own_channel = rng.random(n) < np.where(drifted, 0.55, 0.8)
    channel = np.where(own_channel, home_channel[customer], rng.choice(len(CHANNELS), n, p=[0.3, 0.6, 0.1]))

    ticket = spend_scale[customer] * CATEGORY_SCALE[category]
    amount = ticket * rng.lognormal(0.0, 0.6, n) * np.where(drifted, o.drift_amount_factor, 1.0)
    amount = np.round(np.maximum(amount, 0.5), 2)
    hour = np.asarray(event_time.hour, dtype=np.int64)

    # How unusual the amount is for this customer carries most of the signal.
    unusual = np.log(amount / spend_scale[customer])
    logit = (
        1.4 * unusual
        + CATEGORY_RISK[category]
        + CHANNEL_RISK[channel]
        + 0.9 * ((hour >= 0) & (hour < 5))
        - 0.5 * (tenure[customer] > 365)
        + rng.normal(0.0, 0.4, n)
    )
    intercept = _intercept_for_rate(logit, o.fraud_rate)
    is_fraud = rng.random(n) < _sigmoid(logit + intercept)

    frame = pd.DataFrame(
        {
            "transaction_id": [f"t{i:09d}" for i in range(n)],
            "customer_id": [f"c{c:07d}" for c in customer],
            "card_id": [f"k{c:07d}-{k}" for c, k in zip(customer, card, strict=True)],
            "event_time": event_time,
            "amount": amount,
            "merchant_category": pd.Categorical.from_codes(category, CATEGORIES).astype(str),
            "channel": pd.Categorical.from_codes(channel, CHANNELS).astype(str),
            "hour": hour,
            "customer_tenure_days": tenure[customer],
            "is_fraud": is_fraud.astype(np.int64),
        },
        columns=list(COLUMNS),
    )
    return frame


def write(frame: pd.DataFrame, path: Path) -> Path:
    """Write as Parquet or CSV by the file's suffix, atomically."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise ValueError(f"{path}: choose a .parquet or .csv file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    if suffix == ".parquet":
        frame.to_parquet(tmp, index=False)
    else:
        frame.to_csv(tmp, index=False, date_format="%Y-%m-%dT%H:%M:%SZ")
    tmp.replace(path)
    return path


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _intercept_for_rate(logit: np.ndarray, rate: float) -> float:
    """The intercept that makes the mean predicted probability equal `rate` (bisection)."""
    low, high = -30.0, 30.0
    for _ in range(60):
        mid = (low + high) / 2
        if _sigmoid(logit + mid).mean() > rate:
            high = mid
        else:
            low = mid
    return (low + high) / 2


def sample(
    rows: int,
    *,
    seed: int = 7,
    start: str = "2026-01-01",
    end: str = "2026-03-01",
    drift_from: str | None = None,
) -> pd.DataFrame:
    """The use case's sample data (`UseCase.entry_points.sample_data`): labelled raw events, drifted from
    `drift_from` on when given."""
    return generate(GeneratorOptions(rows=rows, seed=seed, start=start, end=end, drift_from=drift_from))
