"""Validate a batch of feature records against its group, all or nothing.

A batch is checked whole before anything is written: every missing or unknown column, every column of the
wrong type (with the count of rows that do not convert and an example), and every null record id or event
time is reported together in one `BatchRejected`. A batch that passes comes out in the group's exact Arrow
schema, with event times normalized: a String event time becomes ISO-8601 UTC with milliseconds
(`2026-01-01T00:00:00.000Z`, a format SageMaker accepts), a Fractional one epoch seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mlops_kit.features.types import Feature, FeatureGroup, FeatureType

ISO_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # with timestamp[ms], Arrow's %S carries the milliseconds


class BatchRejected(ValueError):
    """A batch does not fit its feature group; `problems` names each column and how many rows."""

    def __init__(self, group: str, rows: int, problems: list[str]):
        self.group = group
        self.rows = rows
        self.problems = problems
        listing = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{group}: batch of {rows:,} rows rejected, nothing written:\n{listing}")


@dataclass(frozen=True)
class Batch:
    """A validated batch: the records in the group's schema, and their event times as epoch ms."""

    group: FeatureGroup
    table: pa.Table
    event_ms: np.ndarray  # int64, one per row

    @property
    def rows(self) -> int:
        return self.table.num_rows


def validate(group: FeatureGroup, frame: pd.DataFrame) -> Batch:
    """Check and normalize `frame` as records of `group`; raise `BatchRejected` listing every problem."""
    problems: list[str] = []
    rows = len(frame)
    expected = group.column_names
    missing = [name for name in expected if name not in frame.columns]
    unknown = [str(c) for c in frame.columns if c not in expected]
    if missing:
        problems.append(f"missing columns: {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown columns (not features of {group.name}): {', '.join(unknown)}")
    if frame.columns.duplicated().any():
        repeated = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
        problems.append(f"repeated columns: {', '.join(repeated)}")
        raise BatchRejected(group.name, rows, problems)

    arrays: dict[str, pa.Array] = {}
    event_ms = np.zeros(rows, dtype=np.int64)
    for feature in group.all_features:
        if feature.name not in frame.columns:
            continue
        if feature is group.event_time:
            stored, ms, problem = _event_time(feature, frame[feature.name])
            if problem:
                problems.append(problem)
            else:
                arrays[feature.name], event_ms = stored, ms
            continue
        converted, problem = _convert(feature, frame[feature.name])
        if problem:
            problems.append(problem)
            continue
        nulls = int(converted.isna().sum())
        if nulls and feature is group.record_identifier:
            problems.append(f"column {feature.name}: {nulls:,} rows with a null record id")
            continue
        arrays[feature.name] = pa.Array.from_pandas(converted, type=feature.type.arrow_type)
    if problems:
        raise BatchRejected(group.name, rows, problems)
    table = pa.table([arrays[name] for name in expected], schema=group.arrow_schema())
    return Batch(group, table, event_ms)


def _convert(feature: Feature, column: pd.Series) -> tuple[pd.Series, str | None]:
    """The column as the feature's type, or a problem naming how many rows do not convert."""
    values = column.reset_index(drop=True)
    kind = values.dtype.kind
    if feature.type is FeatureType.STRING:
        if kind in "biufcmM":
            return values, _wrong(feature, f"the column is {values.dtype}")
        if isinstance(values.dtype, pd.CategoricalDtype):
            values = values.astype(object)
        bad = values.notna() & ~values.map(lambda v: isinstance(v, str))
        if bad.any():
            return values, _wrong(feature, f"{int(bad.sum()):,} rows are not strings", values[bad].iloc[0])
        return values.astype(object), None
    if kind == "b" or kind in "mM":
        return values, _wrong(feature, f"the column is {values.dtype}")
    numbers = pd.to_numeric(values, errors="coerce") if kind not in "iuf" else values
    bad = numbers.isna() & values.notna()
    if feature.type is FeatureType.INTEGRAL:
        as_float = numbers.astype("float64")
        bad |= numbers.notna() & (np.floor(as_float) != as_float)
    if bad.any():
        return values, _wrong(
            feature, f"{int(bad.sum()):,} rows are not {feature.type.value}", values[bad].iloc[0]
        )
    if feature.type is FeatureType.INTEGRAL:
        return numbers.astype("Int64"), None
    return numbers.astype("float64"), None


def _event_time(feature: Feature, column: pd.Series) -> tuple[pa.Array, np.ndarray, str | None]:
    """The event time in its stored form, plus epoch milliseconds for partitioning and ordering."""
    values = column.reset_index(drop=True)
    kind = values.dtype.kind
    nothing = (pa.array([]), np.zeros(0, dtype=np.int64))
    if kind == "b":
        return *nothing, _wrong(feature, f"the column is {values.dtype}")
    if kind in "iuf":
        if feature.type is FeatureType.STRING:
            return *nothing, _wrong(feature, f"the column is {values.dtype}; expected ISO-8601 times")
        stamps = pd.to_datetime(values, unit="s", utc=True, errors="coerce")
    elif kind == "M" or isinstance(values.dtype, pd.DatetimeTZDtype):
        stamps = pd.to_datetime(values, utc=True)
    else:
        stamps = pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")
    bad = stamps.isna() & values.notna()
    if bad.any():
        example = values[bad].iloc[0]
        return *nothing, _wrong(feature, f"{int(bad.sum()):,} rows are not ISO-8601 times", example)
    nulls = int(values.isna().sum())
    if nulls:
        return *nothing, f"column {feature.name}: {nulls:,} rows with a null event time"
    ms = stamps.dt.tz_localize(None).to_numpy().astype("datetime64[ms]").astype(np.int64)
    if feature.type is FeatureType.FRACTIONAL:
        return pa.array(ms / 1000.0, type=pa.float64()), ms, None
    return format_iso_ms(ms), ms, None


def format_iso_ms(epoch_ms: np.ndarray) -> pa.Array:
    """Epoch milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ` strings."""
    stamps = pa.array(epoch_ms, type=pa.int64()).cast(pa.timestamp("ms", tz="UTC"))
    return pc.strftime(stamps, format=ISO_FORMAT)


def _wrong(feature: Feature, detail: str, example: object = None) -> str:
    shown = f" (e.g. {example!r})" if example is not None else ""
    return f"column {feature.name}: expected {feature.type.value}, {detail}{shown}"
