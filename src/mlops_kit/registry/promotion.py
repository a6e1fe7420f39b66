"""Carry out promotions and rollbacks: the registry adapter around the pure gates of `gates.py`.

The registry's pieces each have their module: `packages` (the one writer and reader of model packages),
`ledger` (each stage's HEAD pointer, its conditional writes, the audit trail), `rescore` (champion and
challenger on the same rows), `copying` (a source stage's package copied into a stage's own account) and
`view` (the table of `mlops models list`). This module holds the two actions.

`promote(settings, client, stage=...)` acts on the registry of the environment `settings` describes (its
model package group; its artifacts bucket holds the ledger), with `client` acting in that environment's
account (`mlops_kit.clients.clients_for`). Two kinds:

- into a stage fed by promotion (`mlops:promotion.source` set, and `stage` the environment's own): the
  candidate is a package of the source's registry, read across accounts, checked, copied and registered
  in this environment's own group (`copying`); HEAD, audit and settings file are this environment's.
- otherwise within the registry: the candidate is a package of this registry; the environments serving
  the target stage that take no models from another stage get it written into their settings files.

In order, each step only after the one before succeeded:

  1. read the stage's pointer `s3://<artifacts>/promotions/<stage>/HEAD.json` (its ETag) and the champion
  2. re-score champion and challenger on the candidate's test set when it is recorded (`lineage:test`)
  3. `gates.decide(...)`: refused -> `PromotionRefused`, nothing changed; `dry_run` stops here too
  (by copy: every object the package names is checked readable first, then copied, then registered)
  4. write HEAD with a conditional put (If-Match the ETag read, or If-None-Match * when absent): the
     commit point. A concurrent promotion that wrote first makes this fail: `PromotionConflict`, and the
     loser has changed nothing
  5. the package: Approved, `mlops:stage` in its metadata (the full dict: AWS merges, moto replaces);
     its baseline published where each target's monitor reads it (`s3://<monitoring>/<endpoint>/baseline/`)
  6. the audit record `promotions/<stage>/<sequence>.json`: who, when, from which stage, every check
  7. each target's `environments/Pulumi.<env>.yaml` (one line; an embedded target's local state instead,
     `settings_edit.write_promoted`), and the local endpoint for embedded ones

`rollback` moves the pointer back to the previous package of the stage's history, with the same
conditional write, the baseline of the package rolled back to, an audit record and the same settings
change.

Steps 5-7 come after the commit point, so HEAD carries what they need (`pending`: the audit record to
be). If one of them fails (a network error, a killed process), the promotion stands but its trail is
incomplete; the next promotion or rollback of that stage first finishes it: the package update, the
baseline, the settings files and the audit record, each of which can be applied twice with the same
result.
"""

from __future__ import annotations

import contextlib
import getpass
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops_kit import naming, project
from mlops_kit import settings as settings_mod
from mlops_kit.registry import copying, gates, ledger, metadata, packages, rescore
from mlops_kit.registry.gates import Decision, Package
from mlops_kit.registry.ledger import Head, PromotionConflict, PromotionError, Registry
from mlops_kit.registry.packages import APPROVED
from mlops_kit.registry.settings_edit import write_promoted
from mlops_kit.settings import Settings

ClientFactory = Callable[[str], Any]
# Serves `package_arn` on an embedded environment's local endpoint (the CLI wires serving.local.deploy).
Redeploy = Callable[[Settings, str], Any]

__all__ = ["Outcome", "PromotionConflict", "PromotionError", "PromotionRefused", "promote", "rollback"]


class PromotionRefused(PromotionError):
    """The gates refused the package; nothing was changed."""

    def __init__(self, decision: Decision):
        self.decision = decision
        super().__init__(decision.refusal())


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


def serving(settings: Settings, stage: str, root: Path | None = None) -> list[Settings]:
    """The environments serving `stage` with the same runtime kind as `settings`' own: whose gates apply."""
    root = root or settings.file.parent.parent
    found = []
    for env in settings_mod.environments(root):
        other = settings_mod.load(env, root)
        if other.promotion.stage == stage and other.runtime.kind == settings.runtime.kind:
            found.append(other)
    return found


