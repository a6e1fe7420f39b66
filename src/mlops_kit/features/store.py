"""The feature store as the pipeline and serving use it: ingest, point-in-time training sets, lookups.

`connect(settings, client)` finds each group's offline location the way SageMaker states it
(`DescribeFeatureGroup` → `ResolvedOutputS3Uri`) and picks the online store: featurestore-runtime in AWS,
the DynamoDB-backed one in the emulator. The same calls run in a SageMaker container (plain boto3
clients) and on this machine (`Emulator.client`). On the embedded default, `connect` also creates the
feature groups in the emulator, as `pulumi up` does in AWS.

    store = connect(settings, emulator.client)
    ingest(store, "transaction-aggregates", frame)          # offline files + latest values online
    frame = training_set(store, entities, ["customer-profile", "transaction-aggregates"])
    features = lookup(store)("c0000042")                      # for serving: {feature: value}
    fill = request_filler(store)                              # serving's hook: fills what records lack
    repair(store, "transaction-aggregates")                   # online rewritten from offline history
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from botocore.exceptions import ClientError

from mlops_kit import local_platform, naming, project
from mlops_kit.features.offline import OfflineLocation, OfflineStore
from mlops_kit.features.online import (
    DEFAULT_FUTURE_TOLERANCE,
    DynamoOnlineStore,
    OnlineStore,
    RuntimeOnlineStore,
    Values,
    future_rows,
    latest_allowed_ms,
    latest_per_entity,
)
from mlops_kit.features.pit import check_columns, entity_times, point_in_time
from mlops_kit.features.types import FeatureGroup, FeatureType
from mlops_kit.features.validation import validate
from mlops_kit.settings import Settings

ClientFactory = Callable[[str], Any]
GroupRef = str | FeatureGroup


class FeatureStoreError(LookupError):
    """A feature group or its storage cannot be found."""


@dataclass
class FeatureStore:
    """One environment's feature store: its groups, offline store, online store (or None) and TTL."""

    groups: dict[str, FeatureGroup]
    offline: OfflineStore
    online: OnlineStore | None
    ttl: timedelta

    def group(self, ref: GroupRef) -> FeatureGroup:
        if isinstance(ref, FeatureGroup):
            return ref
        if ref not in self.groups:
            known = ", ".join(sorted(self.groups)) or "none"
            raise FeatureStoreError(f"no feature group {ref!r}; this project declares: {known}")
        return self.groups[ref]

    def get(self, group: GroupRef, record_id: str) -> Values | None:
        """The entity's latest live record from the online store, or None."""
        return self._online().get(self.group(group), record_id)

    def batch_get(self, group: GroupRef, record_ids: Sequence[str]) -> dict[str, Values]:
        return self._online().batch_get(self.group(group), record_ids)

    def _online(self) -> OnlineStore:
        if self.online is None:
            raise FeatureStoreError(
                "this environment has no online store (mlops:features.online_store: false)"
            )
        return self.online


@dataclass(frozen=True)
class IngestReport:
    group: str
    rows: int
    files_written: int
    files_skipped: int
    online_records: int
    online_future: int = 0  # rows kept offline only: their event time lies past now + the tolerance
    online_not_after: str = ""  # that bound, ISO-8601, when any row was past it


@dataclass(frozen=True)
class RepairReport:
    group: str
    offline_rows: int
    entities: int
    written: int  # entities whose online record is now their latest offline record not from the future
    deleted: int  # entities with only records from the future: no online record any more
    future_rows: int


def connect(
    settings: Settings,
    client: ClientFactory,
    groups: Sequence[FeatureGroup] | None = None,
    clock: Callable[[], float] = time.time,
) -> FeatureStore:
    """The environment's feature store; on the embedded default, its groups are created first. Its
    online store refuses records from further in the future than `training.future_tolerance_hours`."""
    declared = tuple(groups) if groups is not None else project.feature_groups(settings)
    if settings.embedded:
        ensure_groups(settings, client, declared)
    kind = ("dynamodb" if settings.embedded else "runtime") if settings.features.online_store else "none"
    return connect_named(
        declared,
        lambda g: naming.feature_group(settings, g.name),
        timedelta(hours=settings.features.ttl_hours),
        kind,
        client,
        clock,
        future_tolerance=timedelta(hours=settings.training.future_tolerance_hours),
    )


OnlineKind = str  # "dynamodb" (the emulator's), "runtime" (sagemaker-featurestore-runtime) or "none"


def connect_named(
    groups: Sequence[FeatureGroup],
    resource: Callable[[FeatureGroup], str],
    ttl: timedelta,
    online_kind: OnlineKind,
    client: ClientFactory,
    clock: Callable[[], float] = time.time,
    future_tolerance: timedelta = DEFAULT_FUTURE_TOLERANCE,
) -> FeatureStore:
    """A store from explicit parts, for code that has no settings file (a SageMaker job)."""
    sagemaker = client("sagemaker")
    locations: dict[str, OfflineLocation] = {}

    def locate(group: FeatureGroup) -> OfflineLocation:
        if group.name not in locations:
            locations[group.name] = _resolve_location(sagemaker, resource(group))
        return locations[group.name]

    online: OnlineStore | None
    if online_kind == "dynamodb":
        online = DynamoOnlineStore(client("dynamodb"), resource, ttl, clock, future_tolerance)
    elif online_kind == "runtime":
        online = RuntimeOnlineStore(
            client("sagemaker-featurestore-runtime"), resource, ttl, clock, future_tolerance
        )
    elif online_kind == "none":
        online = None
    else:
        raise ValueError(f"unknown online store kind {online_kind!r}; expected dynamodb, runtime or none")
    return FeatureStore({g.name: g for g in groups}, OfflineStore(client("s3"), locate), online, ttl)


