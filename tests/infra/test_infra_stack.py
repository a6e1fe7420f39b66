"""The whole program under mocks, for every shipped environment: the full resource set, the security
rules holding, and environments that differ only through their settings."""

from __future__ import annotations

import json

import pytest
from infra_fixtures import APPROVED, SHIPPED, load, make_root, planned, with_changes

from infra.policy import validators
from mlops_kit import infra_plan, naming

CORE = {
    "aws:kms/key:Key": 1,
    "aws:s3/bucket:Bucket": 5,
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": 5,
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": 5,
    "aws:s3/bucketPolicy:BucketPolicy": 5,
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": 5,
    "aws:sagemaker/featureGroup:FeatureGroup": 2,
    "aws:sagemaker/pipeline:Pipeline": 2,
    "aws:sagemaker/modelPackageGroup:ModelPackageGroup": 1,
    "aws:sns/topic:Topic": 1,
    "aws:cloudwatch/dashboard:Dashboard": 1,
    "aws:iam/role:Role": 4,  # execution, monitoring invoker, deploy, preview
}


def stack_resources(plan: infra_plan.Plan) -> list[validators.StackResource]:
    names = {r.urn: r.name for r in plan.resources}
    return [validators.StackResource(r.type, r.name, r.inputs, names.get(r.parent, "")) for r in plan.custom]


def counts(plan: infra_plan.Plan) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in plan.custom:
        out[r.type] = out.get(r.type, 0) + 1
    return out


@pytest.mark.parametrize("env", SHIPPED)
def test_every_environment_gets_the_whole_platform(env):
    plan = planned(env)
    settings = load(env)
    have = counts(plan)
    for type_token, n in CORE.items():
        assert have.get(type_token, 0) >= n, (type_token, have.get(type_token))
    # no endpoint until promotion names an approved package
    assert plan.of_type("aws:sagemaker/endpoint:Endpoint") == []
    assert plan.outputs["endpoint_name"] == ""
    assert plan.outputs["pipeline_name"] == naming.pipeline(settings)
    assert plan.outputs["buckets"]["artifacts"] == naming.bucket(
        settings, "artifacts", infra_plan.PLACEHOLDER_ACCOUNT
    )
    assert plan.outputs["deploy_role_arn"].endswith(f":role/{naming.deploy_role(settings)}")
    assert plan.outputs["preview_role_arn"].endswith(f":role/{naming.preview_role(settings)}")
    assert plan.outputs["dashboard"] == naming.dashboard(settings)
    schedules = {r.inputs["name"]: r.inputs for r in plan.of_type("aws:scheduler/schedule:Schedule")}
    assert (f"{settings.prefix}-retrain" in schedules) == bool(settings.training.retrain_schedule)


@pytest.mark.parametrize("env", SHIPPED)
def test_every_shipped_environment_passes_the_policy_pack(env):
    assert validators.violations(stack_resources(planned(env))) == []


def test_an_environment_serving_a_model_gets_an_endpoint_that_passes_the_pack(serving_root):
    for env in ("devserving", "prodserving"):
        plan = planned(env, serving_root)
        assert validators.violations(stack_resources(plan)) == []
        endpoint = plan.one("aws:sagemaker/endpoint:Endpoint", f"mlops-kit-{env}-serving-endpoint")
        assert endpoint.inputs["name"] == f"mlops-kit-{env}-endpoint"
        model = plan.of_type("aws:sagemaker/model:Model")[0]
        assert model.inputs["primaryContainer"]["modelPackageName"] == APPROVED
        monitor = plan.one("aws:scheduler/schedule:Schedule", f"mlops-kit-{env}-monitoring-schedule")
        assert monitor.inputs["state"] == "ENABLED"
    prod = planned("prodserving", serving_root)
    assert prod.of_type("aws:sagemaker/monitoringSchedule:MonitoringSchedule")  # native monitor opted in
    environment = prod.of_type("github:index/repositoryEnvironment:RepositoryEnvironment")[0]
    assert environment.inputs["environment"] == "prod" and environment.inputs["reviewers"]
    assert (
        planned("devserving", serving_root).of_type("aws:sagemaker/monitoringSchedule:MonitoringSchedule")
        == []
    )


def test_prod_differs_from_dev_only_through_settings(tmp_path):
    """The same settings under another environment name give the same stack, name for name."""
    root = make_root(tmp_path, {"qa": (load("prod").file).read_text()})
    changes = infra_plan.diff(planned("qa", root), planned("prod", root), "mlops-kit-qa", "mlops-kit-prod")
    assert changes, "the environment name must show somewhere (tags)"
    for change in changes:
        assert change.kind == "changed", change
        assert (change.a, change.b) == ("qa", "prod"), change


def test_dev_and_prod_differ_where_their_settings_do():
    changes = infra_plan.diff(planned("dev"), planned("prod"), "mlops-kit-dev", "mlops-kit-prod")
    by_path = {(c.name, c.path): (c.a, c.b) for c in changes if c.kind == "changed"}
    assert by_path[("{prefix}-capture", "forceDestroy")] == (True, False)
    assert by_path[("{prefix}-capture-lifecycle", "rules.1.expiration.days")] == (14, 90)
    added = {(c.type, c.name) for c in changes if c.kind == "only-b"}
    assert ("aws:scheduler/schedule:Schedule", "{prefix}-training-retrain") in added
    assert ("aws:sns/topicSubscription:TopicSubscription", "{prefix}-monitoring-alarms-email-0") in added


def test_approval_without_reviewers_is_refused_when_github_is_managed(tmp_path):
    text = with_changes("prod", cicd={"manage_github": True, "reviewers": []})
    root = make_root(tmp_path, {"strict": text})
    with pytest.raises(ValueError, match="approval_required is true but cicd.reviewers names nobody"):
        infra_plan.plan("strict", root)


def test_pipeline_definition_and_code_object_come_from_the_program():
    plan = planned("staging")
    pipeline = plan.one("aws:sagemaker/pipeline:Pipeline", "mlops-kit-staging-training-pipeline")
    json.loads(pipeline.inputs["pipelineDefinition"])  # valid JSON, built from resolved outputs
    code = plan.one("aws:s3/bucketObjectv2:BucketObjectv2", "mlops-kit-staging-training-code")
    assert code.inputs["key"].startswith("code/") and code.inputs["key"].endswith(".tar.gz")
    assert plan.outputs["code_uri"].endswith(code.inputs["key"])


def test_plans_are_deterministic(tmp_path):
    root = make_root(tmp_path, {}, copy_code=True)
    first = infra_plan.to_json(infra_plan.plan("dev", root))
    again = infra_plan.to_json(infra_plan.plan("dev", root))
    assert json.dumps(first, sort_keys=True) == json.dumps(again, sort_keys=True)
