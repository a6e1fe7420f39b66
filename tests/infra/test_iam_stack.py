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
from infra_fixtures import PROJECT as ROOT
from infra_fixtures import SHIPPED, planned

from mlops_kit import infra_plan
from mlops_kit import settings as settings_mod
from mlops_kit.infra.plans import iam, stages

ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
PROJECT = settings_mod.load("dev", ROOT).project  # the project the kit's suite plans (tests/project)
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
            arn=f"arn:aws:iam::{account_of(plan)}:role/{name}",
            trust=json.loads(role.inputs["assumeRolePolicy"]),
            documents=tuple(json.loads(p.inputs["policy"]) for p in policies),
        )
    return out


def account_of(plan: infra_plan.Plan) -> str:
    """The account the plan ran in: its settings' (aws:allowedAccountIds), else the placeholder."""
    return str(plan.outputs.get("account_id") or infra_plan.PLACEHOLDER_ACCOUNT)


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
    prefix = f"arn:aws:cloudwatch:us-east-1:{account_of(plan)}:alarm:TargetTracking-"
    deploy = roles(plan)[f"{PROJECT}-{env}-deploy"]
    for kind in ("AlarmHigh", "AlarmLow"):
        alarm = f"{prefix}{policy.inputs['resourceId']}-{kind}-0f1e2d3c-0000-4000-8000-000000000000"
        for action in ("cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms", "cloudwatch:DeleteAlarms"):
            assert allows(deploy, action, alarm), (action, alarm)
    other = "dev" if env == "prodserving" else "prod"
    foreign = f"{prefix}endpoint/{PROJECT}-{other}-endpoint/variant/AllTraffic-AlarmHigh-1"
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
    return (f"{PROJECT}-{env}-deploy", f"{PROJECT}-{env}-preview")


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
    deploy = stack_roles[f"{PROJECT}-{env}-deploy"]
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
    deploy = stack_roles[f"{PROJECT}-dev-deploy"]
    wide = {
        "Effect": "Allow",
        "Action": ["iam:PutRolePolicy", "iam:UpdateAssumeRolePolicy"],
        "Resource": [f"arn:aws:iam::{account_of(planned('dev'))}:role/{PROJECT}-dev-*"],
    }
    without_deny = tuple(
        {**d, "Statement": [s for s in d["Statement"] if s["Effect"] == "Allow"] + [wide]}
        for d in deploy.documents
    )
    broken = {**stack_roles, deploy.name: dataclasses.replace(deploy, documents=without_deny)}
    problems = self_changes(broken, ci_roles("dev"))
    assert f"{PROJECT}-dev-deploy may iam:PutRolePolicy on {PROJECT}-dev-deploy" in problems
    assert f"{PROJECT}-dev-deploy may iam:UpdateAssumeRolePolicy on {PROJECT}-dev-preview" in problems
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
    return f"arn:aws:s3:::{bucket}/.pulumi/stacks/{PROJECT}/{stack}.json"


@pytest.mark.parametrize("env", EVERY)
def test_ci_roles_use_their_own_stacks_state_only(serving_root, env):
    root = serving_root if env in SERVING else ROOT
    bucket = iam.state_backend_bucket(settings_mod.load(env, root).cicd.state_backend)
    stack_roles = roles(plan_of(env, serving_root))
    deploy, preview = (stack_roles[f"{PROJECT}-{env}-{kind}"] for kind in ("deploy", "preview"))
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


# ---- 3. each role: the actions listed for it, on its own environment's resources ---------------------

