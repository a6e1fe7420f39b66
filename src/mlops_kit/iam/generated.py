"""The policies one stack's Pulumi program generates, read from its plan (the program under mocks).

Identity policies by role ARN (every `RolePolicy` of a role), and the resource policies the ledger
evaluates with them: each bucket's policy, the data key's policy, the model package group's policy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from mlops_kit.iam.policy import Policy
from mlops_kit.infra_plan import Plan

ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
BUCKET = "aws:s3/bucket:Bucket"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
KEY = "aws:kms/key:Key"
GROUP_POLICY = "aws:sagemaker/modelPackageGroupPolicy:ModelPackageGroupPolicy"


@dataclass(frozen=True)
class StackPolicies:
    env: str
    account_id: str
    region: str
    identity: dict[str, list[Policy]] = field(default_factory=dict)  # role ARN -> its policies
    buckets: dict[str, Policy] = field(default_factory=dict)  # bucket name -> its policy
    key: Policy | None = None  # the environment's data key
    key_arn: str = ""  # its ARN as the plan names it (the identity policies name this one)
    key_context: dict[str, Any] = field(default_factory=dict)  # its aliases and tags, as condition keys
    groups: dict[str, Policy] = field(default_factory=dict)  # model package group name -> its policy

    def role_arn(self, name: str) -> str:
        return f"arn:aws:iam::{self.account_id}:role/{name}"

    def policies_of(self, role_arn: str) -> list[Policy]:
        if role_arn not in self.identity:
            known = ", ".join(sorted(self.identity)) or "none"
            raise LookupError(f"{self.env}: the stack creates no role {role_arn}; it has: {known}")
        return self.identity[role_arn]


def _document(value: Any, where: str) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise ValueError(f"{where}: the policy is not JSON") from None
    if isinstance(value, dict):
        return value
    raise ValueError(f"{where}: no policy document (got {type(value).__name__})")


def from_plan(plan: Plan, account_id: str, region: str) -> StackPolicies:
    """Collect a stack's policies from its plan, for the account the plan ran in."""
    by_urn = {r.urn: r for r in plan.resources}
    out = StackPolicies(plan.env, account_id, region)
    for role in plan.of_type(ROLE):
        out.identity[out.role_arn(role.inputs["name"])] = []
    for policy in plan.of_type(ROLE_POLICY):
        role = by_urn.get(policy.parent)
        if role is None or role.type != ROLE:
            raise ValueError(f"{plan.env}: role policy {policy.name} is not a child of its role")
        name = f"role {role.inputs['name']} / {policy.name}"
        out.identity[out.role_arn(role.inputs["name"])].append(
            Policy(name, _document(policy.inputs.get("policy"), name))
        )
    for policy in plan.of_type(BUCKET_POLICY):
        bucket = by_urn.get(policy.parent)
        if bucket is None or bucket.type != BUCKET:
            raise ValueError(f"{plan.env}: bucket policy {policy.name} is not a child of its bucket")
        name = f"bucket policy of {bucket.inputs['bucket']}"
        out.buckets[bucket.inputs["bucket"]] = Policy(name, _document(policy.inputs.get("policy"), name))
    keys = plan.of_type(KEY)
    if len(keys) > 1:
        raise ValueError(f"{plan.env}: expected one data key, the stack has {len(keys)}")
    key, key_arn = None, ""
    if keys:
        key_arn = f"arn:aws:kms:{region}:{account_id}:key/{keys[0].name}"
        aliases = [a.inputs["name"] for a in plan.of_type("aws:kms/alias:Alias")]
        out.key_context["kms:ResourceAliases"] = aliases
        for tag, value in (keys[0].inputs.get("tags") or {}).items():
            out.key_context[f"aws:ResourceTag/{tag}"] = value
        name = f"key policy of {keys[0].name} ({plan.env})"
        key = Policy(name, _document(keys[0].inputs.get("policy"), name))
    for policy in plan.of_type(GROUP_POLICY):
        group = policy.inputs["modelPackageGroupName"]
        name = f"model package group policy of {group}"
        out.groups[group] = Policy(name, _document(policy.inputs.get("resourcePolicy"), name))
    return StackPolicies(
        out.env, account_id, region, out.identity, out.buckets, key, key_arn, out.key_context, out.groups
    )
