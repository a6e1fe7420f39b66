"""The roles of the whole program under mocks, read as IAM reads them: what each role may do is computed
from the documents the stack would create, for every shipped environment and for environments that
serve a model."""

from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass

import botocore.session
import pytest
from infra_fixtures import ROOT, SHIPPED, planned

from mlops_kit import infra_plan
from mlops_kit import settings as settings_mod
from mlops_kit.infra.plans import iam

ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
SERVING = ("devserving", "prodserving")
EVERY = (*SHIPPED, *SERVING)


@dataclass(frozen=True)
class StackRole:
    name: str
    arn: str
    trust: dict
    documents: tuple[dict, ...]  # its inline policies


def roles(plan: infra_plan.Plan) -> dict[str, StackRole]:
    """Every role the plan declares, by name, with the policies attached to it (children of the role)."""
    out = {}
    for role in plan.of_type(ROLE):
        policies = [r for r in plan.of_type(ROLE_POLICY) if r.parent == role.urn]
        name = role.inputs["name"]
        out[name] = StackRole(
            name=name,
            arn=f"arn:aws:iam::{infra_plan.PLACEHOLDER_ACCOUNT}:role/{name}",
            trust=json.loads(role.inputs["assumeRolePolicy"]),
            documents=tuple(json.loads(p.inputs["policy"]) for p in policies),
        )
    return out


def plan_of(env: str, serving_root: object) -> infra_plan.Plan:
    return planned(env, serving_root) if env in SERVING else planned(env)


def allows(role: StackRole, action: str, resource: str) -> bool:
    # One principal's inline policies are one policy: a Deny in any of them wins.
    statements = [s for doc in role.documents for s in doc["Statement"]]
    return iam.allows({"Statement": statements}, action, resource)


# ---- 1. autoscaling ----------------------------------------------------------------------------------


@pytest.mark.parametrize("env", SERVING)
def test_the_deploy_role_can_put_the_scaling_policy_the_stack_declares(serving_root, env):
    """The alarm names come from the very scaling target the Serving component declares."""
    plan = planned(env, serving_root)
    (policy,) = plan.of_type("aws:appautoscaling/policy:Policy")
    assert policy.inputs["policyType"] == "TargetTrackingScaling"
    prefix = f"arn:aws:cloudwatch:us-east-1:{infra_plan.PLACEHOLDER_ACCOUNT}:alarm:TargetTracking-"
    deploy = roles(plan)[f"mlops-kit-{env}-deploy"]
    for kind in ("AlarmHigh", "AlarmLow"):
        alarm = f"{prefix}{policy.inputs['resourceId']}-{kind}-0f1e2d3c-0000-4000-8000-000000000000"
        for action in ("cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms", "cloudwatch:DeleteAlarms"):
            assert allows(deploy, action, alarm), (action, alarm)
    other = "dev" if env == "prodserving" else "prod"
    foreign = f"{prefix}endpoint/mlops-kit-{other}-endpoint/variant/AllTraffic-AlarmHigh-1"
    assert not allows(deploy, "cloudwatch:PutMetricAlarm", foreign)


# ---- 2c. no role changes its own policies ----------------------------------------------------------


@functools.cache
def role_writes() -> tuple[str, ...]:
    """Every IAM operation that changes what a role may do or who may assume it, from botocore's model:
    iam:Put*/Attach*/Detach*/Delete*/Update*/Tag*/Untag* of a role, and Create*PolicyVersion."""
    names = botocore.session.get_session().get_service_model("iam").operation_names
    verbs = ("Put", "Attach", "Detach", "Delete", "Update", "Tag", "Untag")
    found = {n for n in names if n.startswith(verbs) and "Role" in n}
    found |= {n for n in names if n.startswith("Create") and n.endswith("PolicyVersion")}
    found.add("UpdateAssumeRolePolicy")
    return tuple(sorted(f"iam:{n}" for n in found))


def self_changes(stack_roles: dict[str, StackRole], ci: tuple[str, ...]) -> list[str]:
    """(role, action, target) for every way a role could change itself, or a CI role change another."""
    problems = []
    for role in stack_roles.values():
        targets = {role.name} | (set(ci) if role.name in ci else set())
        for target in sorted(targets & set(stack_roles)):
            for action in role_writes():
                if allows(role, action, stack_roles[target].arn):
                    problems.append(f"{role.name} may {action} on {target}")
    return problems


def ci_roles(env: str) -> tuple[str, ...]:
    return (f"mlops-kit-{env}-deploy", f"mlops-kit-{env}-preview")


def test_role_writes_come_from_botocore():
    writes = role_writes()
    expected = {
        "iam:PutRolePolicy",
        "iam:AttachRolePolicy",
        "iam:UpdateAssumeRolePolicy",
        "iam:CreatePolicyVersion",
        "iam:PutRolePermissionsBoundary",
        "iam:DeleteRolePolicy",
    }
    assert expected <= set(writes)
    assert "iam:GetRole" not in writes


