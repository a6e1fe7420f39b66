"""Seeded sample events with labels, and a drift scenario.

Each event has an entity, an event time, three numeric features and a segment; its label (0 or 1)
follows from them. From `drift_from` on, `x1` shifts and the label's dependence on `x2` turns
around, so a model trained before the drift does worse after it, and retraining on the new data helps.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kit_fixture import USE_CASE
from kit_fixture.features import FEATURES

SEGMENTS = ("a", "b", "c")


def sample(
    rows: int,
    *,
    seed: int = 7,
    start: str = "2026-01-01",
    end: str = "2026-03-01",
    drift_from: str | None = None,
) -> pd.DataFrame:
    if rows < 1:
        raise ValueError(f"rows must be at least 1, got {rows}")
    rng = np.random.default_rng(seed)
    first, last = pd.Timestamp(start), pd.Timestamp(end)
    times = first + (last - first) * np.sort(rng.random(rows))
    drifted = (times >= pd.Timestamp(drift_from)) if drift_from else np.zeros(rows, dtype=bool)
    frame = pd.DataFrame(
        {
            "event_id": [f"ev{i:07d}" for i in range(rows)],
            USE_CASE.entity: [f"e{n:04d}" for n in rng.integers(0, 500, rows)],
            USE_CASE.event_time: pd.DatetimeIndex(times).round("s"),
            "x1": rng.normal(0, 1, rows) + 1.5 * drifted,
            "x2": rng.normal(0, 1, rows),
            "x3": rng.uniform(-2, 2, rows),
            "segment": rng.choice(SEGMENTS, rows),
        }
    )
    sign = np.where(drifted, -1.0, 1.0)  # after the drift, x2 pulls the other way
    score = (
        1.2 * frame["x1"]
        - 1.0 * sign * frame["x2"]
        + 0.5 * frame["x3"] ** 2
        + (frame["segment"] == "a") * 0.8
    )
    noise = rng.normal(0, 0.5, rows)
    frame[USE_CASE.label] = (score + noise > 1.5).astype(int)
    assert set(FEATURES) <= set(frame.columns)
    return frame
