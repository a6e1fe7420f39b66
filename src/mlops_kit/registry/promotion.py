"""Carry out promotions and rollbacks: the registry adapter around the pure gates of `gates.py`.

`promote(settings, client, stage=...)` acts on the registry of the environment `settings` describes (its
model package group; its artifacts bucket holds the audit trail). The environments that serve the target
stage (`mlops:promotion.stage`, same runtime kind) give the gates and get the approved package written
into their settings files. In order, each step only after the one before succeeded:

  1. read the stage's pointer `s3://<artifacts>/promotions/<stage>/HEAD.json` (its ETag) and the champion
  2. re-score champion and challenger on the candidate's test set when it is recorded (`lineage:test`)
  3. `gates.decide(...)`: refused -> `PromotionRefused`, nothing changed; `dry_run` stops here too
  4. write HEAD with a conditional put (If-Match the ETag read, or If-None-Match * when absent): the
     commit point. A concurrent promotion that wrote first makes this fail: `PromotionConflict`, and the
     loser has changed nothing
  5. the package: Approved, `mlops:stage` in its metadata (the full dict: AWS merges, moto replaces)
  6. the audit record `promotions/<stage>/<sequence>.json`: who, when, from which stage, every check
  7. each target's `environments/Pulumi.<env>.yaml` (one line; an embedded target's local state instead,
     `settings_edit.write_promoted`), and the local endpoint for embedded ones

`rollback` moves the pointer back to the previous package of the stage's history, with the same
conditional write, an audit record and the same settings change.

Steps 5-7 come after the commit point, so HEAD carries what they need (`pending`: the audit record to
be). If one of them fails (a network error, a killed process), the promotion stands but its trail is
incomplete; the next promotion or rollback of that stage first finishes it: the package update, the
settings files and the audit record, each of which can be applied twice with the same result.
"""

from __future__ import annotations

import contextlib
import getpass
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops_kit import naming, project
from mlops_kit import settings as settings_mod
from mlops_kit.registry import gates, rescore
from mlops_kit.registry.gates import Decision, Package
from mlops_kit.registry.packages import APPROVED
from mlops_kit.registry.settings_edit import write_promoted
from mlops_kit.settings import Settings

ClientFactory = Callable[[str], Any]
# Serves `package_arn` on an embedded environment's local endpoint (the CLI wires serving.local.deploy).
Redeploy = Callable[[Settings, str], Any]

PREFIX = "promotions"


class PromotionError(RuntimeError):
    """A promotion or rollback cannot proceed: says what is missing or wrong."""


class PromotionRefused(PromotionError):
    """The gates refused the package; nothing was changed."""

    def __init__(self, decision: Decision):
        self.decision = decision
        super().__init__(decision.refusal())


class PromotionConflict(PromotionError):
    """Another promotion of the same stage committed first; this one changed nothing."""


@dataclass(frozen=True)
class Registry:
    """Where an environment's packages and its promotion trail live."""

    settings: Settings
    group: str
    bucket: str

    def head_key(self, stage: str) -> str:
        return f"{PREFIX}/{stage}/HEAD.json"

    def audit_key(self, stage: str, sequence: int) -> str:
        return f"{PREFIX}/{stage}/{sequence:06d}.json"


@dataclass(frozen=True)
class Head:
    sequence: int
    package: str
    history: list[dict[str, Any]]
    etag: str
    pending: dict[str, Any] | None = None  # the audit record of the last commit, until it is written


@dataclass
class Outcome:
    action: str
    stage: str
    package: str
    previous: str | None
    decision: Decision | None = None
    dry_run: bool = False
    sequence: int | None = None
    audit_key: str | None = None
    settings_files: list[Path] = field(default_factory=list)
    redeployed: list[str] = field(default_factory=list)


def registry(settings: Settings, client: ClientFactory) -> Registry:
    account = client("sts").get_caller_identity()["Account"]
    return Registry(
        settings, naming.model_package_group(settings), naming.bucket(settings, "artifacts", account)
    )