def targets(settings: Settings, stage: str, root: Path | None = None) -> list[Settings]:
    """The environments whose settings file a promotion of `stage` in `settings`' registry rewrites.

    A stage fed by promotion (`mlops:promotion.source`) serves only its own registry's copies: itself.
    Otherwise, those of `serving` that take their models from no other stage: the ones that do get
    theirs by copy (`mlops promote --env <them>`), never an ARN of another stage's registry.
    """
    if settings.promotion.source:
        return [settings] if stage == settings.promotion.stage else []
    return [other for other in serving(settings, stage, root) if not other.promotion.source]


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
    reg = ledger.registry(settings, client)
    s3, sagemaker = client("s3"), client("sagemaker")
    head = ledger.read_head(s3, reg, stage)
    if head is None or not head.pending or ledger.audit_exists(s3, reg, stage, head.sequence):
        return None
    record = dict(head.pending)
    stage_targets = targets(settings, stage, root)
    if record["action"] == gates.PROMOTE:
        _approve(sagemaker, record["package"], stage, record["by"], record["at"])
    _publish_baselines(s3, sagemaker, record["package"], stage_targets, reg, record.get("kms_key", ""))
    files = [f for t in stage_targets if (f := write_promoted(t, record["package"]))]
    record["settings_files"] = [_relative(p, reg.settings) for p in files]
    record["completed_late"] = {"at": clock().isoformat(), "by": _os_user()}
    ledger.write_audit(s3, reg, stage, head.sequence, record)
    return head.sequence


def _publish_baselines(
    s3: Any, sagemaker: Any, package: str, stage_targets: Sequence[Settings], reg: Registry, kms_key: str = ""
) -> None:
    """The package's baseline where each target's monitor reads it (`copying.publish_baseline`): what
    the stage's deployed monitoring job compares captured traffic against, from the package it serves."""
    if not stage_targets:
        return
    described = sagemaker.describe_model_package(ModelPackageName=package)
    for target in stage_targets:
        copying.publish_baseline(s3, target, target.account_id or reg.account_id, described, kms_key)


def _approve(sagemaker: Any, package: str, stage: str, who: str, at: str) -> None:
    described = sagemaker.describe_model_package(ModelPackageName=package)
    properties = {**(described.get("CustomerMetadataProperties") or {}), gates.STAGE_KEY: stage}
    sagemaker.update_model_package(
        ModelPackageArn=package,
        ModelApprovalStatus=APPROVED,
        ApprovalDescription=f"promoted to {stage} by {who} at {at}"[:1024],
        CustomerMetadataProperties=properties,
    )


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
    reg = ledger.registry(settings, client)
    sagemaker, s3 = client("sagemaker"), client("s3")
    arn = package_arn or packages.latest_in_stage(
        sagemaker, reg.group, gates.previous_stage(settings.stages, stage)
    )
    candidate = _describe(sagemaker, arn)
    stage_targets = targets(settings, stage, root)
    head = ledger.read_head(s3, reg, stage)
    champion = _describe(sagemaker, head.package) if head else None
    decision = _judge(
        settings,
        s3,
        sagemaker,
        candidate,
        champion,
        gates_of(settings, serving(settings, stage, root)),
        stage=stage,
        group=reg.group,
        approved_by=approved_by,
        rescore_champion=champion is not None
        and champion.arn != candidate.arn
        and candidate.group == reg.group,
    )
    return reg, decision, head, stage_targets


def _judge(
    settings: Settings,
    s3: Any,
    sagemaker: Any,
    candidate: Package,
    champion: Package | None,
    promotion: settings_mod.Promotion,
    *,
    stage: str,
    group: str,
    approved_by: str | None,
    rescore_champion: bool,
) -> Decision:
    """The gates' decision on `candidate` against `champion`; with `rescore_champion`, both measured on
    the candidate's test set first (a rescoring that cannot be done refuses the promotion)."""
    compared = None
    if rescore_champion and champion is not None:
        try:
            compared = rescore.same_data(settings, s3, sagemaker, candidate, champion)
        except rescore.RescoreError as exc:
            raise PromotionError(str(exc)) from None
    return gates.decide(
        candidate,
        champion,
        promotion,
        decider=project.use_case(settings).decider,
        stages=settings.stages,
        target_stage=stage,
        group=group,
        approved_by=approved_by,
        same_data=compared,
    )


