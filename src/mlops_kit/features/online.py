"""The online store: the latest record per entity, for serving, behind one interface.

In AWS it is SageMaker's `sagemaker-featurestore-runtime` (PutRecord, GetRecord, BatchGetRecord). Moto has
no such service, so on the embedded default a DynamoDB table inside the emulator (one per group, named
like the group) stands behind the same interface with the same semantics: it lives and dies with the
emulator and every process sees it. The semantics, on both:
- values travel as SageMaker's `ValueAsString` and come back typed by the group's definitions;
- a record replaces the stored one only if its event time is the same or later, so a late record never
  hides a newer one, and re-putting a record changes nothing;
- a record expires at event time + TTL (SageMaker's `ExpiresAt`); an expired record reads as absent;
- a record from the future (event time past now + `future_tolerance`, the settings'
  `training.future_tolerance_hours`) is refused: it would otherwise hide every later, true record of its
  entity until its time came (a row stamped 2099 wins forever). The offline store keeps it, as history;
- `replace` writes a record whatever is stored (and `delete` removes one): `store.repair` rewrites a
  group from the offline store with them.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

import numpy as np
import pandas as pd
from botocore.exceptions import ClientError

from mlops_kit.features.types import FeatureGroup
from mlops_kit.features.validation import Batch, format_iso_ms

Values = dict[str, Any]
_WORKERS = 8
_BATCH_GET = 100  # BatchGetRecord's and BatchGetItem's limit of identifiers per call
DEFAULT_FUTURE_TOLERANCE = timedelta(hours=1)  # the settings' default (training.future_tolerance_hours)
_BATCH_WRITE = 25  # BatchWriteItem's limit of items per call
MAX_ATTEMPTS = 8  # per record (PutRecord) or batch (BatchWriteItem's unprocessed items)
BASE_DELAY_S = 0.05
MAX_DELAY_S = 5.0
# What SageMaker's runtime answers when it is busy: worth another try, later.
RETRYABLE = frozenset(
    {"ThrottlingException", "ServiceUnavailable", "InternalFailure", "ProvisionedThroughputExceededException"}
)


class OnlineWriteFailed(RuntimeError):
    """Records the online store did not take after every retry: each one's id and reason (`failed`)."""

    def __init__(self, group: str, failed: list[tuple[str, str]], offered: int):
        self.group = group
        self.failed = failed
        shown = "; ".join(f"{i}: {why}" for i, why in failed[:5])
        more = f" (and {len(failed) - 5} more)" if len(failed) > 5 else ""
        super().__init__(
            f"{group}: {len(failed):,} of {offered:,} records were not written to the online store "
            f"after {MAX_ATTEMPTS} attempts each: {shown}{more}"
        )


def _delay(attempt: int) -> float:
    """Exponential backoff with full jitter: a random wait up to BASE * 2^attempt, capped."""
    return random.uniform(0, min(MAX_DELAY_S, BASE_DELAY_S * (2**attempt)))


def _backoff(attempt: int, again: bool, failure: str) -> int:
    """Before another try of a batch's leftovers: wait, or give up after MAX_ATTEMPTS."""
    if not again:
        return attempt
    if attempt + 1 >= MAX_ATTEMPTS:
        raise RuntimeError(f"{failure} after {MAX_ATTEMPTS} attempts")
    time.sleep(_delay(attempt))
    return attempt + 1


@dataclass(frozen=True)
class OnlineRecord:
    """One record in the online store's wire form: `ValueAsString` per feature, nulls left out."""

    record_id: str
    event_ms: int
    values: dict[str, str]


class OnlineStore(Protocol):
    future_tolerance: timedelta
    clock: Callable[[], float]

    def put(self, batch: Batch) -> int:
        """Store the batch's latest record per entity, records from the future left out; returns how
        many records were offered."""
        ...

    def replace(self, group: FeatureGroup, records: Sequence[OnlineRecord]) -> int:
        """Store these records whatever is stored for their entities (a repair); returns how many."""
        ...

    def delete(self, group: FeatureGroup, record_ids: Sequence[str]) -> int:
        """Remove the entities' records; returns how many ids were given."""
        ...

    def get(self, group: FeatureGroup, record_id: str) -> Values | None:
        """The entity's live record (typed values, key and event time included), or None."""
        ...

    def batch_get(self, group: FeatureGroup, record_ids: Sequence[str]) -> dict[str, Values]:
        """Live records of several entities; absent or expired ones are left out."""
        ...