def targets(settings: Settings, stage: str, root: Path | None = None) -> list[Settings]:
    """The environments serving `stage` with the same runtime kind as `settings`' own."""
    root = root or settings.file.parent.parent
    found = []
    for env in settings_mod.environments(root):
        other = settings_mod.load(env, root)
        if other.promotion.stage == stage and other.runtime.kind == settings.runtime.kind:
            found.append(other)
    return found


def gates_of(settings: Settings, stage_targets: Sequence[Settings]) -> settings_mod.Promotion:
    """The targets' gates (they must agree); with no target, the registry environment's own."""
    if not stage_targets:
        return settings.promotion
    first = stage_targets[0]
    for other in stage_targets[1:]:
        if other.promotion != first.promotion:
            raise PromotionError(
                f"{first.file} and {other.file} serve stage {first.promotion.stage} with different "
                "mlops:promotion gates; make them agree"
            )
    return first.promotion


# --- reading the registry ----------------------------------------------------------------------------


def describe(sagemaker: Any, arn: str) -> Package:
    try:
        return Package.from_description(sagemaker.describe_model_package(ModelPackageName=arn))
    except sagemaker.exceptions.ClientError as exc:
        raise PromotionError(f"model package {arn} not found: {_reason(exc)}") from None


def package_versions(sagemaker: Any, group: str) -> list[dict[str, Any]]:
    """Every version of the group, oldest first."""
    found: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "ModelPackageGroupName": group,
        "SortBy": "CreationTime",
        "SortOrder": "Ascending",
    }
    while True:
        try:
            page = sagemaker.list_model_packages(**kwargs)
        except sagemaker.exceptions.ClientError as exc:
            raise PromotionError(f"model package group {group}: {_reason(exc)}") from None
        found += page.get("ModelPackageSummaryList", [])
        if not page.get("NextToken"):
            break
        kwargs["NextToken"] = page["NextToken"]
    return sorted(found, key=lambda p: (p.get("ModelPackageVersion") or 0, p["CreationTime"]))


def latest_candidate(sagemaker: Any, group: str, stages: Sequence[str], stage: str) -> str:
    """The newest package in the stage before `stage` (a new one for the first stage); else the newest."""
    versions = package_versions(sagemaker, group)
    if not versions:
        raise PromotionError(f"model package group {group} has no package; run the training pipeline first")
    required = gates.previous_stage(stages, stage)
    for summary in reversed(versions):
        if describe(sagemaker, summary["ModelPackageArn"]).stage == required:
            return summary["ModelPackageArn"]
    return versions[-1]["ModelPackageArn"]  # the gates will say why it cannot go


def read_head(s3: Any, reg: Registry, stage: str) -> Head | None:
    try:
        got = s3.get_object(Bucket=reg.bucket, Key=reg.head_key(stage))
    except s3.exceptions.NoSuchKey:
        return None
    except s3.exceptions.ClientError as exc:
        raise PromotionError(f"s3://{reg.bucket}/{reg.head_key(stage)}: {_reason(exc)}") from None
    body = json.loads(got["Body"].read())
    return Head(
        int(body["sequence"]),
        body["package"],
        list(body.get("history", [])),
        got["ETag"],
        body.get("pending"),
    )


