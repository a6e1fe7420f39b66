"""A small IAM policy evaluator: does AWS allow this principal this action on this resource?

It follows AWS's evaluation logic for one request, with identity policies and one resource policy:
- a statement applies when its Action (or NotAction) and Resource (or NotResource) match, IAM's
  wildcards included (`*` any run of characters, `/` and `:` included; `?` one character; actions match
  case-insensitively), its Principal matches (resource policies), and every condition holds;
- an applying Deny anywhere wins;
- in the principal's own account, an Allow in an identity policy or a resource policy that names the
  principal itself is enough; a resource policy that names the account (`arn:aws:iam::A:root`) only
  delegates to the account's identity policies;
- a KMS key policy must allow the call, directly or by delegating to the account (then the identity
  policy must allow too): KMS has no other way in;
- across accounts, both an identity policy and the owner's resource policy must allow.

Conditions are evaluated against the request's context keys (`Request.context`). A key the request does
not carry makes a condition false (a conditional Allow does not allow, a conditional Deny does not deny)
unless the operator ends in `IfExists`, as in AWS. An operator this module does not know is an error:
no policy passes because a condition was skipped.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Document = Mapping[str, Any]


class PolicyError(ValueError):
    """A policy uses a form this evaluator does not understand (named with its policy and statement)."""


@dataclass(frozen=True)
class Policy:
    """A policy document with the name a person finds it by (its role, bucket, key or group)."""

    name: str
    document: Document


@dataclass(frozen=True)
class Request:
    principal: str  # the role ARN (arn:aws:iam::<account>:role/<name>)
    action: str  # service:Operation
    resource: str  # the resource's ARN, or "*" for calls IAM cannot scope
    context: Mapping[str, Any] = field(default_factory=dict)  # condition keys (case-insensitive)

    @property
    def account(self) -> str:
        return arn_account(self.principal)


@dataclass(frozen=True)
class Match:
    policy: str
    sid: str
    effect: str

    def __str__(self) -> str:
        return f"{self.policy}#{self.sid or '(no Sid)'}"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str  # why, in words
    allowed_by: tuple[Match, ...] = ()  # the Allow statements that let it
    denied_by: tuple[Match, ...] = ()  # the Deny statements that refuse it
    missing: tuple[str, ...] = ()  # which policy needs an Allow for it


def arn_account(arn: str) -> str:
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 else ""


# ----------------------------------------------------------------------------------------- matching


@functools.lru_cache(maxsize=4096)
def _pattern(value: str, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in value)
    return re.compile(f"^{body}$", re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def wildcard_match(patterns: Any, value: str, *, ignore_case: bool = False) -> bool:
    listed = [patterns] if isinstance(patterns, str) else list(patterns or [])
    return any(_pattern(str(p), ignore_case).match(value) for p in listed)


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return [value] if isinstance(value, (str, int, float, bool)) else list(value)


_STRING_OPS = {
    "StringEquals": lambda pol, got: pol == got,
    "StringEqualsIgnoreCase": lambda pol, got: pol.lower() == got.lower(),
    "StringLike": lambda pol, got: bool(_pattern(pol, False).match(got)),
    "ArnEquals": lambda pol, got: pol == got,
    "ArnLike": lambda pol, got: bool(_pattern(pol, False).match(got)),
    "Bool": lambda pol, got: pol.lower() == got.lower(),
}


def _condition_holds(operator: str, key: str, expected: Any, context: Mapping[str, Any], where: str) -> bool:
    op = operator
    quantifier = ""
    if ":" in op:
        quantifier, op = op.split(":", 1)
        if quantifier not in ("ForAnyValue", "ForAllValues"):
            raise PolicyError(f"{where}: condition operator {operator!r} is not one the ledger evaluates")
    if_exists = op.endswith("IfExists")
    op = op.removesuffix("IfExists")
    lowered = {k.lower(): v for k, v in context.items()}
    if op == "Null":
        present = key.lower() in lowered
        return all(str(v).lower() == ("false" if present else "true") for v in _listed(expected))
    test = _STRING_OPS.get(op)
    if test is None:
        raise PolicyError(f"{where}: condition operator {operator!r} is not one the ledger evaluates")
    if key.lower() not in lowered:
        return if_exists or quantifier == "ForAllValues"  # ForAllValues over no values is true, as in AWS
    got = [str(v) for v in _listed(lowered[key.lower()])]
    wanted = [str(v) for v in _listed(expected)]

    def one(value: str) -> bool:
        return any(test(w, value) for w in wanted)

    if quantifier == "ForAllValues":
        return all(one(v) for v in got)
    return any(one(v) for v in got)


def _conditions_hold(stmt: Mapping[str, Any], context: Mapping[str, Any], where: str) -> bool:
    for operator, keys in (stmt.get("Condition") or {}).items():
        if not isinstance(keys, Mapping):
            raise PolicyError(f"{where}: condition {operator!r} must map keys to values")
        for key, expected in keys.items():
            if not _condition_holds(operator, key, expected, context, where):
                return False
    return True


def _principal_match(stmt: Mapping[str, Any], principal: str, where: str) -> str:
    """'direct' when the statement names the principal (or everyone), 'account' when it names the
    principal's account (a delegation to its identity policies), '' when it does not apply."""
    if "NotPrincipal" in stmt:
        raise PolicyError(f"{where}: NotPrincipal is not one the ledger evaluates")
    value = stmt.get("Principal")
    if value is None:
        raise PolicyError(f"{where}: a resource policy statement needs a Principal")
    if value == "*":
        return "direct"
    if not isinstance(value, Mapping):
        raise PolicyError(f"{where}: Principal must be * or a mapping")
    account = arn_account(principal)
    best = ""
    for entry in _listed(value.get("AWS")):
        entry = str(entry)
        if entry == "*" or entry == principal:
            return "direct"
        if entry in (account, f"arn:aws:iam::{account}:root"):
            best = "account"
    return best