def promote(
    settings: Settings,
    client: ClientFactory,
    *,
    stage: str | None = None,
    package_arn: str | None = None,
    approved_by: str | None = None,
    dry_run: bool = False,
    root: Path | None = None,
    redeploy: Redeploy | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    after_read: Callable[[], None] | None = None,
) -> Outcome:
    """Promote a package to `stage` (default: the one `settings` serves), or refuse (`PromotionRefused`).

    Into a stage fed by promotion (`mlops:promotion.source`): P is a package of the source's registry,
    copied into this environment's (`copying`). Otherwise P is a package of `settings`' own registry.
    """
    stage = stage or settings.promotion.stage
    if settings.promotion.source and stage == settings.promotion.stage:
        return _promote_by_copy(
            settings,
            client,
            package_arn=package_arn,
            approved_by=approved_by,
            dry_run=dry_run,
            root=root,
            redeploy=redeploy,
            clock=clock,
            after_read=after_read,
        )
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
    outcome.sequence = ledger.write_head(s3, reg, stage, head, entry, record)
    with _after_commit(outcome):
        _approve(sagemaker, decision.package, stage, who, at)
        _publish_baselines(s3, sagemaker, decision.package, stage_targets, reg)
    return _finish(outcome, reg, stage_targets, s3, record, redeploy)


def source_of(settings: Settings, reg: Registry, root: Path | None = None) -> copying.Source:
    """The stage `settings`' promotions copy from; unpinned accounts mean the caller's (one account)."""
    source = settings_mod.load(settings.promotion.source, root or settings.file.parent.parent)
    return copying.Source(source, source.account_id or reg.account_id)


def source_reads(
    settings: Settings, client: ClientFactory, package_arn: str, root: Path | None = None
) -> list[tuple[str, str]]:
    """Every (IAM action, resource ARN) a promotion of `package_arn` into `settings`' stage makes on the
    source stage's resources, acting as `settings`' promotion principal (`copying.reads`)."""
    reg = ledger.registry(settings, client)
    source = source_of(settings, reg, root)
    described = client("sagemaker").describe_model_package(ModelPackageName=package_arn)
    test_set = Package.from_description(described).lineage.get(copying.TEST_SET, "")
    return copying.reads(source, package_arn, copying.source_objects(described), test_set)