# --- pure decisions ------------------------------------------------------------------------------


def latest_allowed_ms(now: float, tolerance: timedelta) -> int:
    """The latest event time (epoch ms) the online store takes at `now` (epoch seconds)."""
    return int(now * 1000) + int(tolerance.total_seconds() * 1000)


def future_rows(batch: Batch, not_after_ms: int) -> int:
    """How many of the batch's rows lie past `not_after_ms` (refused by the online store)."""
    return int((batch.event_ms > not_after_ms).sum())


def latest_per_entity(batch: Batch, not_after_ms: int | None = None) -> list[OnlineRecord]:
    """The batch's record with the latest event time for each entity (the last row among equal times),
    among the rows not later than `not_after_ms`: an entity's true latest record is kept even when the
    batch also holds one from the future for it."""
    if batch.rows == 0:
        return []
    group = batch.group
    ids = batch.table.column(group.record_identifier.name).to_pandas()
    order = pd.DataFrame({"id": ids, "ms": batch.event_ms, "row": np.arange(batch.rows)})
    if not_after_ms is not None:
        order = order[order["ms"] <= not_after_ms]
    # Later rows win ties on event time: sort by (id, event time, row) and keep the last of each id.
    rows = order.sort_values(["id", "ms", "row"]).drop_duplicates("id", keep="last")["row"].to_numpy()
    records = []
    for row, values in zip(rows, batch.table.take(rows).to_pylist(), strict=True):
        wire = {
            feature.name: feature.type.to_wire(values[feature.name])
            for feature in group.all_features
            if values[feature.name] is not None and not _is_nan(values[feature.name])
        }
        records.append(
            OnlineRecord(str(values[group.record_identifier.name]), int(batch.event_ms[row]), wire)
        )
    return records


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def decode(group: FeatureGroup, values: dict[str, str]) -> Values:
    """Wire values to typed Python, every feature of the group present (None when missing)."""
    out: Values = {}
    for feature in group.all_features:
        raw = values.get(feature.name)
        out[feature.name] = None if raw is None else feature.type.from_wire(raw)
    return out


def expires_at_ms(event_ms: int, ttl: timedelta) -> int:
    return event_ms + int(ttl.total_seconds() * 1000)


# --- the local store: DynamoDB in the emulator ---------------------------------------------------