LOGS = {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"}
PULLS = {
    "ecr:GetAuthorizationToken",
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
    "ecr:BatchCheckLayerAvailability",
}
# A new grant to a role means a new line here: added knowingly, or a test fails.
ACTIONS = {
    "sagemaker": LOGS
    | PULLS
    | {
        "s3:ListBucket",
        "s3:GetBucketLocation",
        "s3:GetBucketAcl",
        "s3:GetObject",
        "s3:PutObject",
        "s3:AbortMultipartUpload",
        "kms:Decrypt",
        "kms:Encrypt",
        "kms:GenerateDataKey",
        "kms:GenerateDataKeyWithoutPlaintext",
        "kms:DescribeKey",
        "kms:CreateGrant",
        "sagemaker:CreateProcessingJob",
        "sagemaker:DescribeProcessingJob",
        "sagemaker:StopProcessingJob",
        "sagemaker:CreateTrainingJob",
        "sagemaker:DescribeTrainingJob",
        "sagemaker:StopTrainingJob",
        "sagemaker:CreateHyperParameterTuningJob",
        "sagemaker:DescribeHyperParameterTuningJob",
        "sagemaker:StopHyperParameterTuningJob",
        "sagemaker:AddTags",
        "sagemaker:CreateModelPackage",
        "sagemaker:DescribeModelPackage",
        "sagemaker:DescribeModelPackageGroup",
        "sagemaker:ListModelPackages",
        "sagemaker:PutRecord",
        "sagemaker:GetRecord",
        "sagemaker:BatchGetRecord",
        "sagemaker:DeleteRecord",
        "sagemaker:DescribeFeatureGroup",
        "glue:GetDatabase",
        "glue:GetTable",
        "glue:CreateTable",
        "glue:UpdateTable",
        "glue:GetPartitions",
        "glue:BatchCreatePartition",
        "iam:PassRole",
    },
    "serving": LOGS
    | PULLS
    | {
        "s3:GetObject",
        "s3:PutObject",
        "kms:Decrypt",
        "kms:GenerateDataKey",
        "cloudwatch:PutMetricData",
        "cloudwatch:DescribeAlarms",
    },
    "monitoring": LOGS
    | PULLS
    | {
        "s3:ListBucket",
        "s3:GetObject",
        "s3:PutObject",
        "s3:AbortMultipartUpload",
        "kms:Decrypt",
        "kms:Encrypt",
        "kms:GenerateDataKey",
        "kms:DescribeKey",
        "kms:CreateGrant",
        "sagemaker:CreateProcessingJob",
        "sagemaker:DescribeProcessingJob",
        "sagemaker:StopProcessingJob",
        "sagemaker:AddTags",
        "cloudwatch:PutMetricData",
        "iam:PassRole",
    },
    "monitoring-invoker": {"sagemaker:StartPipelineExecution"},
    "retrain-scheduler": {"sagemaker:StartPipelineExecution"},
    "deploy": {
        "s3:*",
        "kms:ListAliases",
        "kms:ListKeys",
        "kms:*",
        "kms:CreateAlias",
        "kms:DeleteAlias",
        "kms:UpdateAlias",
        "ecr:CreateRepository",
        "ecr:DescribeRepositories",
        "ecr:DeleteRepository",
        "ecr:PutLifecyclePolicy",
        "ecr:GetLifecyclePolicy",
        "ecr:DeleteLifecyclePolicy",
        "ecr:TagResource",
        "ecr:UntagResource",
        "ecr:ListTagsForResource",
        "ecr:PutImageScanningConfiguration",
        "ecr:PutImageTagMutability",
        "ecr:InitiateLayerUpload",
        "ecr:UploadLayerPart",
        "ecr:CompleteLayerUpload",
        "ecr:PutImage",
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
        "ecr:DescribeImages",
        "ecr:BatchDeleteImage",
        "ecr:GetAuthorizationToken",
        "sagemaker:*",
        "sagemaker:List*",
        "sagemaker:Search",
        "iam:GetRole",
        "iam:GetRolePolicy",
        "iam:ListRolePolicies",
        "iam:ListAttachedRolePolicies",
        "iam:ListInstanceProfilesForRole",
        "iam:CreateRole",
        "iam:DeleteRole",
        "iam:UpdateRole",
        "iam:UpdateAssumeRolePolicy",
        "iam:TagRole",
        "iam:UntagRole",
        "iam:PutRolePolicy",
        "iam:DeleteRolePolicy",
        "iam:PassRole",
        "glue:*",
        "events:*",
        "scheduler:*",
        "sns:*",
        "cloudwatch:*",
        "cloudwatch:PutMetricAlarm",
        "cloudwatch:DeleteAlarms",
        "cloudwatch:DescribeAlarms",
        "cloudwatch:ListTagsForResource",
        "application-autoscaling:RegisterScalableTarget",
        "application-autoscaling:DeregisterScalableTarget",
        "application-autoscaling:DescribeScalableTargets",
        "application-autoscaling:PutScalingPolicy",
        "application-autoscaling:DeleteScalingPolicy",
        "application-autoscaling:DescribeScalingPolicies",
        "application-autoscaling:TagResource",
        "application-autoscaling:ListTagsForResource",
        "iam:CreateServiceLinkedRole",
    },
    "preview": {
        "ecr:Describe*",
        "ecr:List*",
        "ecr:Get*",
        "ecr:GetAuthorizationToken",
        "s3:GetBucket*",
        "s3:GetEncryptionConfiguration",
        "s3:GetLifecycleConfiguration",
        "sagemaker:Describe*",
        "sagemaker:List*",
        "sagemaker:GetModelPackageGroupPolicy",
        "kms:DescribeKey",
        "kms:GetKeyPolicy",
        "kms:GetKeyRotationStatus",
        "kms:ListAliases",
        "kms:ListResourceTags",
        "iam:GetRole",
        "iam:GetRolePolicy",
        "iam:ListRolePolicies",
        "iam:ListAttachedRolePolicies",
        "iam:GetOpenIDConnectProvider",
        "glue:GetDatabase",
        "glue:GetTable",
        "glue:GetTags",
        "events:DescribeRule",
        "events:ListTargetsByRule",
        "events:ListTagsForResource",
        "scheduler:GetSchedule",
        "scheduler:ListTagsForResource",
        "sns:GetTopicAttributes",
        "sns:GetSubscriptionAttributes",
        "sns:ListTagsForResource",
        "sns:ListSubscriptionsByTopic",
        "cloudwatch:DescribeAlarms",
        "cloudwatch:GetDashboard",
        "cloudwatch:ListTagsForResource",
        "application-autoscaling:DescribeScalableTargets",
        "application-autoscaling:DescribeScalingPolicies",
        "application-autoscaling:ListTagsForResource",
    },
}
# What the settings add: a GitHub OIDC provider the stack owns; state in S3 with a KMS secrets provider.
OIDC_PROVIDER = {
    "iam:CreateOpenIDConnectProvider",
    "iam:DeleteOpenIDConnectProvider",
    "iam:GetOpenIDConnectProvider",
    "iam:TagOpenIDConnectProvider",
    "iam:UpdateOpenIDConnectProviderThumbprint",
    "iam:AddClientIDToOpenIDConnectProvider",
}
STATE = {
    "deploy": {"s3:ListBucket", "s3:GetBucketLocation", "s3:GetObject", "s3:PutObject", "s3:DeleteObject"},
    "preview": {"s3:ListBucket", "s3:GetBucketLocation", "s3:GetObject", "s3:PutObject", "s3:DeleteObject"},
}
STATE_KEY = {"kms:Decrypt", "kms:GenerateDataKey"}
# A stage that copies its models from another reads that stage's packages, their files, their test sets
# (listed by prefix) and its key (`plans.stages.promotion_read_policy`; tests/infra/test_cross_stage.py
# checks them against both sides on a recorded promotion)
PROMOTION_SIDS = ("SourcePackages", "SourceFiles", "SourceTestSets", "ListSourceTestSets", "SourceKey")
PROMOTION_READS = {
    "sagemaker:DescribeModelPackage",
    "sagemaker:ListModelPackages",
    "s3:GetObject",
    "s3:ListBucket",
    "kms:Decrypt",
}


def kind(env: str, role: str) -> str:
    return role.removeprefix(f"{PROJECT}-{env}-")


def granted(role: StackRole) -> set[str]:
    return {a for d in role.documents for s in d["Statement"] if s["Effect"] == "Allow" for a in s["Action"]}


def expected_actions(env: str, role: str, settings: settings_mod.Settings) -> set[str]:
    what = kind(env, role)
    out = set(ACTIONS[what])
    if what == "deploy" and not settings.cicd.oidc_provider_arn:
        out |= OIDC_PROVIDER
    if what == "deploy" and settings.promotion.source and not settings.embedded:
        out |= PROMOTION_READS
    if what in STATE and iam.state_backend_bucket(settings.cicd.state_backend):
        out |= STATE[what]
        if iam.secrets_key_alias(settings.cicd.secrets_provider):
            out |= STATE_KEY
    return out


@pytest.mark.parametrize("env", EVERY)
def test_each_role_has_the_actions_listed_for_it(serving_root, env):
    settings = settings_mod.load(env, serving_root if env in SERVING else ROOT)
    stack_roles = roles(plan_of(env, serving_root))
    expected_roles = {"sagemaker", "monitoring", "monitoring-invoker", "deploy", "preview"}
    expected_roles |= {"serving"} if settings.serving.model_package_arn else set()
    expected_roles |= {"retrain-scheduler"} if settings.training.retrain_schedule else set()
    assert {kind(env, r) for r in stack_roles} == expected_roles
    for name, role in stack_roles.items():
        assert granted(role) == expected_actions(env, name, settings), name


def test_the_listed_actions_catch_a_new_grant(serving_root):
    stack_roles = roles(planned("prodserving", serving_root))
    settings = settings_mod.load("prodserving", serving_root)
    endpoint = stack_roles[f"{PROJECT}-prodserving-serving"]
    extra = {"Effect": "Allow", "Action": ["s3:DeleteObject"], "Resource": ["arn:aws:s3:::x/*"]}
    wider = dataclasses.replace(
        endpoint,
        documents=({**endpoint.documents[0], "Statement": [*endpoint.documents[0]["Statement"], extra]},),
    )
    assert granted(wider) != expected_actions("prodserving", wider.name, settings)


@pytest.mark.parametrize("env", SERVING)
def test_the_endpoint_and_the_monitor_run_with_their_own_roles(serving_root, env):
    """The endpoint's model, the monitoring pipeline's job and the training pipeline each name their role."""
    plan = planned(env, serving_root)
    arn = f"arn:aws:iam::{account_of(plan)}:role/{PROJECT}-{env}-"
    (model,) = plan.of_type("aws:sagemaker/model:Model")
    assert model.inputs["executionRoleArn"] == arn + "serving"
    pipelines = {p.name: p.inputs for p in plan.of_type("aws:sagemaker/pipeline:Pipeline")}
    monitor = pipelines[f"{PROJECT}-{env}-monitoring-pipeline"]
    assert monitor["roleArn"] == arn + "monitoring"
    (step,) = json.loads(monitor["pipelineDefinition"])["Steps"]
    assert step["Arguments"]["RoleArn"] == arn + "monitoring"
    training = pipelines[f"{PROJECT}-{env}-training-pipeline"]
    assert training["roleArn"] == arn + "sagemaker"
    assert {s["Arguments"].get("RoleArn") for s in json.loads(training["pipelineDefinition"])["Steps"]} <= {
        arn + "sagemaker",
        None,  # condition and fail steps run no job
    }
    native = plan.of_type("aws:sagemaker/dataQualityJobDefinition:DataQualityJobDefinition")
    assert [j.inputs["roleArn"] for j in native] == ([arn + "monitoring"] if env == "prodserving" else [])


@pytest.mark.parametrize("env", SERVING)
def test_the_endpoint_role_reads_what_the_training_pipeline_writes(serving_root, env):
    """Its model-artifact grant and the pipeline's output path come from two places: they must agree."""
    plan = planned(env, serving_root)
    definition = json.loads(
        plan.one("aws:sagemaker/pipeline:Pipeline", f"{PROJECT}-{env}-training-pipeline").inputs[
            "pipelineDefinition"
        ]
    )
    (train,) = [s for s in definition["Steps"] if s["Type"] == "Training"]
    values = train["Arguments"]["OutputDataConfig"]["S3OutputPath"]["Std:Join"]["Values"]
    model = "/".join([values[0], "exec-1", "Train", "output", "model.tar.gz"]).replace(
        "s3://", "arn:aws:s3:::"
    )
    endpoint = roles(plan)[f"{PROJECT}-{env}-serving"]
    assert allows(endpoint, "s3:GetObject", model), model
    assert not allows(endpoint, "s3:PutObject", model)


def foreign_arns(other: str) -> list[str]:
    """A sample of another environment's resources, the kinds any role here names."""
    p, account = f"{PROJECT}-{other}", infra_plan.PLACEHOLDER_ACCOUNT
    sm, region = f"arn:aws:sagemaker:us-east-1:{account}:", f"us-east-1:{account}"
    out = [
        f"arn:aws:s3:::{p}-{b}-{account}" for b in ("raw", "features", "artifacts", "capture", "monitoring")
    ]
    out += [f"{a}/some/key" for a in list(out)]
    out += [
        f"arn:aws:iam::{account}:role/{p}-{r}"
        for r in (
            "sagemaker",
            "serving",
            "monitoring",
            "monitoring-invoker",
            "retrain-scheduler",
            "deploy",
            "preview",
        )
    ]
    out += [
        sm + f"endpoint/{p}-endpoint",
        sm + f"endpoint-config/{p}-serving-config-1a2b3c",
        sm + f"pipeline/{p}-training",
        sm + f"pipeline/{p}-monitoring",
        sm + f"model-package-group/{p}-models",
        sm + f"model-package/{p}-models/1",
        sm + f"feature-group/{p}-transactions",
        f"arn:aws:ecr:{region}:repository/{p}-runtime",
        f"arn:aws:cloudwatch:{region}:alarm:{p}-drift",
        f"arn:aws:cloudwatch:{region}:alarm:{p}-endpoint-5xx",
        f"arn:aws:cloudwatch:{region}:alarm:TargetTracking-endpoint/{p}-endpoint/variant/AllTraffic-AlarmHigh-1",
        f"arn:aws:cloudwatch::{account}:dashboard/{p}-dashboard",
        f"arn:aws:logs:{region}:log-group:/aws/sagemaker/Endpoints/{p}-endpoint:log-stream:x",
        f"arn:aws:glue:{region}:database/mlops_kit_{other}_features",
        f"arn:aws:glue:{region}:table/mlops_kit_{other}_features/transactions",
        f"arn:aws:events:{region}:rule/{p}-retrain-on-drift",
        f"arn:aws:scheduler:{region}:schedule/default/{p}-monitoring",
        f"arn:aws:sns:{region}:{p}-alarms",
    ]
    state = f"arn:aws:s3:::{PROJECT}-pulumi-state-{account}/.pulumi/"
    out += [
        state + f"stacks/{PROJECT}/{other}.json",
        state + f"history/{PROJECT}/{other}/{other}-1.history.json",
        state + f"locks/organization/{PROJECT}/{other}/1.json",
    ]
    return out


SCOPED_BY_CONDITION = ("aws:ResourceTag/environment", "kms:ResourceAliases")


def names_foreign(role: StackRole, foreign: list[str]) -> list[str]:
    """(statement, foreign ARN) for every resource a role's Allow statements could reach in another
    environment. `*` statements are the listed unscopable actions; a condition on the environment's tag
    or the state key's alias scopes the rest."""
    problems = []
    for doc in role.documents:
        for stmt in doc["Statement"]:
            condition = json.dumps(stmt.get("Condition", {}))
            if stmt["Effect"] != "Allow" or stmt["Resource"] == ["*"]:
                continue
            if any(key in condition for key in SCOPED_BY_CONDITION):
                continue
            probe = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": stmt["Resource"]}]}
            problems += [
                f"{stmt.get('Sid')}: {arn}" for arn in foreign if iam.allows(probe, "any:Action", arn)
            ]
    return problems


@pytest.mark.parametrize("env", EVERY)
def test_no_role_names_another_environments_resources(serving_root, env):
    """No grant on another environment's resources; the one exception is the deploy role's reads of the
    stage it copies its models from (`plans.stages`), which name that environment and no other."""
    root = serving_root if env in SERVING else ROOT
    every = [settings_mod.load(e, root) for e in settings_mod.environments(root)]
    source = stages.source_environment(settings_mod.load(env, root), every)
    stack_roles = roles(plan_of(env, serving_root))
    others = [o for o in EVERY if o != env]
    for role in stack_roles.values():
        reads = [s for d in role.documents for s in d["Statement"] if s.get("Sid") in PROMOTION_SIDS]
        assert not reads or (role.name.endswith("-deploy") and source is not None), role.name
        rest = tuple(
            {**d, "Statement": [s for s in d["Statement"] if s.get("Sid") not in PROMOTION_SIDS]}
            for d in role.documents
        )
        checked = dataclasses.replace(role, documents=rest)
        foreign = [arn for other in others for arn in foreign_arns(other)]
        assert names_foreign(checked, foreign) == [], role.name
        text, read_text = json.dumps(rest), json.dumps(reads)
        for other in others:
            assert f"{PROJECT}-{other}-" not in text and f"mlops_kit_{other}_" not in text, (role.name, other)
            if source is None or other != source.env:
                assert f"{PROJECT}-{other}-" not in read_text, (role.name, other)
        if reads:
            assert f"{PROJECT}-{source.env}-" in read_text, role.name


def test_the_foreign_check_catches_a_grant_on_another_environment():
    stack_roles = roles(planned("dev"))
    jobs = stack_roles[f"{PROJECT}-dev-sagemaker"]
    wide = {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": [f"arn:aws:s3:::{PROJECT}-*/*"]}
    doc = {**jobs.documents[0], "Statement": [*jobs.documents[0]["Statement"], wide]}
    assert names_foreign(dataclasses.replace(jobs, documents=(doc,)), foreign_arns("prod"))
    assert names_foreign(jobs, foreign_arns("prod")) == []  # the nearest case: its own grants
