"""Point-in-time joins: for each entity row, the latest feature record at or before its event time.

The engine is one DuckDB ASOF LEFT JOIN per group over Arrow data, so nothing is copied into Python
objects. The rules, for each entity row (record id, event time t) and each group:
- the record chosen is the one with the greatest event time <= t (never one from the future: no leakage);
  among records with that same event time, the one written last (`write_time`) wins, as in SageMaker;
- if that record is older than the TTL (event time < t - ttl), or is a deletion (`is_deleted`), the row
  gets nulls for that group, because an expired or deleted value is not what serving would have seen;
- every entity row is kept, in its order, with its own columns (labels and all) untouched.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from mlops_kit.features.types import FeatureGroup, FeatureType

_NEVER = np.iinfo(np.int64).max  # an entity row sorts after every write time of its event time


def entity_times(column: pd.Series, name: str) -> np.ndarray:
    """Entity event times as naive-UTC datetime64[us]: datetimes, ISO-8601 strings or epoch seconds."""
    kind = column.dtype.kind
    if kind in "iuf":
        stamps = pd.to_datetime(column, unit="s", utc=True, errors="coerce")
    elif kind == "M" or isinstance(column.dtype, pd.DatetimeTZDtype):
        stamps = pd.to_datetime(column, utc=True)
    else:
        stamps = pd.to_datetime(column, utc=True, errors="coerce", format="ISO8601")
    bad = stamps.isna() & column.notna()
    if bad.any():
        example = column[bad].iloc[0]
        raise ValueError(f"entities column {name}: {int(bad.sum()):,} rows are not times (e.g. {example!r})")
    return stamps.dt.tz_localize(None).to_numpy().astype("datetime64[us]")


def check_columns(entities: pd.DataFrame, groups: Sequence[FeatureGroup]) -> None:
    """Every group's key and event time is in the entities; no feature name is used twice."""
    problems = []
    for group in groups:
        absent = [
            n for n in (group.record_identifier.name, group.event_time.name) if n not in entities.columns
        ]
        if absent:
            problems.append(f"{group.name} needs entity columns {', '.join(absent)}")
    seen: dict[str, str] = {str(c): "the entities" for c in entities.columns}
    for group in groups:
        for name in group.feature_names:
            if name in seen:
                problems.append(f"feature {name} of {group.name} clashes with a column of {seen[name]}")
            seen[name] = group.name
    if problems:
        raise ValueError("cannot build the training set: " + "; ".join(problems))


def point_in_time(
    entities: pd.DataFrame,
    sources: Sequence[tuple[FeatureGroup, Any]],
    ttl: timedelta,
    threads: int | None = None,
) -> pd.DataFrame:
    """The entities with each group's features as of each row's event time.

    `sources` pairs each group with its records: anything DuckDB scans (an Arrow table or dataset, a
    DataFrame) holding the group's columns and, as the offline store does, `write_time` and `is_deleted`.
    """
    groups = [group for group, _ in sources]
    check_columns(entities, groups)
    connection = duckdb.connect(config={"threads": threads} if threads else {})
    try:
        connection.execute("SET TimeZone = 'UTC'")
        connection.execute("SET preserve_insertion_order = false")
        entity_table, key_columns = _entity_table(entities, groups)
        connection.register("entities", entity_table)
        selects, joins = [], []
        for index, (group, source) in enumerate(sources):
            alias = f"f{index}"
            connection.register(f"source{index}", source)
            columns = _source_columns(connection, f"source{index}")
            connection.execute(
                f"CREATE TEMP VIEW {alias} AS {_records_sql(group, f'source{index}', columns)}"
            )
            id_col, key_col, t_col = key_columns[group.name]
            joins.append(
                f"ASOF LEFT JOIN {alias} ON e.{id_col} = {alias}.__id AND e.{key_col} >= {alias}.__key"
            )
            fresh = f"{alias}.__t >= e.{t_col} - INTERVAL '{int(ttl.total_seconds() * 1e6)} microseconds'"
            live = f"{fresh} AND NOT {alias}.__deleted"
            for feature in group.features:
                selects.append(f'CASE WHEN {live} THEN {alias}."{feature.name}" END AS "{feature.name}"')
        sql = f"SELECT e.__row, {', '.join(selects)} FROM entities e {' '.join(joins)} ORDER BY e.__row"
        result = connection.sql(sql).to_arrow_table()
    finally:
        connection.close()
    return _attach(entities, result, groups)