def _applies(stmt: Mapping[str, Any], request: Request, where: str) -> bool:
    if "Action" in stmt:
        acts = wildcard_match(stmt["Action"], request.action, ignore_case=True)
    elif "NotAction" in stmt:
        acts = not wildcard_match(stmt["NotAction"], request.action, ignore_case=True)
    else:
        raise PolicyError(f"{where}: a statement needs Action or NotAction")
    if not acts:
        return False
    if "Resource" in stmt:
        on = wildcard_match(stmt["Resource"], request.resource)
    elif "NotResource" in stmt:
        on = not wildcard_match(stmt["NotResource"], request.resource)
    else:
        raise PolicyError(f"{where}: a statement needs Resource or NotResource")
    return on and _conditions_hold(stmt, request.context, where)


def _statements(policy: Policy) -> list[Mapping[str, Any]]:
    found = policy.document.get("Statement", [])
    return [found] if isinstance(found, Mapping) else list(found)


def _matches(policy: Policy, request: Request, *, resource_policy: bool) -> list[tuple[Match, str]]:
    """The statements of `policy` that apply to `request`, each with how its principal matched."""
    out = []
    for stmt in _statements(policy):
        where = f"{policy.name}#{stmt.get('Sid', '(no Sid)')}"
        how = "direct"
        if resource_policy:
            how = _principal_match(stmt, request.principal, where)
            if not how:
                continue
        elif "Principal" in stmt or "NotPrincipal" in stmt:
            raise PolicyError(f"{where}: an identity policy names no Principal")
        if _applies(stmt, request, where):
            effect = str(stmt.get("Effect", ""))
            if effect not in ("Allow", "Deny"):
                raise PolicyError(f"{where}: Effect must be Allow or Deny, got {effect!r}")
            out.append((Match(policy.name, str(stmt.get("Sid", "")), effect), how))
    return out


# --------------------------------------------------------------------------------------- evaluation


def evaluate(
    request: Request,
    identity: Sequence[Policy],
    resource: Policy | None = None,
    *,
    resource_account: str = "",
    key_policy: bool = False,
) -> Decision:
    """Whether AWS allows `request`.

    `resource` is the resource's own policy (bucket policy, key policy, model package group policy) and
    `resource_account` the account that owns the resource (empty: the principal's). `key_policy` marks a
    KMS key policy, which must allow the call for anyone to use the key."""
    owner = resource_account or request.account
    cross = owner != request.account
    found_identity = [m for policy in identity for m, _ in _matches(policy, request, resource_policy=False)]
    found_resource = _matches(resource, request, resource_policy=True) if resource is not None else []
    denies = tuple(m for m in found_identity if m.effect == "Deny") + tuple(
        m for m, _ in found_resource if m.effect == "Deny"
    )
    if denies:
        return Decision(False, "an explicit Deny applies", denied_by=denies)
    id_allows = tuple(m for m in found_identity if m.effect == "Allow")
    direct = tuple(m for m, how in found_resource if m.effect == "Allow" and how == "direct")
    delegated = tuple(m for m, how in found_resource if m.effect == "Allow" and how == "account")
    identity_names = ", ".join(p.name for p in identity) or "(no identity policy)"
    want = f"an Allow of {request.action} on {request.resource}"
    resource_name = resource.name if resource is not None else "(no resource policy)"

    if cross:
        missing = []
        if not id_allows:
            missing.append(f"identity policy {identity_names}: {want}")
        if not (direct or delegated):
            missing.append(
                f"resource policy {resource_name} of account {owner}: {want} for {request.principal}"
            )
        if missing:
            return Decision(
                False, "a cross-account call needs both policies to allow", missing=tuple(missing)
            )
        return Decision(
            True, "allowed by the identity and the resource policy", id_allows + direct + delegated
        )
    if key_policy:
        if direct:
            return Decision(True, "allowed by the key policy", direct + id_allows)
        if delegated and id_allows:
            return Decision(True, "the key policy delegates to IAM, which allows", id_allows + delegated)
        missing = (f"key policy {resource_name}: {want}",) if not delegated else ()
        if delegated or not id_allows:
            missing += (f"identity policy {identity_names}: {want}",)
        return Decision(False, "the key policy does not let it", missing=missing)
    if id_allows or direct:
        return Decision(True, "allowed", id_allows + direct)
    return Decision(False, "no policy allows it", missing=(f"identity policy {identity_names}: {want}",))