class DynamoOnlineStore:
    """The online store on the embedded default: one DynamoDB table per group, in the emulator."""

    def __init__(
        self,
        dynamodb: Any,
        table_name: Callable[[FeatureGroup], str],
        ttl: timedelta,
        clock: Callable[[], float] = time.time,
        future_tolerance: timedelta = DEFAULT_FUTURE_TOLERANCE,
    ):
        self.dynamodb = dynamodb
        self.table_name = table_name
        self.ttl = ttl
        self.clock = clock
        self.future_tolerance = future_tolerance
        self._ready: set[str] = set()

    def _item(self, record: OnlineRecord) -> dict[str, Any]:
        return {
            "record_id": {"S": record.record_id},
            "event_ms": {"N": str(record.event_ms)},
            "expires_at": {"N": str(expires_at_ms(record.event_ms, self.ttl) // 1000)},
            "record": {"M": {name: {"S": value} for name, value in record.values.items()}},
        }

    def put(self, batch: Batch) -> int:
        """The latest record per entity, written in batches: the stored event times are read 100 ids a
        call (BatchGetItem), the records that are not older written 25 a call (BatchWriteItem, its
        unprocessed items retried with backoff). BatchWriteItem has no condition, so "never replace a
        newer record" is checked on the read: two writers of one entity at the same moment could race,
        which the sharded pipeline rules out (each entity belongs to one instance)."""
        records = latest_per_entity(batch, latest_allowed_ms(self.clock(), self.future_tolerance))
        table = self.ensure_table(batch.group)

        def put_chunk(chunk: list[OnlineRecord]) -> None:
            stored = self._stored_event_ms(table, [r.record_id for r in chunk])
            fresh = [r for r in chunk if stored.get(r.record_id, -1) <= r.event_ms]
            for part in _chunks(fresh, _BATCH_WRITE):
                requests = [{"PutRequest": {"Item": self._item(record)}} for record in part]
                self._write_all(table, requests)

        with ThreadPoolExecutor(_WORKERS) as pool:
            list(pool.map(put_chunk, _chunks(records, _BATCH_GET)))
        return len(records)

    def replace(self, group: FeatureGroup, records: Sequence[OnlineRecord]) -> int:
        table = self.ensure_table(group)
        with ThreadPoolExecutor(_WORKERS) as pool:
            list(pool.map(lambda r: self.dynamodb.put_item(TableName=table, Item=self._item(r)), records))
        return len(records)

    def delete(self, group: FeatureGroup, record_ids: Sequence[str]) -> int:
        table = self._existing_table(group)
        if table is not None:
            for record_id in record_ids:
                self.dynamodb.delete_item(TableName=table, Key={"record_id": {"S": str(record_id)}})
        return len(record_ids)

    def _stored_event_ms(self, table: str, ids: list[str]) -> dict[str, int]:
        request = {
            table: {
                "Keys": [{"record_id": {"S": i}} for i in ids],
                "ProjectionExpression": "record_id, event_ms",
                "ConsistentRead": True,
            }
        }
        found: dict[str, int] = {}
        attempt = 0
        while request:
            response = self.dynamodb.batch_get_item(RequestItems=request)
            for item in response.get("Responses", {}).get(table, []):
                found[item["record_id"]["S"]] = int(item["event_ms"]["N"])
            request = response.get("UnprocessedKeys") or {}
            attempt = _backoff(attempt, bool(request), f"{table}: BatchGetItem left keys unprocessed")
        return found

    def _write_all(self, table: str, requests: list[dict[str, Any]]) -> None:
        attempt = 0
        pending = {table: requests}
        while pending:
            response = self.dynamodb.batch_write_item(RequestItems=pending)
            pending = response.get("UnprocessedItems") or {}
            left = len(pending.get(table, []))
            attempt = _backoff(
                attempt, bool(pending), f"{table}: {left} records left unwritten by BatchWriteItem"
            )

    def get(self, group: FeatureGroup, record_id: str) -> Values | None:
        table = self._existing_table(group)
        if table is None:
            return None
        item = self.dynamodb.get_item(
            TableName=table, Key={"record_id": {"S": str(record_id)}}, ConsistentRead=True
        ).get("Item")
        return self._live(group, item)

    def batch_get(self, group: FeatureGroup, record_ids: Sequence[str]) -> dict[str, Values]:
        table = self._existing_table(group)
        found: dict[str, Values] = {}
        if table is None:
            return found
        unique = list(dict.fromkeys(str(i) for i in record_ids))
        for chunk in _chunks(unique, _BATCH_GET):
            request = {table: {"Keys": [{"record_id": {"S": i}} for i in chunk], "ConsistentRead": True}}
            while request:
                response = self.dynamodb.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(table, []):
                    values = self._live(group, item)
                    if values is not None:
                        found[item["record_id"]["S"]] = values
                request = response.get("UnprocessedKeys") or {}
        return found

    def ensure_table(self, group: FeatureGroup) -> str:
        name = self.table_name(group)
        if name in self._ready:  # a table is not removed while a store writes it
            return name
        if self._existing_table(group) is None:
            try:
                self.dynamodb.create_table(
                    TableName=name,
                    KeySchema=[{"AttributeName": "record_id", "KeyType": "HASH"}],
                    AttributeDefinitions=[{"AttributeName": "record_id", "AttributeType": "S"}],
                    BillingMode="PAY_PER_REQUEST",
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
                    raise  # another process created it first: fine
            self.dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1})
            self.dynamodb.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
            )
        self._ready.add(name)
        return name

    def _existing_table(self, group: FeatureGroup) -> str | None:
        name = self.table_name(group)
        try:
            self.dynamodb.describe_table(TableName=name)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return None
            raise
        return name

    def _live(self, group: FeatureGroup, item: dict | None) -> Values | None:
        if not item:
            return None
        event_ms = int(item["event_ms"]["N"])
        if expires_at_ms(event_ms, self.ttl) <= self.clock() * 1000:
            return None  # DynamoDB deletes expired items lazily; SageMaker does not return them
        return decode(group, {k: v["S"] for k, v in item["record"]["M"].items()})


# --- the AWS store: sagemaker-featurestore-runtime -----------------------------------------------