def _write_head(
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
        if _precondition_failed(exc):
            raise PromotionConflict(
                f"another promotion of stage {stage} committed first (s3://{reg.bucket}/"
                f"{reg.head_key(stage)} changed since it was read); nothing was changed, run it again"
            ) from None
        raise PromotionError(f"s3://{reg.bucket}/{reg.head_key(stage)}: {_reason(exc)}") from None
    return sequence


def _write_audit(s3: Any, reg: Registry, stage: str, sequence: int, record: dict[str, Any]) -> str:
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
        if not _precondition_failed(exc):
            raise
        # already written: by this promotion before it was interrupted, or by whoever finished it
    return key


def _precondition_failed(exc: Any) -> bool:
    """A conditional put lost: the object changed (If-Match) or exists (If-None-Match) meanwhile."""
    code = exc.response.get("Error", {}).get("Code", "")
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in ("PreconditionFailed", "ConditionalRequestConflict") or status in (409, 412)


def _audit_exists(s3: Any, reg: Registry, stage: str, sequence: int) -> bool:
    try:
        s3.head_object(Bucket=reg.bucket, Key=reg.audit_key(stage, sequence))
    except s3.exceptions.ClientError as exc:
        if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
            return False
        raise PromotionError(f"s3://{reg.bucket}/{reg.audit_key(stage, sequence)}: {_reason(exc)}") from None
    return True


def finish_interrupted(
    settings: Settings,
    client: ClientFactory,
    stage: str,
    *,
    root: Path | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> int | None:
    """Complete the stage's last promotion or rollback if it stopped after its commit point.

    Returns the sequence it completed, or None when the trail was whole. Every step is the one the
    interrupted run would have taken, and each gives the same result when applied twice.
    """
    reg = registry(settings, client)
    s3, sagemaker = client("s3"), client("sagemaker")
    head = read_head(s3, reg, stage)
    if head is None or not head.pending or _audit_exists(s3, reg, stage, head.sequence):
        return None
    record = dict(head.pending)
    if record["action"] == gates.PROMOTE:
        _approve(sagemaker, record["package"], stage, record["by"], record["at"])
    files = [f for t in targets(settings, stage, root) if (f := write_promoted(t, record["package"]))]
    record["settings_files"] = [_relative(p, reg.settings) for p in files]
    record["completed_late"] = {"at": clock().isoformat(), "by": _os_user()}
    _write_audit(s3, reg, stage, head.sequence, record)
    return head.sequence


def _approve(sagemaker: Any, package: str, stage: str, who: str, at: str) -> None:
    described = sagemaker.describe_model_package(ModelPackageName=package)
    properties = {**(described.get("CustomerMetadataProperties") or {}), gates.STAGE_KEY: stage}
    sagemaker.update_model_package(
        ModelPackageArn=package,
        ModelApprovalStatus=APPROVED,
        ApprovalDescription=f"promoted to {stage} by {who} at {at}"[:1024],
        CustomerMetadataProperties=properties,
    )


def audit_records(s3: Any, reg: Registry) -> list[dict[str, Any]]:
    """Every audit record of the registry, oldest first within each stage."""
    records = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=reg.bucket, Prefix=f"{PREFIX}/"):
        for item in page.get("Contents", []):
            if item["Key"].endswith(".json") and not item["Key"].endswith("/HEAD.json"):
                records.append(json.loads(s3.get_object(Bucket=reg.bucket, Key=item["Key"])["Body"].read()))
    return sorted(records, key=lambda r: (r.get("stage", ""), r.get("sequence", 0)))


# --- the two actions ---------------------------------------------------------------------------------


def evaluate(
    settings: Settings,
    client: ClientFactory,
    *,
    stage: str,
    package_arn: str | None = None,
    approved_by: str | None = None,
    root: Path | None = None,
) -> tuple[Registry, Decision, Head | None, list[Settings]]:
    """Read everything the gates need and decide; changes nothing."""
    if not settings.stages:
        raise PromotionError(f"no stage order: set mlops:stages in {settings_mod.PROJECT_FILE}")
    if stage not in settings.stages:
        raise PromotionError(f"unknown stage {stage!r}; the stages are {', '.join(settings.stages)}")
    reg = registry(settings, client)
    sagemaker, s3 = client("sagemaker"), client("s3")
    arn = package_arn or latest_candidate(sagemaker, reg.group, settings.stages, stage)
    candidate = describe(sagemaker, arn)
    stage_targets = targets(settings, stage, root)
    head = read_head(s3, reg, stage)
    champion = describe(sagemaker, head.package) if head else None
    compared = None
    if champion is not None and champion.arn != candidate.arn and candidate.group == reg.group:
        try:
            compared = rescore.same_data(settings, s3, sagemaker, candidate, champion)
        except rescore.RescoreError as exc:
            raise PromotionError(str(exc)) from None
    decision = gates.decide(
        candidate,
        champion,
        gates_of(settings, stage_targets),
        decider=project.use_case(settings).decider,
        stages=settings.stages,
        target_stage=stage,
        group=reg.group,
        approved_by=approved_by,
        same_data=compared,
    )
    return reg, decision, head, stage_targets


def promote(
    settings: Settings,
    client: ClientFactory,
    *,
    stage: str,
    package_arn: str | None = None,
    approved_by: str | None = None,
    dry_run: bool = False,
    root: Path | None = None,
    redeploy: Redeploy | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    after_read: Callable[[], None] | None = None,
) -> Outcome:
    """Promote a package of `settings`' registry to `stage`, or refuse (`PromotionRefused`)."""
    if not dry_run:
        finish_interrupted(settings, client, stage, root=root, clock=clock)
    reg, decision, head, stage_targets = evaluate(
        settings, client, stage=stage, package_arn=package_arn, approved_by=approved_by, root=root
    )
    outcome = Outcome(
        "promote", stage, decision.package, decision.champion, decision=decision, dry_run=dry_run
    )
    if dry_run:
        return outcome
    if not decision.approved:
        raise PromotionRefused(decision)
    if after_read is not None:
        after_read()
    who = approved_by or _os_user()
    at = clock().isoformat()
    s3, sagemaker = client("s3"), client("sagemaker")
    entry = {"action": gates.PROMOTE, "package": decision.package, "at": at, "by": who}
    record = _record(outcome, reg, stage_targets, who, at, approved_by)
    outcome.sequence = _write_head(s3, reg, stage, head, entry, record)
    with _after_commit(outcome):
        _approve(sagemaker, decision.package, stage, who, at)
    return _finish(outcome, reg, stage_targets, s3, record, redeploy)


def rollback(
    settings: Settings,
    client: ClientFactory,
    *,
    stage: str | None = None,
    approved_by: str | None = None,
    root: Path | None = None,
    redeploy: Redeploy | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Outcome:
    """Point `stage` (default: the environment's own) back at the package it served before."""
    stage = stage or settings.promotion.stage
    if settings.stages and stage not in settings.stages:
        raise PromotionError(f"unknown stage {stage!r}; the stages are {', '.join(settings.stages)}")
    reg = registry(settings, client)
    s3, sagemaker = client("s3"), client("sagemaker")
    finish_interrupted(settings, client, stage, root=root, clock=clock)
    head = read_head(s3, reg, stage)
    try:
        current, previous = gates.rollback_target(head.history if head else [], stage)
    except ValueError as exc:
        raise PromotionError(f"{exc} (s3://{reg.bucket}/{reg.head_key(stage)})") from None
    back = describe(sagemaker, previous)
    if back.approval != APPROVED:
        raise PromotionError(f"cannot roll {stage} back to {previous}: it is {back.approval}, not Approved")
    stage_targets = targets(settings, stage, root)
    who = approved_by or _os_user()
    at = clock().isoformat()
    entry = {"action": gates.ROLLBACK, "package": previous, "from_package": current, "at": at, "by": who}
    outcome = Outcome("rollback", stage, previous, current)
    record = _record(outcome, reg, stage_targets, who, at, approved_by)
    outcome.sequence = _write_head(s3, reg, stage, head, entry, record)
    return _finish(outcome, reg, stage_targets, s3, record, redeploy)


def _record(
    outcome: Outcome,
    reg: Registry,
    stage_targets: Sequence[Settings],
    who: str,
    at: str,
    approved_by: str | None,
) -> dict[str, Any]:
    """The audit record, as far as it is known before the commit (sequence and files come after)."""
    return {
        "action": outcome.action,
        "stage": outcome.stage,
        "package": outcome.package,
        "previous": outcome.previous,
        "from_stage": outcome.decision.from_stage if outcome.decision else outcome.stage,
        "by": who,
        "approved_by": approved_by,
        "at": at,
        "registry": {"environment": reg.settings.env, "group": reg.group},
        "targets": [t.env for t in stage_targets],
        "decision": outcome.decision.as_dict() if outcome.decision else None,
    }


@contextlib.contextmanager
def _after_commit(outcome: Outcome) -> Iterator[None]:
    """A failure after the commit point: say that the promotion stands and how its trail gets finished."""
    try:
        yield
    except Exception as exc:
        raise PromotionError(
            f"{outcome.action} {outcome.sequence} of stage {outcome.stage} is committed ({outcome.package}) "
            f"but did not finish: {type(exc).__name__}: {exc}. The next `mlops promote` or `mlops rollback` "
            f"of {outcome.stage} completes it"
        ) from exc


def _finish(
    outcome: Outcome,
    reg: Registry,
    stage_targets: Sequence[Settings],
    s3: Any,
    record: dict[str, Any],
    redeploy: Redeploy | None,
) -> Outcome:
    """After the commit point: the settings files, the audit record, the local endpoints."""
    assert outcome.sequence is not None
    with _after_commit(outcome):
        for target in stage_targets:
            if written := write_promoted(target, outcome.package):
                outcome.settings_files.append(written)
        record = {
            **record,
            "sequence": outcome.sequence,
            "settings_files": [_relative(p, reg.settings) for p in outcome.settings_files],
        }
        outcome.audit_key = _write_audit(s3, reg, outcome.stage, outcome.sequence, record)
    if redeploy is not None:
        for target in stage_targets:
            if target.embedded:
                redeploy(target, outcome.package)
                outcome.redeployed.append(target.env)
    return outcome


# --- the registry view --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    version: int
    arn: str
    stage: str
    approval: str
    serving: str
    metrics: dict[str, float]
    execution: str
    promoted: str


def rows(packages: Sequence[Package], records: Sequence[dict[str, Any]], heads: dict[str, str]) -> list[Row]:
    """One row per package: when each was last promoted (audit records) and which stages serve it."""
    promoted: dict[str, list[str]] = {}
    for record in records:
        if record.get("action") == gates.PROMOTE:
            promoted.setdefault(record["package"], []).append(f"{record['stage']} {record['at'][:19]}Z")
    out = []
    for package in sorted(packages, key=lambda p: p.version):
        out.append(
            Row(
                version=package.version,
                arn=package.arn,
                stage=package.stage or "-",
                approval=package.approval,
                serving=", ".join(s for s, arn in sorted(heads.items()) if arn == package.arn) or "-",
                metrics=package.metrics,
                execution=package.lineage.get("execution", "-"),
                promoted="; ".join(promoted.get(package.arn, [])) or "-",
            )
        )
    return out


def list_packages(settings: Settings, client: ClientFactory) -> list[Row]:
    reg = registry(settings, client)
    sagemaker, s3 = client("sagemaker"), client("s3")
    packages = [describe(sagemaker, p["ModelPackageArn"]) for p in package_versions(sagemaker, reg.group)]
    heads = {}
    for stage in settings.stages:
        head = read_head(s3, reg, stage)
        if head is not None:
            heads[stage] = head.package
    return rows(packages, audit_records(s3, reg), heads)


# --- small helpers ----------------------------------------------------------------------------------------


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def _reason(exc: Any) -> str:
    error = getattr(exc, "response", {}).get("Error", {})
    return f"{error.get('Code', type(exc).__name__)}: {error.get('Message', exc)}"


def _relative(path: Path, settings: Settings) -> str:
    try:
        return str(path.relative_to(settings.file.parent.parent))
    except ValueError:
        return str(path)
