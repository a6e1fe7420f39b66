"""The feature groups of kit-fixture, and their records from raw events (pure: frames in, frames out).

- `entity-profile`: one record per entity and day with events, at the day's last event: the days since
  the entity's first event, and the segment it was seen in most so far (ties: alphabetical).
- `entity-activity`: one record per entity and event time: the entity's event count over the hour and
  the day ending at that time, and its sum of `x1` over the day, that event included.

Kept apart from `features.py`, which every model directory carries and which needs no kit.
"""

from __future__ import annotations

import pandas as pd

from kit_fixture import USE_CASE
from mlops_kit.features import Feature, FeatureGroup, FeatureType

INT, FLOAT, STR = FeatureType.INTEGRAL, FeatureType.FRACTIONAL, FeatureType.STRING
ENTITY, TIME = USE_CASE.entity, USE_CASE.event_time

ENTITY_PROFILE = FeatureGroup(
    name="entity-profile",
    description="Slow-moving facts about an entity.",
    record_identifier=Feature(ENTITY, STR),
    event_time=Feature(TIME, STR),
    features=(
        Feature("tenure_days", INT, "days since the entity's first event"),
        Feature("home_segment", STR, "the segment the entity was seen in most"),
    ),
)

ENTITY_ACTIVITY = FeatureGroup(
    name="entity-activity",
    description="Events and x1 per entity over the last hour and day, as of each event.",
    record_identifier=Feature(ENTITY, STR),
    event_time=Feature(TIME, STR),
    features=(
        Feature("count_1h", INT),
        Feature("count_24h", INT),
        Feature("x1_sum_24h", FLOAT),
    ),
)

FEATURE_GROUPS = (ENTITY_PROFILE, ENTITY_ACTIVITY)


def records(events: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Every group's records from raw events, by group name."""
    frame = events[[ENTITY, TIME, "x1", "segment"]].copy()
    frame[TIME] = pd.to_datetime(frame[TIME], utc=True)
    frame = frame.sort_values([ENTITY, TIME], kind="stable").reset_index(drop=True)

    activity = frame[[ENTITY, TIME]].copy()
    by_entity = frame.set_index(TIME).groupby(ENTITY, sort=False)["x1"]
    activity["count_1h"] = by_entity.rolling("1h").count().to_numpy().astype("int64")
    day = by_entity.rolling("24h")
    activity["count_24h"] = day.count().to_numpy().astype("int64")
    activity["x1_sum_24h"] = day.sum().to_numpy()
    activity = activity.drop_duplicates([ENTITY, TIME], keep="last")

    seen = pd.get_dummies(frame["segment"]).astype("int64").groupby(frame[ENTITY]).cumsum()
    profile = pd.DataFrame(
        {
            ENTITY: frame[ENTITY],
            TIME: frame[TIME],
            "tenure_days": (frame[TIME] - frame.groupby(ENTITY)[TIME].transform("min")).dt.days.astype(
                "int64"
            ),
            "home_segment": seen[sorted(seen.columns)].idxmax(axis=1),
            "day": frame[TIME].dt.floor("D"),
        }
    ).drop_duplicates([ENTITY, "day"], keep="last")
    return {
        ENTITY_ACTIVITY.name: activity[ENTITY_ACTIVITY.column_names].reset_index(drop=True),
        ENTITY_PROFILE.name: profile[ENTITY_PROFILE.column_names].reset_index(drop=True),
    }