def _promote_by_copy(
    settings: Settings,
    client: ClientFactory,
    *,
    package_arn: str | None,
    approved_by: str | None,
    dry_run: bool,
    root: Path | None,
    redeploy: Redeploy | None,
    clock: Callable[[], datetime],
    after_read: Callable[[], None] | None,
) -> Outcome:
    """Promote package P of the source stage into `settings`' own: read, check, copy, register, commit."""
    stage = settings.promotion.stage
    if not dry_run:
        finish_interrupted(settings, client, stage, root=root, clock=clock)
    reg = ledger.registry(settings, client)
    source = source_of(settings, reg, root)
    sagemaker, s3 = client("sagemaker"), client("s3")
    principal = getattr(client, "principal", "") or f"{settings.env}'s promotion principal"
    try:
        arn = package_arn or packages.latest_in_stage(
            sagemaker, source.group_arn, gates.previous_stage(settings.stages, stage)
        )
        described = sagemaker.describe_model_package(ModelPackageName=arn)
    except (packages.RegistryError, sagemaker.exceptions.ClientError) as exc:
        if getattr(exc, "code", "") in _DENIED or copying.denied(exc):
            raise PromotionError(
                f"no grant: {principal} may not read the model packages of {source.group_arn} "
                "(sagemaker:ListModelPackages, sagemaker:DescribeModelPackage in its group policy); "
                "nothing was written"
            ) from None
        raise PromotionError(
            f"{source.settings.env}'s registry: {packages.reason(exc) if hasattr(exc, 'response') else exc}"
        ) from None
    objects = copying.source_objects(described)
    copying.check_readable(s3, principal, arn, objects)
    candidate = Package.from_description(described)
    test_set = candidate.lineage.get(copying.TEST_SET, "")
    parts = copying.test_set_parts(s3, principal, arn, test_set) if test_set else []
    head = ledger.read_head(s3, reg, stage)
    champion = _describe(sagemaker, head.package) if head else None
    done = champion is not None and champion.lineage.get(metadata.SOURCE) == candidate.arn
    if done and head is not None:  # a retry of a promotion that committed: judge it against what it replaced
        earlier = [h["package"] for h in head.history[:-1] if h["package"] != head.package]
        champion = _describe(sagemaker, earlier[-1]) if earlier else None
    decision = _judge(  # both measured on the candidate's test set, read from the source
        settings,
        s3,
        sagemaker,
        candidate,
        champion,
        settings.promotion,
        stage=stage,
        group=naming.model_package_group(source.settings),
        approved_by=approved_by,
        rescore_champion=True,
    )
    previous = head.package if head and not done else (champion.arn if champion else None)
    outcome = Outcome("promote", stage, arn, previous, decision=decision, dry_run=dry_run)
    if dry_run:
        return outcome
    if not decision.approved:
        raise PromotionRefused(decision)
    if done and head is not None:
        outcome.package, outcome.sequence = head.package, head.sequence
        outcome.audit_key = reg.audit_key(stage, head.sequence)
        return outcome
    if after_read is not None:
        after_read()
    kms_key = copying.key_arn(client("kms"), settings)
    copies = {role: copying.destination(reg, source.settings, arn, role) for role in objects}
    copying.copy_objects(s3, kms_key, objects, copies)
    if test_set:
        copies[copying.TEST_SET] = copying.destination(reg, source.settings, arn, copying.TEST_SET)
        copying.copy_test_set(s3, kms_key, test_set, parts, copies[copying.TEST_SET])
    outcome.package = copying.register_copy(sagemaker, reg, source, described, copies)
    who = approved_by or _os_user()
    at = clock().isoformat()
    entry = {"action": gates.PROMOTE, "package": outcome.package, "source_package": arn, "at": at, "by": who}
    record = {
        **_record(outcome, reg, [settings], who, at, approved_by),
        "source": {"environment": source.settings.env, "account": source.account_id, "package": arn},
        "copies": copies,
        "kms_key": kms_key,
    }
    outcome.sequence = ledger.write_head(s3, reg, stage, head, entry, record)
    with _after_commit(outcome):
        _approve(sagemaker, outcome.package, stage, who, at)
        _publish_baselines(s3, sagemaker, outcome.package, [settings], reg, kms_key)
    return _finish(outcome, reg, [settings], s3, record, redeploy)


_DENIED = ("AccessDenied", "AccessDeniedException")


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
    reg = ledger.registry(settings, client)
    s3, sagemaker = client("s3"), client("sagemaker")
    finish_interrupted(settings, client, stage, root=root, clock=clock)
    head = ledger.read_head(s3, reg, stage)
    try:
        current, previous = gates.rollback_target(head.history if head else [], stage)
    except ValueError as exc:
        raise PromotionError(f"{exc} (s3://{reg.bucket}/{reg.head_key(stage)})") from None
    back = _describe(sagemaker, previous)
    if back.approval != APPROVED:
        raise PromotionError(f"cannot roll {stage} back to {previous}: it is {back.approval}, not Approved")
    stage_targets = targets(settings, stage, root)
    who = approved_by or _os_user()
    at = clock().isoformat()
    entry = {"action": gates.ROLLBACK, "package": previous, "from_package": current, "at": at, "by": who}
    outcome = Outcome("rollback", stage, previous, current)
    record = _record(outcome, reg, stage_targets, who, at, approved_by)
    outcome.sequence = ledger.write_head(s3, reg, stage, head, entry, record)
    with _after_commit(outcome):
        _publish_baselines(s3, sagemaker, previous, stage_targets, reg)
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
        outcome.audit_key = ledger.write_audit(s3, reg, outcome.stage, outcome.sequence, record)
    if redeploy is not None:
        for target in stage_targets:
            if target.embedded:
                redeploy(target, outcome.package)
                outcome.redeployed.append(target.env)
    return outcome


# --- small helpers ----------------------------------------------------------------------------------------


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def _describe(sagemaker: Any, arn: str) -> Package:
    try:
        return packages.describe(sagemaker, arn)
    except packages.RegistryError as exc:
        raise PromotionError(str(exc)) from None


def _relative(path: Path, settings: Settings) -> str:
    try:
        return str(path.relative_to(settings.file.parent.parent))
    except ValueError:
        return str(path)
