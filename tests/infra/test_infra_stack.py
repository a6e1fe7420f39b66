"""The whole program under mocks, for every shipped environment: the full resource set, the security
rules holding, and environments that differ only through their settings."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from infra_fixtures import APPROVED, PROJECT, SHIPPED, load, make_root, planned, with_changes

from mlops_kit import infra_plan, naming, runtime
from mlops_kit import settings as settings_mod
from mlops_kit.infra.plans import images
from mlops_kit.infra.policy import validators

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
    "aws:iam/role:Role": 5,  # jobs, monitoring, monitoring invoker, deploy, preview
    "aws:ecr/repository:Repository": 1,
    "aws:ecr/lifecyclePolicy:LifecyclePolicy": 1,
    "docker-build:index:Image": 1,
}
REPOSITORY = "aws:ecr/repository:Repository"
IMAGE = "docker-build:index:Image"
PIPELINE = "aws:sagemaker/pipeline:Pipeline"


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
        endpoint = plan.one("aws:sagemaker/endpoint:Endpoint", f"kit-fixture-{env}-serving-endpoint")
        assert endpoint.inputs["name"] == f"kit-fixture-{env}-endpoint"
        model = plan.of_type("aws:sagemaker/model:Model")[0]
        assert model.inputs["primaryContainer"]["modelPackageName"] == APPROVED
        monitor = plan.one("aws:scheduler/schedule:Schedule", f"kit-fixture-{env}-monitoring-schedule")
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
    changes = infra_plan.diff(
        planned("qa", root), planned("prod", root), "kit-fixture-qa", "kit-fixture-prod"
    )
    assert changes, "the environment name must show somewhere (tags)"
    for change in changes:
        assert change.kind == "changed", change
        # the name itself (tags), or the stack's own state paths in the CI roles' policies
        assert isinstance(change.a, str) and change.a.replace("qa", "prod") == change.b, change
        assert change.a == "qa" or "/.pulumi/" in change.a, change


def test_dev_and_prod_differ_where_their_settings_do():
    changes = infra_plan.diff(planned("dev"), planned("prod"), "kit-fixture-dev", "kit-fixture-prod")
    by_path = {(c.name, c.path): (c.a, c.b) for c in changes if c.kind == "changed"}
    assert by_path[("{prefix}-capture", "forceDestroy")] == (True, False)
    assert by_path[("{prefix}-capture-lifecycle", "rules.1.expiration.days")] == (14, 90)
    added = {(c.type, c.name) for c in changes if c.kind == "only-b"}
    # retraining runs where the models come from (dev); prod gets its models by promotion
    assert ("aws:scheduler/schedule:Schedule", "{prefix}-training-retrain") in {
        (c.type, c.name) for c in changes if c.kind == "only-a"
    }
    assert ("aws:sns/topicSubscription:TopicSubscription", "{prefix}-monitoring-alarms-email-0") in added


def test_approval_without_reviewers_is_refused_when_github_is_managed(tmp_path):
    text = with_changes("prod", cicd={"manage_github": True, "reviewers": []})
    root = make_root(tmp_path, {"strict": text})
    with pytest.raises(ValueError, match="approval_required is true but cicd.reviewers names nobody"):
        infra_plan.plan("strict", root)


def project_image(env: str, root: Path = PROJECT) -> str:
    """What the pipeline definition must name: computed here from the kit's own functions."""
    settings = settings_mod.load(env, root)
    return runtime.image_uri(
        infra_plan.PLACEHOLDER_ACCOUNT,
        settings.region,
        naming.image_repository(settings),
        runtime.image_tag(root),
    )


@pytest.mark.parametrize("env", SHIPPED)
def test_the_runtime_image_is_pushed_to_the_environments_own_hardened_repository(env):
    plan, settings = planned(env), load(env)
    prefix, expected = settings.prefix, project_image(env)
    repository = plan.one(REPOSITORY, f"{prefix}-runtime-repository").inputs
    assert repository["name"] == naming.image_repository(settings)
    assert repository["encryptionConfigurations"] == [
        {"encryptionType": "KMS", "kmsKey": plan.outputs["kms_key_arn"]}  # the environment's own key
    ]
    assert repository["imageTagMutability"] == "IMMUTABLE"
    assert repository["imageScanningConfiguration"] == {"scanOnPush": True}
    assert repository["forceDelete"] is settings.storage.force_destroy
    lifecycle = plan.one("aws:ecr/lifecyclePolicy:LifecyclePolicy", f"{prefix}-runtime-lifecycle").inputs
    assert lifecycle["repository"] == repository["name"]
    assert json.loads(lifecycle["policy"]) == images.lifecycle_policy(images.KEEP_TAGGED_IMAGES)

    image = plan.one(IMAGE, f"{prefix}-runtime-image")
    assert image.inputs["push"] is True
    assert image.inputs["tags"] == [expected]
    assert image.inputs["context"] == {"location": os.path.relpath(PROJECT)}
    assert image.inputs["dockerfile"] == {"location": os.path.relpath(PROJECT / runtime.DOCKERFILE)}
    assert plan.outputs["image_uri"] == expected
    assert plan.outputs["image_repository_url"] == expected.rsplit(":", 1)[0]
    # the code travels in the image: nothing is uploaded to S3 for the jobs
    assert plan.of_type("aws:s3/bucketObjectv2:BucketObjectv2") == []
    assert "code_uri" not in plan.outputs
    # no pipeline is created (or updated) before the image it names is in the registry
    for name in (f"{prefix}-training-pipeline", f"{prefix}-monitoring-pipeline"):
        assert image.urn in plan.one(PIPELINE, name).dependencies, name


