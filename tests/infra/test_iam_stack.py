"""The roles of the whole program under mocks, read as IAM reads them: what each role may do is computed
from the documents the stack would create, for every shipped environment and for environments that
serve a model."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from infra_fixtures import planned

from mlops_kit import infra_plan
from mlops_kit.infra.plans import iam

ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
SERVING = ("devserving", "prodserving")


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
