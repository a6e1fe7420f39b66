"""What a caller of the endpoint sends: one request row per event, the model's columns in order."""

from __future__ import annotations

import pandas as pd

from kit_fixture.features import FEATURES


def requests_for(events: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """Request rows for `events` (this use case needs no history), indexed by the event's id."""
    return events.set_index("event_id")[list(FEATURES)]