class RuntimeOnlineStore:
    """The online store in AWS, through `sagemaker-featurestore-runtime`."""

    def __init__(
        self,
        runtime: Any,
        group_name: Callable[[FeatureGroup], str],
        ttl: timedelta,
        clock: Callable[[], float] = time.time,
        future_tolerance: timedelta = DEFAULT_FUTURE_TOLERANCE,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.runtime = runtime
        self.group_name = group_name
        self.ttl = ttl
        self.clock = clock
        self.future_tolerance = future_tolerance
        self.sleep = sleep

    def put(self, batch: Batch) -> int:
        """The latest record per entity (none from the future), by PutRecord (the runtime has no batch
        write): a bounded pool of `_WORKERS` calls at a time, each retried with exponential backoff and
        jitter while SageMaker throttles (`RETRYABLE`), up to `MAX_ATTEMPTS`. Every record that still
        failed is reported: `OnlineWriteFailed` names how many, which, and why, once the others are written."""
        records = latest_per_entity(batch, latest_allowed_ms(self.clock(), self.future_tolerance))
        return self._put(batch.group, records)

    def _put(self, group: FeatureGroup, records: Sequence[OnlineRecord]) -> int:
        name = self.group_name(group)
        hours = max(1, int(self.ttl.total_seconds() // 3600))

        def put_one(record: OnlineRecord) -> tuple[str, str] | None:
            attempt = 0
            while True:
                try:
                    self.runtime.put_record(
                        FeatureGroupName=name,
                        Record=[{"FeatureName": k, "ValueAsString": v} for k, v in record.values.items()],
                        # The kit writes the offline store itself (idempotent files); this feeds serving.
                        TargetStores=["OnlineStore"],
                        TtlDuration={"Unit": "Hours", "Value": hours},
                    )
                    return None
                except ClientError as exc:
                    code = exc.response.get("Error", {}).get("Code", "")
                    if code not in RETRYABLE or attempt + 1 >= MAX_ATTEMPTS:
                        return record.record_id, f"{code}: {exc.response.get('Error', {}).get('Message', '')}"
                    self.sleep(_delay(attempt))
                    attempt += 1

        with ThreadPoolExecutor(_WORKERS) as pool:
            failed = [f for f in pool.map(put_one, records) if f is not None]
        if failed:
            raise OnlineWriteFailed(name, failed, len(records))
        return len(records)

    def replace(self, group: FeatureGroup, records: Sequence[OnlineRecord]) -> int:
        # The online store keeps the record with the latest event time: an older, true one replaces a
        # record from the future only once that is deleted.
        self.delete(group, [r.record_id for r in records])
        return self._put(group, records)

    def delete(self, group: FeatureGroup, record_ids: Sequence[str]) -> int:
        name = self.group_name(group)
        stamp = format_iso_ms(np.array([int(self.clock() * 1000)], dtype=np.int64))[0].as_py()

        def delete_one(record_id: str) -> None:
            try:
                self.runtime.delete_record(
                    FeatureGroupName=name,
                    RecordIdentifierValueAsString=str(record_id),
                    EventTime=stamp,
                    TargetStores=["OnlineStore"],
                    DeletionMode="HardDelete",
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ResourceNotFound":
                    raise

        with ThreadPoolExecutor(_WORKERS) as pool:
            list(pool.map(delete_one, record_ids))
        return len(record_ids)

    def get(self, group: FeatureGroup, record_id: str) -> Values | None:
        try:
            response = self.runtime.get_record(
                FeatureGroupName=self.group_name(group), RecordIdentifierValueAsString=str(record_id)
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFound":
                return None
            raise
        record = response.get("Record")
        return decode(group, _wire(record)) if record else None

    def batch_get(self, group: FeatureGroup, record_ids: Sequence[str]) -> dict[str, Values]:
        name = self.group_name(group)
        found: dict[str, Values] = {}
        unique = list(dict.fromkeys(str(i) for i in record_ids))
        for chunk in _chunks(unique, _BATCH_GET):
            pending = [{"FeatureGroupName": name, "RecordIdentifiersValueAsString": chunk}]
            while pending:
                response = self.runtime.batch_get_record(Identifiers=pending)
                for entry in response.get("Records", []):
                    found[entry["RecordIdentifierValueAsString"]] = decode(group, _wire(entry["Record"]))
                if response.get("Errors"):
                    first = response["Errors"][0]
                    raise RuntimeError(
                        f"{name}: BatchGetRecord failed for {len(response['Errors'])} ids, e.g. "
                        f"{first.get('RecordIdentifierValueAsString')}: {first.get('ErrorMessage')}"
                    )
                pending = response.get("UnprocessedIdentifiers") or []
        return found


def _wire(record: Iterable[dict[str, str]]) -> dict[str, str]:
    return {entry["FeatureName"]: entry["ValueAsString"] for entry in record}


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