def ingest(
    store: FeatureStore, group: GroupRef, frame: pd.DataFrame, write_time: float | None = None
) -> IngestReport:
    """Validate the batch whole, then write it offline (idempotent files) and its latest values online."""
    definition = store.group(group)
    batch = validate(definition, frame)
    written_ms = int((time.time() if write_time is None else write_time) * 1000)
    report = store.offline.write(batch, written_ms)
    if store.online is None:
        return IngestReport(definition.name, batch.rows, report.files_written, report.files_skipped, 0)
    bound = latest_allowed_ms(store.online.clock(), store.online.future_tolerance)
    future = future_rows(batch, bound)
    online = store.online.put(batch)
    return IngestReport(
        definition.name,
        batch.rows,
        report.files_written,
        report.files_skipped,
        online,
        future,
        _iso(bound) if future else "",
    )


def repair(store: FeatureStore, group: GroupRef) -> RepairReport:
    """Rewrite a group's online store from its offline store: for each entity the offline store knows,
    its latest record that is not from the future (the last written, for equal event times) replaces
    whatever is online; an entity with only records from the future is removed from the online store."""
    definition = store.group(group)
    online = store._online()
    table = store.offline.read(definition)
    if "write_time" in table.column_names and table.num_rows:
        table = table.sort_by([("write_time", "ascending")])  # equal event times: the last written wins
    batch = validate(definition, table.select(definition.column_names).to_pandas())
    bound = latest_allowed_ms(online.clock(), online.future_tolerance)
    ids = [str(i) for i in batch.table.column(definition.record_identifier.name).to_pylist()]
    deletions = (
        {
            (ids[row], int(batch.event_ms[row]))
            for row in np.flatnonzero(table.column("is_deleted").fill_null(False).to_numpy())
        }
        if "is_deleted" in table.column_names
        else set()
    )
    records = [r for r in latest_per_entity(batch, bound) if (r.record_id, r.event_ms) not in deletions]
    known = set(ids)
    gone = sorted(known - {r.record_id for r in records})
    written = online.replace(definition, records)
    deleted = online.delete(definition, gone)
    return RepairReport(definition.name, batch.rows, len(known), written, deleted, future_rows(batch, bound))


def _iso(epoch_ms: int) -> str:
    return pd.Timestamp(epoch_ms, unit="ms", tz="UTC").isoformat()


def training_set(store: FeatureStore, entities: pd.DataFrame, groups: Sequence[GroupRef]) -> pd.DataFrame:
    """The entity rows with each group's features as of their event times (see `mlops_kit.features.pit`)."""
    definitions = [store.group(g) for g in groups]
    if not definitions:
        raise ValueError("name at least one feature group for the training set")
    check_columns(entities, definitions)
    with tempfile.TemporaryDirectory(prefix="mlops-training-set-") as tmp:
        sources = []
        for index, group in enumerate(definitions):
            start_ms, end_ms = _time_range(entities[group.event_time.name], group.event_time.name, store.ttl)
            dataset = store.offline.download(group, Path(tmp) / str(index), start_ms, end_ms)
            sources.append((group, dataset))
        return point_in_time(entities, sources, store.ttl)


def lookup(store: FeatureStore, groups: Sequence[GroupRef] | None = None) -> Callable[[str], Values]:
    """For serving: `fetch(entity_id) -> {feature: value}` over the groups' live online records.

    Features of a group with no live record for the entity come back as None, so the caller can tell a
    missing value from a present one.
    """
    definitions = [store.group(g) for g in (groups if groups is not None else list(store.groups))]

    def fetch(entity_id: str) -> Values:
        values: Values = {}
        for group in definitions:
            record = store.get(group, entity_id) or {}
            values.update({name: record.get(name) for name in group.feature_names})
        return values

    return fetch


