"""The stage ledger: each stage's pointer (HEAD), its conditional writes, and the audit trail.

An environment's artifacts bucket holds, for each stage promoted into that environment's registry,
`promotions/<stage>/HEAD.json` (the package served, the history, the audit record still to be written)
and one `promotions/<stage>/<sequence>.json` audit record per promotion or rollback. HEAD is written with
a conditional put (If-Match the ETag read, or If-None-Match * when absent): the commit point of a
promotion, which a concurrent one that wrote first makes fail (`PromotionConflict`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mlops_kit import clients, naming
from mlops_kit.registry.packages import RegistryError, reason
from mlops_kit.settings import Settings

PREFIX = "promotions"

ClientFactory = Any  # a callable service name -> boto3 client (`mlops_kit.clients.Clients`)


class PromotionError(RegistryError):
    """A promotion or rollback cannot proceed: says what is missing or wrong."""


class PromotionConflict(PromotionError):
    """Another promotion of the same stage committed first; this one changed nothing."""


@dataclass(frozen=True)
class Registry:
    """Where an environment's packages and its promotion trail live."""

    settings: Settings
    group: str
    bucket: str
    account_id: str

    def head_key(self, stage: str) -> str:
        return f"{PREFIX}/{stage}/HEAD.json"

    def audit_key(self, stage: str, sequence: int) -> str:
        return f"{PREFIX}/{stage}/{sequence:06d}.json"

    @property
    def group_arn(self) -> str:
        return group_arn(self.settings, self.account_id)


@dataclass(frozen=True)
class Head:
    sequence: int
    package: str
    history: list[dict[str, Any]]
    etag: str
    pending: dict[str, Any] | None = None  # the audit record of the last commit, until it is written


def registry(settings: Settings, client: ClientFactory) -> Registry:
    """The environment's registry, reached with `client` (which must act in its account when pinned)."""
    try:
        account = clients.check_account(settings, client)
    except clients.ClientsError as exc:
        raise PromotionError(str(exc)) from None
    return Registry(
        settings, naming.model_package_group(settings), naming.bucket(settings, "artifacts", account), account
    )


def group_arn(settings: Settings, account_id: str) -> str:
    return f"arn:aws:sagemaker:{settings.region}:{account_id}:model-package-group/{naming.model_package_group(settings)}"


def read_head(s3: Any, reg: Registry, stage: str) -> Head | None:
    try:
        got = s3.get_object(Bucket=reg.bucket, Key=reg.head_key(stage))
    except s3.exceptions.NoSuchKey:
        return None
    except s3.exceptions.ClientError as exc:
        raise PromotionError(f"s3://{reg.bucket}/{reg.head_key(stage)}: {reason(exc)}") from None
    body = json.loads(got["Body"].read())
    return Head(
        int(body["sequence"]),
        body["package"],
        list(body.get("history", [])),
        got["ETag"],
        body.get("pending"),
    )


def write_head(
    s3: Any, reg: Registry, stage: str, head: Head | None, entry: dict[str, Any], pending: dict[str, Any]
) -> int:
    """The commit point: conditional on HEAD being exactly what was read. Returns the new sequence."""
    sequence = (head.sequence if head else 0) + 1
    history = (head.history if head else []) + [{**entry, "sequence": sequence}]
    body = {
        "sequence": sequence,
        "package": entry["package"],
        "history": history,
        "pending": {**pending, "sequence": sequence},
    }
    condition = {"IfMatch": head.etag} if head else {"IfNoneMatch": "*"}
    try:
        s3.put_object(
            Bucket=reg.bucket,
            Key=reg.head_key(stage),
            Body=json.dumps(body, indent=2).encode(),
            ContentType="application/json",
            **condition,
        )
    except s3.exceptions.ClientError as exc:
        if precondition_failed(exc):
            raise PromotionConflict(
                f"another promotion of stage {stage} committed first (s3://{reg.bucket}/"
                f"{reg.head_key(stage)} changed since it was read); nothing was changed, run it again"
            ) from None
        raise PromotionError(f"s3://{reg.bucket}/{reg.head_key(stage)}: {reason(exc)}") from None
    return sequence


def write_audit(s3: Any, reg: Registry, stage: str, sequence: int, record: dict[str, Any]) -> str:
    key = reg.audit_key(stage, sequence)
    try:
        s3.put_object(
            Bucket=reg.bucket,
            Key=key,
            Body=json.dumps(record, indent=2, sort_keys=True).encode(),
            ContentType="application/json",
            IfNoneMatch="*",  # sequences are unique per committed HEAD: never overwrite a record
        )
    except s3.exceptions.ClientError as exc:
        if not precondition_failed(exc):
            raise
        # already written: by this promotion before it was interrupted, or by whoever finished it
    return key


def precondition_failed(exc: Any) -> bool:
    """A conditional put lost: the object changed (If-Match) or exists (If-None-Match) meanwhile."""
    code = exc.response.get("Error", {}).get("Code", "")
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in ("PreconditionFailed", "ConditionalRequestConflict") or status in (409, 412)


def audit_exists(s3: Any, reg: Registry, stage: str, sequence: int) -> bool:
    try:
        s3.head_object(Bucket=reg.bucket, Key=reg.audit_key(stage, sequence))
    except s3.exceptions.ClientError as exc:
        if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
            return False
        raise PromotionError(f"s3://{reg.bucket}/{reg.audit_key(stage, sequence)}: {reason(exc)}") from None
    return True


def audit_records(s3: Any, reg: Registry) -> list[dict[str, Any]]:
    """Every audit record of the registry, oldest first within each stage."""
    records = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=reg.bucket, Prefix=f"{PREFIX}/"):
        for item in page.get("Contents", []):
            if item["Key"].endswith(".json") and not item["Key"].endswith("/HEAD.json"):
                records.append(json.loads(s3.get_object(Bucket=reg.bucket, Key=item["Key"])["Body"].read()))
    return sorted(records, key=lambda r: (r.get("stage", ""), r.get("sequence", 0)))
