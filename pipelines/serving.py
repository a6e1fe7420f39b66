"""From raw events to endpoint requests: what a caller of the fraud endpoint sends.

Each transaction becomes one request row in `model.REQUEST_COLUMNS` order, its customer's aggregates
taken as of just before it from the history (the same point-in-time join training uses), which is what
a caller reading the online feature store would send. The demo's traffic generator uses it, found
through `mlops:serving.request_builder`.
"""

from __future__ import annotations

from datetime import timedelta

import pandas as pd

from pipelines.feature_transforms import compute_aggregates
from pipelines.model import REQUEST_COLUMNS
from pipelines.steps.prepare import training_examples


def requests_for(events: pd.DataFrame, history: pd.DataFrame, ttl_hours: int = 24 * 7) -> pd.DataFrame:
    """The request rows for `events` (the request columns, in order; indexed by transaction id), with
    features from `history` plus the events themselves."""
    everything = pd.concat([history, events], ignore_index=True)
    everything["event_time"] = pd.to_datetime(everything["event_time"], utc=True)
    records = compute_aggregates(everything)
    wanted = set(events["transaction_id"])
    examples = training_examples(everything, records, timedelta(hours=ttl_hours))
    chosen = examples[examples["transaction_id"].isin(wanted)].sort_values("event_time", kind="stable")
    return chosen.set_index("transaction_id")[list(REQUEST_COLUMNS)]