def fill_missing(
    frame: pd.DataFrame,
    groups: Sequence[FeatureGroup],
    fetch: Callable[[FeatureGroup, Sequence[str]], dict[str, Values]],
) -> pd.DataFrame:
    """Request rows with the features they lack (absent, or null) taken from `fetch` by entity id.

    For each group whose entity key is a column of the rows, the ids of the rows missing any of its
    features are fetched in one call (`fetch(group, ids)`, as `FeatureStore.batch_get`); a value the row
    holds is never replaced, and an entity without a live record leaves its features null, as a first
    transaction has no aggregates. Rows without the key column are returned as they are.
    """
    out = frame.copy(deep=False)  # copy-on-write: the caller's frame is never changed
    for group in groups:
        key = group.record_identifier.name
        if key not in out.columns or len(out) == 0:
            continue
        holes = np.zeros(len(out), dtype=bool)
        for name in group.feature_names:
            holes |= out[name].isna().to_numpy() if name in out.columns else True
        wanted = holes & out[key].notna().to_numpy()
        if not wanted.any():
            continue
        ids = out[key].map(lambda value: None if pd.isna(value) else str(value))
        found = fetch(group, list(dict.fromkeys(ids[wanted])))
        for feature in group.features:
            looked = [found.get(i, {}).get(feature.name) if i is not None else None for i in ids]
            numeric = feature.type is not FeatureType.STRING
            values = pd.Series(
                np.array([np.nan if v is None else v for v in looked], dtype="float64")
                if numeric
                else np.array(looked, dtype=object),
                index=out.index,
            )
            out[feature.name] = (
                values
                if feature.name not in out.columns
                else out[feature.name].where(out[feature.name].notna(), values)
            )
    return out


def request_filler(store: FeatureStore, groups: Sequence[GroupRef] | None = None) -> Callable[[Any], Any]:
    """For serving's `feature_lookup` hook: request records (a DataFrame) get their missing features
    from the online store (`fill_missing`); anything else (headerless rows) passes as it is."""
    definitions = [store.group(g) for g in (groups if groups is not None else list(store.groups))]
    store._online()  # an environment without an online store cannot serve lookups: say so now

    def fill(data: Any) -> Any:
        if not isinstance(data, pd.DataFrame):
            return data
        return fill_missing(data, definitions, store.batch_get)

    return fill


def ensure_groups(settings: Settings, client: ClientFactory, groups: Sequence[FeatureGroup]) -> None:
    """Create the feature groups (and the platform they need) in the emulator, as infra does in AWS."""
    platform = local_platform.ensure(settings, client)
    sagemaker = client("sagemaker")
    for group in groups:
        request = create_request(
            settings, group, platform.buckets["features"], platform.account_id, platform.kms_key_arn
        )
        try:
            sagemaker.create_feature_group(**request)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("ResourceInUse", "ResourceInUseException"):
                raise
        if settings.features.online_store:
            # CreateFeatureGroup makes the online store in AWS: here its table, before any job writes it
            # (instances of a sharded job creating it at once got a 500 from the emulator)
            online = DynamoOnlineStore(
                client("dynamodb"),
                lambda g: naming.feature_group(settings, g.name),
                timedelta(hours=settings.features.ttl_hours),
            )
            online.ensure_table(group)


def create_request(
    settings: Settings, group: FeatureGroup, bucket: str, account_id: str, kms_key_arn: str
) -> dict[str, Any]:
    """CreateFeatureGroup's arguments for one group: what infra's `aws.sagemaker.FeatureGroup` declares."""
    return {
        "FeatureGroupName": naming.feature_group(settings, group.name),
        "RecordIdentifierFeatureName": group.record_identifier.name,
        "EventTimeFeatureName": group.event_time.name,
        "FeatureDefinitions": group.feature_definitions(),
        "OfflineStoreConfig": {
            "S3StorageConfig": {"S3Uri": f"s3://{bucket}/offline-store", "KmsKeyId": kms_key_arn},
            "DisableGlueTableCreation": False,
        },
        "OnlineStoreConfig": {
            "EnableOnlineStore": settings.features.online_store,
            "TtlDuration": {"Unit": "Hours", "Value": settings.features.ttl_hours},
        },
        "RoleArn": f"arn:aws:iam::{account_id}:role/{naming.execution_role(settings)}",
        "Description": group.description or group.name,
        "Tags": [
            {"Key": "project", "Value": settings.project},
            {"Key": "environment", "Value": settings.env},
            {"Key": "owner", "Value": settings.owner},
        ],
    }


def _resolve_location(sagemaker: Any, name: str) -> OfflineLocation:
    try:
        described = sagemaker.describe_feature_group(FeatureGroupName=name)
    except ClientError as exc:
        raise FeatureStoreError(
            f"feature group {name} not found ({exc.response.get('Error', {}).get('Code')}); "
            "deploy the environment first (`pulumi up`), or on the embedded default start the emulator"
        ) from None
    uri = described.get("OfflineStoreConfig", {}).get("S3StorageConfig", {}).get("ResolvedOutputS3Uri")
    if not uri:
        raise FeatureStoreError(f"feature group {name} has no offline store; the kit needs one")
    return OfflineLocation.from_uri(uri)


def _time_range(column: pd.Series, name: str, ttl: timedelta) -> tuple[int | None, int | None]:
    """The feature event times a training set can use: from the earliest entity time - TTL to the latest."""
    stamps = entity_times(column.reset_index(drop=True), name)
    stamps = stamps[~np.isnat(stamps)]
    if len(stamps) == 0:
        return 0, 0
    start = int(stamps.min().astype("datetime64[ms]").astype(np.int64)) - int(ttl.total_seconds() * 1000)
    end = int(stamps.max().astype("datetime64[ms]").astype(np.int64))
    return start, end
