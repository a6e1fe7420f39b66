"""The access ledger: every AWS call the kit made, checked against the policies the Pulumi program
generates for the principal that makes it in AWS.

`mlops_kit.iam.record` writes the calls (any process, with the caller's identity); this module reads
them, maps each to the IAM actions and resources it needs (`mlops_kit.iam.actions`), and evaluates each
with the identity policies of its principal and the resource policy of the bucket, key or model package
group it touches (`mlops_kit.iam.policy`), all taken from the stacks' plans (`mlops_kit.iam.generated`).

Who the principal is: credentials from a role (the executor runs a job with the role its request
names, as SageMaker does; the local endpoint with its model's role) are that role; the emulator's own
credentials are the operator, whom the caller names (CI runs `mlops` commands as the environment's
deploy role). Calls from the local stand-ins for what `pulumi up` creates (`STAND_INS`) are listed,
not checked: in AWS the Pulumi program's resources make them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_kit.iam import actions
from mlops_kit.iam.generated import StackPolicies
from mlops_kit.iam.policy import Decision, Policy, Request, arn_account, evaluate

# (file suffix, function or "") -> why its calls are not the kit's in AWS
STAND_INS: dict[tuple[str, str], str] = {
    ("mlops_kit/local_platform.py", ""): "the local platform: in AWS `pulumi up` creates these resources",
    ("mlops_kit/executor/runner.py", "upsert"): "the deployed pipeline: in AWS `pulumi up` creates it",
    ("mlops_kit/features/store.py", "ensure_groups"): "the feature groups: in AWS `pulumi up` creates them",
    (
        "mlops_kit/features/online.py",
        "ensure_table",
    ): "the online store's table: in AWS `pulumi up` makes it (the feature group's online store)",
    (
        "mlops_kit/features/online.py",
        "_existing_table",
    ): "the online store's table: in AWS `pulumi up` makes it (the feature group's online store)",
}


@dataclass(frozen=True)
class Call:
    service: str
    operation: str
    params: Mapping[str, Any]
    caller: str
    site: str
    region: str = "us-east-1"
    process: str = ""

    @property
    def stand_in(self) -> str:
        path, _, rest = self.site.partition(":")
        function = rest.partition(" in ")[2]
        for (suffix, name), why in STAND_INS.items():
            if path.endswith(suffix) and (not name or name == function):
                return why
        return ""


def read(path: Path) -> list[Call]:
    """The calls a ledger file holds (a missing file holds none)."""
    if not path.is_file():
        return []
    out = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            raise ValueError(f"{path}:{number}: not a ledger line") from None
        out.append(
            Call(
                entry["service"],
                entry["operation"],
                entry.get("params") or {},
                entry.get("caller", ""),
                entry.get("site", ""),
                entry.get("region", "us-east-1"),
                entry.get("process", ""),
            )
        )
    return out


def role_of(caller: str) -> str:
    """`arn:aws:sts::A:assumed-role/R/session` -> `arn:aws:iam::A:role/R`; "" for anything else."""
    parts = caller.split(":", 5)
    if len(parts) == 6 and parts[2] == "sts" and parts[5].startswith("assumed-role/"):
        return f"arn:aws:iam::{parts[4]}:role/{parts[5].split('/')[1]}"
    return ""


@dataclass(frozen=True)
class Checked:
    call: Call
    principal: str
    need: actions.Need
    decision: Decision

    @property
    def triple(self) -> tuple[str, str, str]:
        return (self.principal, self.need.action, self.need.resource)

    def explain(self) -> str:
        head = f"{self.call.site}: {self.call.service}:{self.call.operation} as {self.principal}"
        head += f" needs {self.need.action} on {self.need.resource}"
        if self.decision.allowed:
            return f"{head}: allowed by {', '.join(map(str, self.decision.allowed_by))}"
        missing = "; ".join(self.decision.missing) or ", ".join(map(str, self.decision.denied_by))
        return f"{head}: DENIED ({self.decision.reason}): missing {missing}"


@dataclass
class Report:
    checked: list[Checked] = field(default_factory=list)
    stand_ins: list[tuple[Call, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # calls the ledger cannot check (unknown calls)

    @property
    def denied(self) -> list[Checked]:
        return [c for c in self.checked if not c.decision.allowed]

    @property
    def triples(self) -> set[tuple[str, str, str]]:
        return {c.triple for c in self.checked}

    def summary(self) -> str:
        return (
            f"{len(self.triples)} distinct (principal, action, resource) checked from "
            f"{len(self.checked)} needs of {len({id(c.call) for c in self.checked})} calls; "
            f"{len({c.triple for c in self.denied})} denied; {len(self.stand_ins)} stand-in calls not "
            f"checked; {len(self.errors)} calls not understood"
        )


@dataclass(frozen=True)
class Stacks:
    """Every stack's policies, found by what a call touches. Each stack's buckets are encrypted with its
    own key (SSE-KMS, `infra.components.storage`), which the calls' implicit KMS needs name as the plan
    does."""

    stacks: Sequence[StackPolicies]

    def of_role(self, role_arn: str) -> StackPolicies | None:
        return next((s for s in self.stacks if role_arn in s.identity), None)

    def bucket(self, name: str) -> tuple[Policy | None, str]:
        for s in self.stacks:
            if name in s.buckets:
                return s.buckets[name], s.account_id
        return None, ""

    @property
    def bucket_keys(self) -> dict[str, str]:
        return {b: s.key_arn for s in self.stacks if s.key_arn for b in s.buckets}

    @property
    def aliases(self) -> dict[str, str]:
        return {a: s.key_arn for s in self.stacks for a in s.key_context.get("kms:ResourceAliases", [])}

    def key(self, arn: str) -> StackPolicies | None:
        return next((s for s in self.stacks if s.key_arn == arn), None)

    def group(self, name: str, account: str) -> Policy | None:
        for s in self.stacks:
            if s.account_id == account and name in s.groups:
                return s.groups[name]
        return None


def check(calls: Iterable[Call], stacks: Stacks, *, operator: str) -> Report:
    """Evaluate every call; `operator` is the principal of calls made with the emulator's own
    credentials (the one `mlops` commands run as)."""
    report = Report()
    bucket_keys, aliases = stacks.bucket_keys, stacks.aliases
    for call in calls:
        why = call.stand_in
        if why:
            report.stand_ins.append((call, why))
            continue
        principal = role_of(call.caller) or operator
        account = arn_account(principal)
        where = actions.Where(account, call.region, bucket_keys, aliases)
        try:
            needs = actions.needs(call.service, call.operation, call.params, where)
        except (actions.UnknownCall, ValueError) as exc:
            report.errors.append(f"{call.site}: {exc}")
            continue
        for need in needs:
            report.checked.append(Checked(call, principal, need, _decide(principal, need, stacks)))
    return report


def _decide(principal: str, need: actions.Need, stacks: Stacks) -> Decision:
    home = stacks.of_role(principal)
    if home is None:
        return Decision(False, "no stack creates this principal", missing=(f"a role {principal}",))
    identity = home.identity[principal]
    context: dict[str, Any] = {
        "aws:SecureTransport": "true",  # the SDK speaks TLS to AWS
        "aws:PrincipalArn": principal,
        "aws:PrincipalAccount": home.account_id,
        **dict(need.context),
    }
    resource = need.resource
    policy: Policy | None = None
    owner_account = ""
    kind, _, name = need.owner.partition(":")
    if kind == "bucket":
        policy, owner_account = stacks.bucket(name)
    elif kind == "key":
        owner = stacks.key(name)
        if owner is not None:
            policy, owner_account, resource = owner.key, owner.account_id, owner.key_arn
            context.update(owner.key_context)
        else:
            owner_account = arn_account(name)
    elif kind == "group":
        owner_account = arn_account(resource) or home.account_id
        policy = stacks.group(name, owner_account)
    return evaluate(
        Request(principal, need.action, resource, context),
        identity,
        policy,
        resource_account=owner_account,
        key_policy=kind == "key",
    )


def unused_grants(
    report: Report, stack: StackPolicies, roles: Iterable[str]
) -> dict[str, list[tuple[str, str]]]:
    """For each role, the (statement Sid, action) pairs of its Allow statements that no checked call used:
    least privilege read from the ledger. An action pattern counts as used when a call allowed by that
    statement needed an action it matches."""
    from mlops_kit.iam.policy import wildcard_match

    used: dict[str, set[tuple[str, str]]] = {}
    for c in report.checked:
        if not c.decision.allowed:
            continue
        for m in c.decision.allowed_by:
            used.setdefault(c.principal, set()).add((m.policy, m.sid, c.need.action))
    out: dict[str, list[tuple[str, str]]] = {}
    for role in roles:
        unused = []
        for policy in stack.policies_of(role):
            for stmt in policy.document.get("Statement", []):
                if stmt.get("Effect") != "Allow":
                    continue
                sid = str(stmt.get("Sid", ""))
                patterns = stmt.get("Action", [])
                for pattern in [patterns] if isinstance(patterns, str) else patterns:
                    hit = any(
                        p == policy.name and s == sid and wildcard_match(pattern, a, ignore_case=True)
                        for p, s, a in used.get(role, ())
                    )
                    if not hit:
                        unused.append((sid, pattern))
        out[role] = sorted(set(unused))
    return out