def _entity_table(
    entities: pd.DataFrame, groups: Sequence[FeatureGroup]
) -> tuple[pa.Table, dict[str, tuple[str, str, str]]]:
    """The entity rows DuckDB needs: row number, and per group its id, ASOF key and event time."""
    columns: dict[str, pa.Array] = {"__row": pa.array(np.arange(len(entities), dtype=np.int64))}
    names: dict[str, tuple[str, str, str]] = {}
    times: dict[str, np.ndarray] = {}
    for index, group in enumerate(groups):
        id_name, t_name = group.record_identifier.name, group.event_time.name
        ids = entities[id_name].reset_index(drop=True)
        try:
            id_array = pa.Array.from_pandas(ids, type=group.record_identifier.type.arrow_type)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            kind = group.record_identifier.type.value
            raise ValueError(
                f"entities column {id_name}: not {kind} like {group.name}'s key ({exc})"
            ) from None
        if t_name not in times:
            times[t_name] = entity_times(entities[t_name].reset_index(drop=True), t_name)
        stamps = pa.array(times[t_name], type=pa.timestamp("us"))
        key = pa.StructArray.from_arrays(
            [stamps, pa.array(np.full(len(entities), _NEVER, dtype=np.int64))], names=["t", "w"]
        )
        columns[f"__id{index}"], columns[f"__key{index}"], columns[f"__t{index}"] = id_array, key, stamps
        names[group.name] = (f"__id{index}", f"__key{index}", f"__t{index}")
    return pa.table(columns), names


def _source_columns(connection: duckdb.DuckDBPyConnection, name: str) -> set[str]:
    return {row[0] for row in connection.execute(f"DESCRIBE {name}").fetchall()}


def _records_sql(group: FeatureGroup, source: str, columns: set[str]) -> str:
    """The group's records with a parsed event time `__t` and the ASOF key (event time, write time)."""
    missing = [n for n in group.column_names if n not in columns]
    if missing:
        raise ValueError(f"{group.name}: the feature records have no column {', '.join(missing)}")
    event = f'"{group.event_time.name}"'
    if group.event_time.type is FeatureType.FRACTIONAL:
        t = f"make_timestamp(CAST(round({event} * 1000000) AS BIGINT))"
    else:
        t = f"CAST(CAST({event} AS TIMESTAMPTZ) AS TIMESTAMP)"
    written = "epoch_ms(write_time)" if "write_time" in columns else "0"
    deleted = "coalesce(is_deleted, false)" if "is_deleted" in columns else "false"
    features = ", ".join(f'"{f.name}"' for f in group.features)
    return (
        f'SELECT "{group.record_identifier.name}" AS __id, {t} AS __t, '
        f"struct_pack(t := {t}, w := CAST({written} AS BIGINT)) AS __key, {deleted} AS __deleted, {features} "
        f"FROM {source}"
    )


def _attach(entities: pd.DataFrame, result: pa.Table, groups: Sequence[FeatureGroup]) -> pd.DataFrame:
    """The entity rows as they came, with the feature columns added in the groups' order."""
    out = entities.copy()
    for group in groups:
        for feature in group.features:
            column = result.column(feature.name)
            if feature.type is FeatureType.INTEGRAL:
                values = column.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get).array
            elif feature.type is FeatureType.FRACTIONAL:
                values = column.to_numpy(zero_copy_only=False).astype("float64")
            else:
                values = column.to_pandas().to_numpy(dtype=object)
            out[feature.name] = values
    return out