_ECR = re.compile(
    r"(?P<host>\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?)"
    r"(?P<path>/[\w./-]+(?::[\w.-]+)?(?:@sha256:[0-9a-f]{64})?)?"
)


def strings(value: Any):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def image_references(plan: infra_plan.Plan) -> list[tuple[str, str]]:
    """(resource type, reference) for every ECR image or registry named anywhere in the inputs."""
    found = []
    for resource in plan.custom:
        for text in strings(resource.inputs):
            matches = list(_ECR.finditer(text))
            assert len(matches) == text.count(".dkr.ecr."), (resource.name, text[:200])
            found += [(resource.type, m.group(0)) for m in matches]
    return found


def check_only_the_project_image(plan: infra_plan.Plan, env: str, root: Path = PROJECT) -> None:
    settings = settings_mod.load(env, root)
    expected = project_image(env, root)
    registry = expected.split("/", 1)[0]
    native = images.model_monitor(settings.region)
    references = image_references(plan)
    by_type: dict[str, set[str]] = {}
    for type_, reference in references:
        by_type.setdefault(type_, set()).add(reference)
        if reference == native:  # the opt-in native Model Monitor, and only its job definition
            assert settings.monitoring.native_model_monitor, (env, type_)
            assert type_ == "aws:sagemaker/dataQualityJobDefinition:DataQualityJobDefinition"
        elif "/" in reference:
            assert reference == expected, (env, type_, reference)
        else:
            assert reference == registry, (env, type_, reference)  # the registry the image is pushed to
    # every place that runs code names the image: both pipelines and the image itself
    assert by_type[PIPELINE] == {expected}
    assert expected in by_type[IMAGE]
    pipelines = {r.name: json.loads(r.inputs["pipelineDefinition"]) for r in plan.of_type(PIPELINE)}
    for name, definition in pipelines.items():
        assert expected in json.dumps(definition), name


@pytest.mark.parametrize("env", SHIPPED)
def test_a_shipped_environment_references_no_image_but_the_projects(env):
    check_only_the_project_image(planned(env), env)


@pytest.mark.parametrize("env", ["devserving", "prodserving"])
def test_a_serving_environment_references_no_image_but_the_projects(serving_root, env):
    plan = planned(env, serving_root)
    check_only_the_project_image(plan, env, serving_root)
    settings = settings_mod.load(env, serving_root)
    native = images.model_monitor(settings.region)
    assert (native in {ref for _, ref in image_references(plan)}) is settings.monitoring.native_model_monitor


def test_the_monitoring_job_runs_the_project_image_with_no_code_input():
    plan, settings = planned("staging"), load("staging")
    definition = json.loads(
        plan.one(PIPELINE, f"{settings.prefix}-monitoring-pipeline").inputs["pipelineDefinition"]
    )
    (step,) = definition["Steps"]
    assert step["Arguments"]["AppSpecification"] == {
        "ImageUri": project_image("staging"),
        "ContainerEntrypoint": ["python3", "-m", "mlops_kit.monitoring.job"],
    }
    assert [i["InputName"] for i in step["Arguments"]["ProcessingInputs"]] == ["baseline", "capture"]


@pytest.mark.parametrize("env", SHIPPED)
def test_every_role_touches_only_the_environments_own_image_repository(env):
    """The jobs and monitoring roles pull, the deploy role pushes, the preview role reads: one repository,
    this account and region; only the registry login (which IAM cannot scope) is on `*`."""
    plan, settings = planned(env), load(env)
    own = (
        f"arn:aws:ecr:{settings.region}:{infra_plan.PLACEHOLDER_ACCOUNT}:"
        f"repository/{naming.image_repository(settings)}"
    )
    for name in (
        "training-execution-policy",
        "monitoring-role-policy",
        "cicd-deploy-policy",
        "cicd-preview-policy",
    ):
        policy = json.loads(
            plan.one("aws:iam/rolePolicy:RolePolicy", f"{settings.prefix}-{name}").inputs["policy"]
        )
        ecr = [s for s in policy["Statement"] if any(a.startswith("ecr:") for a in s["Action"])]
        assert ecr, name
        for stmt in ecr:
            if stmt["Resource"] == ["*"]:
                assert stmt["Action"] == ["ecr:GetAuthorizationToken"], (name, stmt)
            else:
                assert stmt["Resource"] == [own], (name, stmt)


def test_the_same_sources_give_the_same_image_and_definition_and_a_change_gives_new_ones(tmp_path):
    """Preview shows no change when nothing changed, and a change to the image's sources is a change."""
    root = make_root(tmp_path, {}, copy_code=True)

    def image_and_definition() -> tuple[str, str]:
        plan = infra_plan.plan("dev", root)
        (tag,) = plan.one(IMAGE, "kit-fixture-dev-runtime-image").inputs["tags"]
        return tag, plan.one(PIPELINE, "kit-fixture-dev-training-pipeline").inputs["pipelineDefinition"]

    first, again = image_and_definition(), image_and_definition()
    assert first == again
    assert first[0] == project_image("dev", root)
    assert first[0] in first[1]

    (root / "kit_fixture" / "__init__.py").write_text(
        (root / "kit_fixture" / "__init__.py").read_text() + "\n# a change to the code\n"
    )
    changed = image_and_definition()
    assert changed[0] != first[0] and changed[0] == project_image("dev", root)
    assert changed[1] != first[1] and changed[0] in changed[1]


def test_plans_are_deterministic(tmp_path):
    root = make_root(tmp_path, {}, copy_code=True)
    first = infra_plan.to_json(infra_plan.plan("dev", root))
    again = infra_plan.to_json(infra_plan.plan("dev", root))
    assert json.dumps(first, sort_keys=True) == json.dumps(again, sort_keys=True)