@pytest.mark.parametrize("env", EVERY)
def test_no_role_can_change_its_own_policies_and_ci_cannot_change_ci(serving_root, env):
    stack_roles = roles(plan_of(env, serving_root))
    ci = ci_roles(env)
    assert set(ci) <= set(stack_roles)
    assert self_changes(stack_roles, ci) == []


@pytest.mark.parametrize("env", EVERY)
def test_the_deploy_role_still_manages_every_service_role(serving_root, env):
    """The nearest case the rule accepts: CI keeps managing the roles the services assume."""
    stack_roles = roles(plan_of(env, serving_root))
    deploy = stack_roles[f"mlops-kit-{env}-deploy"]
    service = sorted(set(stack_roles) - set(ci_roles(env)))
    assert service, "the stack declares service roles"
    for name in service:
        for action in ("iam:PutRolePolicy", "iam:UpdateAssumeRolePolicy", "iam:PassRole", "iam:DeleteRole"):
            assert allows(deploy, action, stack_roles[name].arn), (action, name)
        assert allows(deploy, "iam:GetRole", stack_roles[name].arn)
    for name in ci_roles(env):  # the CI roles it may still read, for a diff
        assert allows(deploy, "iam:GetRolePolicy", stack_roles[name].arn)


def test_the_check_catches_a_deploy_role_that_may_change_itself():
    """The policy before this rule: iam writes on role/<prefix>-*, the deploy role included."""
    stack_roles = roles(planned("dev"))
    deploy = stack_roles["mlops-kit-dev-deploy"]
    wide = {
        "Effect": "Allow",
        "Action": ["iam:PutRolePolicy", "iam:UpdateAssumeRolePolicy"],
        "Resource": ["arn:aws:iam::123456789012:role/mlops-kit-dev-*"],
    }
    without_deny = tuple(
        {**d, "Statement": [s for s in d["Statement"] if s["Effect"] == "Allow"] + [wide]}
        for d in deploy.documents
    )
    broken = {**stack_roles, deploy.name: dataclasses.replace(deploy, documents=without_deny)}
    problems = self_changes(broken, ci_roles("dev"))
    assert "mlops-kit-dev-deploy may iam:PutRolePolicy on mlops-kit-dev-deploy" in problems
    assert "mlops-kit-dev-deploy may iam:UpdateAssumeRolePolicy on mlops-kit-dev-preview" in problems
    # the Deny alone holds, even against that wide grant
    with_deny = tuple({**d, "Statement": [*d["Statement"], wide]} for d in deploy.documents)
    kept = {**stack_roles, deploy.name: dataclasses.replace(deploy, documents=with_deny)}
    assert self_changes(kept, ci_roles("dev")) == []


@pytest.mark.parametrize("env", EVERY)
def test_no_role_carries_a_managed_policy_it_could_version(serving_root, env):
    """Create*PolicyVersion only matters for managed policies: the stack attaches none."""
    plan = plan_of(env, serving_root)
    assert plan.of_type("aws:iam/policy:Policy") == []
    assert plan.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment") == []
    assert all(not r.inputs.get("managedPolicyArns") for r in plan.of_type(ROLE))


# ---- 2d. each stack's own state ----------------------------------------------------------------------


def checkpoint(bucket: str, stack: str) -> str:
    return f"arn:aws:s3:::{bucket}/.pulumi/stacks/mlops-kit/{stack}.json"


@pytest.mark.parametrize("env", EVERY)
def test_ci_roles_use_their_own_stacks_state_only(serving_root, env):
    root = serving_root if env in SERVING else ROOT
    bucket = iam.state_backend_bucket(settings_mod.load(env, root).cicd.state_backend)
    stack_roles = roles(plan_of(env, serving_root))
    deploy, preview = (stack_roles[f"mlops-kit-{env}-{kind}"] for kind in ("deploy", "preview"))
    if not bucket:  # no S3 backend (the local environment): no state grant at all
        assert not any(s.get("Sid", "").startswith("State") for d in deploy.documents for s in d["Statement"])
        return
    assert allows(deploy, "s3:PutObject", checkpoint(bucket, env))
    assert allows(preview, "s3:GetObject", checkpoint(bucket, env))
    assert not allows(preview, "s3:PutObject", checkpoint(bucket, env))
    for other in set(EVERY) - {env}:
        assert not allows(deploy, "s3:PutObject", checkpoint(bucket, other)), other
        assert not allows(deploy, "s3:GetObject", checkpoint(bucket, other)), other
        assert not allows(preview, "s3:GetObject", checkpoint(bucket, other)), other
