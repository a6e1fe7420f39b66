"""Each component built directly from its args under Pulumi mocks: what it declares, and what it refuses."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from mlops_kit import infra_plan, runtime
from mlops_kit.features import Feature, FeatureGroup, FeatureType
from mlops_kit.infra.components.cicd import Cicd, CicdArgs
from mlops_kit.infra.components.feature_store import FeatureStore, FeatureStoreArgs
from mlops_kit.infra.components.monitoring import (
    Monitoring,
    MonitoringArgs,
    NativeModelMonitor,
    NativeModelMonitorArgs,
)
from mlops_kit.infra.components.runtime import Runtime, RuntimeArgs
from mlops_kit.infra.components.serving import Serving, ServingArgs
from mlops_kit.infra.components.storage import Storage, StorageArgs
from mlops_kit.infra.components.training import Training, TrainingArgs
from mlops_kit.infra.plans import iam, images
from mlops_kit.infra.plans.github import Reviewer
from mlops_kit.infra.plans.monitoring import MonitoringJob
from mlops_kit.infra.policy import validators
from mlops_kit.naming import BUCKET_PURPOSES

TAGS = {"project": "p", "environment": "e", "owner": "o"}
KEY = "arn:aws:kms:us-east-1:123456789012:key/k"
ROLE = "arn:aws:iam::123456789012:role/p-e-sagemaker"
BUCKETS = {p: f"p-e-{p}-123456789012" for p in BUCKET_PURPOSES}
REPOSITORY = "p-e-runtime"
TAG = "0123456789abcdef0123456789abcdef"
IMAGE = f"123456789012.dkr.ecr.us-east-1.amazonaws.com/{REPOSITORY}:{TAG}"
REPOSITORY_ARN = f"arn:aws:ecr:us-east-1:123456789012:repository/{REPOSITORY}"
ROLES = iam.role_names("p-e", jobs="p-e-sagemaker", deploy="p-e-deploy", preview="p-e-preview")


def run(build):
    return infra_plan.run(build, stack="e", project="p")


def storage_args(**changes) -> StorageArgs:
    args = StorageArgs(
        prefix="p-e",
        account_id="123456789012",
        region="us-east-1",
        bucket_names=dict(BUCKETS),
        kms_alias="alias/p-e",
        kms_deletion_window_days=30,
        force_destroy=False,
        capture_expiry_days=9,
        noncurrent_version_expiry_days=11,
        tags=TAGS,
    )
    return dataclasses.replace(args, **changes)


def test_storage_hardens_every_bucket():
    plan = run(lambda: {"buckets": Storage("st", storage_args()).buckets})
    key = plan.one("aws:kms/key:Key", "st-key")
    assert key.inputs["enableKeyRotation"] is True
    buckets = plan.of_type("aws:s3/bucket:Bucket")
    assert sorted(b.inputs["bucket"] for b in buckets) == sorted(BUCKETS.values())
    for purpose in BUCKET_PURPOSES:
        sse = plan.one(
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            f"st-{purpose}-encryption",
        )
        default = sse.inputs["rules"][0]["applyServerSideEncryptionByDefault"]
        assert default == {
            "sseAlgorithm": "aws:kms",
            "kmsMasterKeyId": "arn:aws:kms:us-east-1:123456789012:key/st-key",
        }
        block = plan.one(
            "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", f"st-{purpose}-public-access"
        )
        assert all(
            block.inputs[f] is True
            for f in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
        )
        versioning = plan.one("aws:s3/bucketVersioning:BucketVersioning", f"st-{purpose}-versioning")
        assert versioning.inputs["versioningConfiguration"]["status"] == "Enabled"
        policy = json.loads(
            plan.one("aws:s3/bucketPolicy:BucketPolicy", f"st-{purpose}-tls-only").inputs["policy"]
        )
        assert policy["Statement"][0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    lifecycle = plan.one(
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "st-capture-lifecycle"
    )
    rules = {r["id"]: r for r in lifecycle.inputs["rules"]}
    assert rules["expire-captured-data"]["expiration"]["days"] == 9
    assert rules["expire-old-versions"]["noncurrentVersionExpiration"]["noncurrentDays"] == 11
    raw = plan.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "st-raw-lifecycle")
    assert [r["id"] for r in raw.inputs["rules"]] == ["expire-old-versions"]
    assert plan.outputs["buckets"] == BUCKETS


def test_storage_refuses_a_missing_bucket_name():
    names = {p: n for p, n in BUCKETS.items() if p != "capture"}
    with pytest.raises(ValueError, match="capture"):
        run(lambda: Storage("st", storage_args(bucket_names=names)))


GROUP = FeatureGroup(
    name="g",
    record_identifier=Feature("id", FeatureType.STRING),
    event_time=Feature("t", FeatureType.STRING),
    features=(Feature("x", FeatureType.FRACTIONAL),),
)


def feature_args(**changes) -> FeatureStoreArgs:
    args = FeatureStoreArgs(
        groups=(GROUP,),
        group_names={"g": "p-e-g"},
        features_bucket=BUCKETS["features"],
        kms_key_arn=KEY,
        role_arn=ROLE,
        glue_database="p_e_features",
        online_store=True,
        ttl_hours=12,
        tags=TAGS,
    )
    return dataclasses.replace(args, **changes)


@pytest.mark.parametrize("online", [True, False])
def test_feature_store_encrypts_both_stores(online):
    plan = run(lambda: FeatureStore("fs", feature_args(online_store=online)) and None)
    fg = plan.one("aws:sagemaker/featureGroup:FeatureGroup", "fs-g").inputs
    assert fg["featureGroupName"] == "p-e-g"
    assert [d["featureName"] for d in fg["featureDefinitions"]] == ["id", "t", "x"]
    assert fg["offlineStoreConfig"]["s3StorageConfig"] == {
        "s3Uri": f"s3://{BUCKETS['features']}/offline-store",
        "kmsKeyId": KEY,
    }
    assert fg["offlineStoreConfig"]["dataCatalogConfig"]["database"] == "p_e_features"
    if online:
        assert fg["onlineStoreConfig"]["securityConfig"]["kmsKeyId"] == KEY
        assert fg["onlineStoreConfig"]["ttlDuration"] == {"unit": "Hours", "value": 12}
    else:
        assert "onlineStoreConfig" not in fg


def test_feature_store_refuses_a_group_without_a_name():
    with pytest.raises(ValueError, match="no resource name for group"):
        run(lambda: FeatureStore("fs", feature_args(group_names={})))


def training_args(**changes) -> tuple[TrainingArgs, list]:
    calls: list = []

    def definition(**context) -> str:
        calls.append(context)
        return json.dumps({"Steps": [], "Role": context["role_arn"], "Image": context["image_uri"]})

    args = TrainingArgs(
        prefix="p-e",
        region="us-east-1",
        account_id="123456789012",
        role_name="p-e-sagemaker",
        scheduler_role_name="p-e-retrain-scheduler",
        buckets=dict(BUCKETS),
        kms_key_arn=KEY,
        model_package_group="p-e-models",
        pipeline_name="p-e-training",
        glue_database="p_e_features",
        image_repository=REPOSITORY,
        image_uri=IMAGE,
        image_pushed=(),
        definition=definition,
        retrain_schedule="rate(7 days)",
        reader_accounts=("222222222222",),
        tags=TAGS,
    )
    return dataclasses.replace(args, **changes), calls


def test_training_builds_the_definition_from_outputs_and_uploads_no_code():
    args, calls = training_args()
    plan = run(lambda: {"pipeline": Training("tr", args).pipeline_name})
    assert plan.of_type("aws:s3/bucketObjectv2:BucketObjectv2") == []  # the code is in the image
    pipeline = plan.one("aws:sagemaker/pipeline:Pipeline", "tr-pipeline").inputs
    definition = json.loads(pipeline["pipelineDefinition"])
    assert definition["Role"] == "arn:aws:iam::123456789012:role/p-e-sagemaker"
    assert definition["Image"] == IMAGE
    (context,) = calls
    assert context["buckets"] == BUCKETS and context["model_package_group"] == "p-e-models"
    assert "code_uri" not in context
    readers = plan.one(
        "aws:sagemaker/modelPackageGroupPolicy:ModelPackageGroupPolicy", "tr-model-packages-readers"
    )
    assert "222222222222" in readers.inputs["resourcePolicy"]
    schedule = plan.one("aws:scheduler/schedule:Schedule", "tr-retrain").inputs
    assert schedule["scheduleExpression"] == "rate(7 days)"
    assert schedule["target"]["arn"].endswith(":pipeline/p-e-training")
    trust = json.loads(plan.one("aws:iam/role:Role", "tr-execution-role").inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": ["sagemaker.amazonaws.com"]}
    policy = json.loads(plan.one("aws:iam/rolePolicy:RolePolicy", "tr-execution-policy").inputs["policy"])
    pulls = next(s for s in policy["Statement"] if s.get("Sid") == "ImagePulls")
    assert pulls["Resource"] == [REPOSITORY_ARN]


def test_training_pipeline_waits_for_the_image_push(tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")

    def build():
        image = Runtime("rt", runtime_args(tmp_path))
        args, _ = training_args(image_uri=image.image_uri, image_pushed=(image,))
        Training("tr", args)

    plan = run(build)
    pushed = plan.one("docker-build:index:Image", "rt-image")
    pipeline = plan.one("aws:sagemaker/pipeline:Pipeline", "tr-pipeline")
    assert pushed.urn in pipeline.dependencies
    assert json.loads(pipeline.inputs["pipelineDefinition"])["Image"] == IMAGE


def test_training_without_the_image_dependency_does_not_wait(tmp_path):
    """The other side of the test above: the dependency comes from `image_pushed`, not from chance."""
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")

    def build():
        image = Runtime("rt", runtime_args(tmp_path))
        args, _ = training_args(image_uri=image.image_uri, image_pushed=())
        Training("tr", args)

    plan = run(build)
    pushed = plan.one("docker-build:index:Image", "rt-image")
    assert pushed.urn not in plan.one("aws:sagemaker/pipeline:Pipeline", "tr-pipeline").dependencies


def test_training_without_schedule_or_readers_declares_neither():
    args, _ = training_args(retrain_schedule="", reader_accounts=())
    plan = run(lambda: Training("tr", args) and None)
    assert plan.of_type("aws:scheduler/schedule:Schedule") == []
    assert plan.of_type("aws:sagemaker/modelPackageGroupPolicy:ModelPackageGroupPolicy") == []


def test_training_refuses_buckets_without_artifacts():
    args, _ = training_args(buckets={"raw": "r"})
    with pytest.raises(ValueError, match="artifacts bucket"):
        run(lambda: Training("tr", args))


def runtime_args(root: Path, **changes) -> RuntimeArgs:
    args = RuntimeArgs(
        region="us-east-1",
        account_id="123456789012",
        repository_name=REPOSITORY,
        root=root,
        image_tag=TAG,
        kms_key_arn=KEY,
        force_delete=False,
        keep_tagged_images=7,
        tags=TAGS,
    )
    return dataclasses.replace(args, **changes)


@pytest.mark.parametrize("force_delete", [False, True])
def test_runtime_pushes_the_image_to_an_encrypted_immutable_scanned_repository(tmp_path, force_delete):
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")

    def build() -> dict:
        rt = Runtime("rt", runtime_args(tmp_path, force_delete=force_delete))
        return {
            "image_uri": rt.image_uri,
            "repository_url": rt.repository_url,
            "repository_arn": rt.repository_arn,
            "digest": rt.image_digest,
        }

    plan = run(build)
    component = plan.one("mlops:runtime:Runtime", "rt")
    repository = plan.one("aws:ecr/repository:Repository", "rt-repository")
    inputs = repository.inputs
    assert inputs["name"] == REPOSITORY
    assert inputs["encryptionConfigurations"] == [{"encryptionType": "KMS", "kmsKey": KEY}]
    assert inputs["imageTagMutability"] == "IMMUTABLE"
    assert inputs["imageScanningConfiguration"] == {"scanOnPush": True}
    assert inputs["forceDelete"] is force_delete
    assert inputs["tags"] == TAGS
    assert validators.check_image_repository(repository.type, inputs) == []
    lifecycle = plan.one("aws:ecr/lifecyclePolicy:LifecyclePolicy", "rt-lifecycle").inputs
    assert lifecycle["repository"] == REPOSITORY
    assert json.loads(lifecycle["policy"]) == images.lifecycle_policy(7)

    image = plan.one("docker-build:index:Image", "rt-image")
    built = image.inputs
    assert built["push"] is True
    assert built["tags"] == [IMAGE]
    assert built["platforms"] == [runtime.PLATFORM]
    # relative to where Pulumi runs the program: no change, so no rebuild, from another checkout path
    assert built["context"] == {"location": os.path.relpath(tmp_path)}
    assert built["dockerfile"] == {"location": os.path.relpath(tmp_path / "Dockerfile")}
    assert built["buildArgs"] == {"SOURCE_DATE_EPOCH": "0"}
    assert built["cacheFrom"] == [{"gha": {"scope": "mlops-image"}}]
    assert built["cacheTo"] == [{"gha": {"scope": "mlops-image", "mode": "max"}}]
    (registry,) = built["registries"]
    assert registry["address"] == "123456789012.dkr.ecr.us-east-1.amazonaws.com"
    assert (registry["username"], registry["password"]) == (
        "AWS",
        "plan-only",
    )  # the token the mock hands out
    assert repository.urn in image.dependencies  # pushed only once the repository exists
    assert {repository.parent, image.parent} == {component.urn}

    assert plan.outputs["image_uri"] == IMAGE  # from account, region, name and tag: known in a preview
    assert plan.outputs["repository_url"] == f"123456789012.dkr.ecr.us-east-1.amazonaws.com/{REPOSITORY}"
    assert plan.outputs["repository_arn"] == REPOSITORY_ARN
    assert plan.outputs["digest"].startswith("sha256:")


def test_runtime_refuses_a_root_without_a_dockerfile(tmp_path):
    with pytest.raises(ValueError, match="Dockerfile"):
        run(lambda: Runtime("rt", runtime_args(tmp_path)))


def serving_args(**changes) -> ServingArgs:
    args = ServingArgs(
        prefix="p-e",
        region="us-east-1",
        account_id="123456789012",
        endpoint_name="p-e-endpoint",
        model_package_arn="arn:aws:sagemaker:us-east-1:123456789012:model-package/p-e-models/1",
        role_name="p-e-serving",
        artifacts_bucket=BUCKETS["artifacts"],
        training_pipeline="p-e-training",
        image_repository=REPOSITORY,
        instance_type="ml.m5.large",
        instance_count=2,
        capture_percent=20,
        capture_bucket=BUCKETS["capture"],
        kms_key_arn=KEY,
        min_capacity=2,
        max_capacity=4,
        target_invocations_per_instance=700,
        latency_alarm_ms=250,
        log_format="json",
        alarm_topic_arn="arn:aws:sns:us-east-1:123456789012:p-e-alarms",
        tags=TAGS,
    )
    return dataclasses.replace(args, **changes)


def test_serving_captures_encrypts_rolls_back_and_scales():
    plan = run(lambda: {"endpoint": Serving("sv", serving_args()).endpoint_name})
    model = plan.one("aws:sagemaker/model:Model", "sv-model").inputs
    assert model["primaryContainer"]["modelPackageName"].endswith("model-package/p-e-models/1")
    assert model["primaryContainer"]["environment"]["MLOPS_LOG_FORMAT"] == "json"  # CloudWatch reads fields
    text = run(lambda: {"e": Serving("st", serving_args(log_format="text")).endpoint_name})
    assert (
        text.one("aws:sagemaker/model:Model", "st-model").inputs["primaryContainer"]["environment"][
            "MLOPS_LOG_FORMAT"
        ]
        == "text"
    )
    config = plan.one("aws:sagemaker/endpointConfiguration:EndpointConfiguration", "sv-config").inputs
    assert config["kmsKeyArn"] == KEY
    (variant,) = config["productionVariants"]
    assert (variant["instanceType"], variant["initialInstanceCount"]) == ("ml.m5.large", 2)
    capture = config["dataCaptureConfig"]
    assert capture["enableCapture"] is True and capture["initialSamplingPercentage"] == 20
    assert capture["kmsKeyId"] == KEY
    assert capture["destinationS3Uri"] == f"s3://{BUCKETS['capture']}/datacapture"
    endpoint = plan.one("aws:sagemaker/endpoint:Endpoint", "sv-endpoint").inputs
    alarms = {a["alarmName"] for a in endpoint["deploymentConfig"]["autoRollbackConfiguration"]["alarms"]}
    assert alarms == {"p-e-endpoint-5xx", "p-e-endpoint-latency"}
    assert (
        endpoint["deploymentConfig"]["blueGreenUpdatePolicy"]["trafficRoutingConfiguration"]["type"]
        == "ALL_AT_ONCE"
    )
    latency = plan.one("aws:cloudwatch/metricAlarm:MetricAlarm", "sv-modellatency").inputs
    assert latency["threshold"] == 250_000  # microseconds
    target = plan.one("aws:appautoscaling/target:Target", "sv-scaling-target").inputs
    assert (target["minCapacity"], target["maxCapacity"]) == (2, 4)
    assert target["resourceId"] == "endpoint/p-e-endpoint/variant/AllTraffic"
    scaling = plan.one("aws:appautoscaling/policy:Policy", "sv-scaling-policy").inputs
    tracking = scaling["targetTrackingScalingPolicyConfiguration"]
    assert tracking["targetValue"] == 700
    assert (
        tracking["predefinedMetricSpecification"]["predefinedMetricType"]
        == "SageMakerVariantInvocationsPerInstance"
    )
    assert plan.outputs["endpoint"] == "p-e-endpoint"
    # the model runs with the endpoint's own role, made here, and only once its policy is in place
    role = plan.one("aws:iam/role:Role", "sv-role")
    assert role.inputs["name"] == "p-e-serving"
    assert model["executionRoleArn"] == "arn:aws:iam::123456789012:role/p-e-serving"
    policy = plan.one("aws:iam/rolePolicy:RolePolicy", "sv-role-policy")
    assert policy.urn in plan.one("aws:sagemaker/model:Model", "sv-model").dependencies
    statements = {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}
    assert statements["ModelArtifacts"]["Resource"] == [
        f"arn:aws:s3:::{BUCKETS['artifacts']}/pipelines/p-e-training/*"
    ]
    assert statements["DataCapture"]["Resource"] == [
        f"arn:aws:s3:::{BUCKETS['capture']}/datacapture/p-e-endpoint/*"
    ]
    assert statements["ImagePulls"]["Resource"] == [REPOSITORY_ARN]


def test_serving_refuses_something_that_is_not_a_package_arn():
    with pytest.raises(ValueError, match="model package ARN"):
        run(lambda: Serving("sv", serving_args(model_package_arn="my-model")))


def monitoring_job(**changes) -> MonitoringJob:
    job = MonitoringJob(
        endpoint="p-e-endpoint",
        pipeline_name="p-e-monitoring",
        schedule_name="p-e-monitoring",
        alarm_name="p-e-drift",
        rule_name="p-e-retrain-on-drift",
        training_pipeline="p-e-training",
        schedule="rate(1 hour)",
        instance_type="ml.m5.large",
        drift_threshold=0.3,
        task="multiclass",
        classes=("bronze", "silver", "gold"),
        retrain_on_drift=True,
        min_window_rows=250,
    )
    return dataclasses.replace(job, **changes)


def monitoring_args(**changes) -> MonitoringArgs:
    args = MonitoringArgs(
        prefix="p-e",
        region="us-east-1",
        account_id="123456789012",
        job=monitoring_job(),
        serving=True,
        role_name="p-e-monitoring",
        invoker_role_name="p-e-monitoring-invoker",
        image_repository=REPOSITORY,
        native_model_monitor=False,
        kms_key_arn=KEY,
        capture_bucket=BUCKETS["capture"],
        monitoring_bucket=BUCKETS["monitoring"],
        image_uri=IMAGE,
        image_pushed=(),
        training_pipeline_arn="arn:aws:sagemaker:us-east-1:123456789012:pipeline/p-e-training",
        alarm_emails=("a@example.com", "b@example.com"),
        features=("x", "y"),
        topic_name="p-e-alarms",
        dashboard_name="p-e-dashboard",
        tags=TAGS,
    )
    return dataclasses.replace(args, **changes)


def test_monitoring_closes_the_loop_from_drift_to_retraining():
    plan = run(lambda: Monitoring("mo", monitoring_args()) and None)
    topic = plan.one("aws:sns/topic:Topic", "mo-alarms").inputs
    assert topic["kmsMasterKeyId"] == KEY
    emails = sorted(s.inputs["endpoint"] for s in plan.of_type("aws:sns/topicSubscription:TopicSubscription"))
    assert emails == ["a@example.com", "b@example.com"]
    alarm = plan.one("aws:cloudwatch/metricAlarm:MetricAlarm", "mo-drift").inputs
    assert (alarm["namespace"], alarm["metricName"], alarm["threshold"]) == (
        "mlops-kit/monitoring",
        "drift_score",
        0.3,
    )
    assert alarm["dimensions"] == {"Endpoint": "p-e-endpoint"}
    assert alarm["period"] == 3600
    schedule = plan.one("aws:scheduler/schedule:Schedule", "mo-schedule").inputs
    # StartPipelineExecution of the monitoring pipeline, its window ending at the scheduled time
    assert schedule["state"] == "ENABLED"
    assert schedule["target"]["arn"] == "arn:aws:scheduler:::aws-sdk:sagemaker:startPipelineExecution"
    assert json.loads(schedule["target"]["input"])["PipelineName"] == "p-e-monitoring"
    assert json.loads(schedule["target"]["input"])["PipelineParameters"] == [
        {"Name": "ScheduledTime", "Value": "<aws.scheduler.scheduled-time>"}
    ]
    definition = json.loads(
        plan.one("aws:sagemaker/pipeline:Pipeline", "mo-pipeline").inputs["pipelineDefinition"]
    )
    (step,) = definition["Steps"]
    inputs = {i["InputName"]: i["S3Input"]["LocalPath"] for i in step["Arguments"]["ProcessingInputs"]}
    # the baseline only: the job reads its window's capture partitions itself; no code: it is in the image
    assert inputs == {"baseline": "/opt/ml/processing/baseline"}
    environment = step["Arguments"]["Environment"]
    assert environment["CAPTURE_PATH"] == {"Get": "Parameters.CaptureUri"}
    assert environment["SCHEDULED_TIME"] == {"Get": "Parameters.ScheduledTime"}
    assert environment["WINDOW_HOURS"] == "1"
    assert step["Arguments"]["AppSpecification"] == {
        "ImageUri": IMAGE,
        "ContainerEntrypoint": ["python3", "-m", "mlops_kit.monitoring.job"],
    }
    # the settings' minimum window reaches the job: a smaller window is reported, not scored
    assert step["Arguments"]["Environment"]["MIN_WINDOW_ROWS"] == "250"
    rule = plan.one("aws:cloudwatch/eventRule:EventRule", "mo-retrain-on-drift").inputs
    pattern = json.loads(rule["eventPattern"])
    assert pattern["detail"] == {"state": {"value": ["ALARM"]}}
    assert pattern["resources"] == ["arn:aws:cloudwatch:us-east-1:123456789012:alarm:p-e-drift"]
    target = plan.one("aws:cloudwatch/eventTarget:EventTarget", "mo-retrain-target").inputs
    assert target["arn"].endswith(":pipeline/p-e-training")
    invoker = json.loads(plan.one("aws:iam/rolePolicy:RolePolicy", "mo-invoker-policy").inputs["policy"])
    assert len(invoker["Statement"][0]["Resource"]) == 2
    # the pipeline and its job run with the monitor's own role, made here
    role = "arn:aws:iam::123456789012:role/p-e-monitoring"
    assert plan.one("aws:iam/role:Role", "mo-role").inputs["name"] == "p-e-monitoring"
    pipeline = plan.one("aws:sagemaker/pipeline:Pipeline", "mo-pipeline")
    assert pipeline.inputs["roleArn"] == role and step["Arguments"]["RoleArn"] == role
    assert plan.one("aws:iam/rolePolicy:RolePolicy", "mo-role-policy").urn in pipeline.dependencies
    dashboard = json.loads(
        plan.one("aws:cloudwatch/dashboard:Dashboard", "mo-dashboard").inputs["dashboardBody"]
    )
    titles = [w["properties"]["title"] for w in dashboard["widgets"]]
    assert titles[:4] == ["Invocations", "Errors", "Model latency (µs)", "Drift (PSI)"]


def test_monitoring_pipeline_waits_for_the_image_push(tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")

    def build():
        image = Runtime("rt", runtime_args(tmp_path))
        Monitoring("mo", monitoring_args(image_uri=image.image_uri, image_pushed=(image,)))

    plan = run(build)
    pushed = plan.one("docker-build:index:Image", "rt-image")
    assert pushed.urn in plan.one("aws:sagemaker/pipeline:Pipeline", "mo-pipeline").dependencies


def test_monitoring_without_an_endpoint_or_retraining():
    plan = run(
        lambda: (
            Monitoring("mo", monitoring_args(serving=False, job=monitoring_job(retrain_on_drift=False)))
            and None
        )
    )
    assert plan.one("aws:scheduler/schedule:Schedule", "mo-schedule").inputs["state"] == "DISABLED"
    assert plan.of_type("aws:cloudwatch/eventRule:EventRule") == []
    invoker = json.loads(plan.one("aws:iam/rolePolicy:RolePolicy", "mo-invoker-policy").inputs["policy"])
    assert invoker["Statement"][0]["Resource"] == [
        "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p-e-monitoring"
    ]


def test_monitoring_refuses_a_schedule_it_cannot_read():
    with pytest.raises(ValueError, match="schedule expression"):
        run(lambda: Monitoring("mo", monitoring_args(job=monitoring_job(schedule="every hour"))))


def test_native_model_monitor_is_encrypted_and_hourly():
    args = NativeModelMonitorArgs(
        prefix="p-e",
        endpoint_name="p-e-endpoint",
        role_arn=ROLE,
        kms_key_arn=KEY,
        monitoring_bucket=BUCKETS["monitoring"],
        image_uri="monitor:latest",
        instance_type="ml.m5.large",
        schedule="rate(1 hour)",
        tags=TAGS,
    )
    plan = run(lambda: NativeModelMonitor("nm", args) and None)
    job = plan.one(
        "aws:sagemaker/dataQualityJobDefinition:DataQualityJobDefinition", "nm-data-quality"
    ).inputs
    assert job["dataQualityJobOutputConfig"]["kmsKeyId"] == KEY
    assert job["jobResources"]["clusterConfig"]["volumeKmsKeyId"] == KEY
    schedule = plan.one("aws:sagemaker/monitoringSchedule:MonitoringSchedule", "nm-schedule").inputs
    assert schedule["monitoringScheduleConfig"]["scheduleConfig"]["scheduleExpression"] == "cron(0 * ? * * *)"


def cicd_args(**changes) -> CicdArgs:
    args = CicdArgs(
        prefix="p-e",
        region="us-east-1",
        account_id="123456789012",
        environment="e",
        github_repository="org/repo",
        github_environment="e-env",
        oidc_provider_arn="",
        roles=ROLES,
        image_repository=REPOSITORY,
        endpoint_name="p-e-endpoint",
        state_backend="s3://state",
        secrets_provider="awskms://alias/s",
        pulumi_project="p",
        stack="e",
        manage_github=False,
        reviewers=(),
        deploy_branches=("main",),
        tags=TAGS,
    )
    return dataclasses.replace(args, **changes)


def _subject(plan, name: str) -> str:
    trust = json.loads(plan.one("aws:iam/role:Role", name).inputs["assumeRolePolicy"])
    return trust["Statement"][0]["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"]


def test_cicd_creates_the_provider_and_pins_both_roles():
    plan = run(lambda: {"deploy": Cicd("ci", cicd_args()).deploy_role_arn})
    provider = plan.one("aws:iam/openIdConnectProvider:OpenIdConnectProvider", "ci-github-oidc").inputs
    assert provider["url"] == "https://token.actions.githubusercontent.com"
    assert provider["clientIdLists"] == ["sts.amazonaws.com"]
    assert _subject(plan, "ci-deploy-role") == "repo:org/repo:environment:e-env"
    assert _subject(plan, "ci-preview-role") == "repo:org/repo:pull_request"
    assert plan.outputs["deploy"] == "arn:aws:iam::123456789012:role/p-e-deploy"
    assert not [r for r in plan.resources if r.type.startswith("github:")]
    deploy = json.loads(plan.one("aws:iam/rolePolicy:RolePolicy", "ci-deploy-policy").inputs["policy"])
    pushes = next(s for s in deploy["Statement"] if s.get("Sid") == "ImageRepository")
    assert pushes["Resource"] == [REPOSITORY_ARN] and "ecr:PutImage" in pushes["Action"]
    preview = json.loads(plan.one("aws:iam/rolePolicy:RolePolicy", "ci-preview-policy").inputs["policy"])
    reads = next(s for s in preview["Statement"] if s.get("Sid") == "ReadImageRepository")
    assert reads["Resource"] == [REPOSITORY_ARN]


def test_cicd_references_an_existing_provider_and_manages_github():
    existing = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
    reviewers = (Reviewer("team", "ml"), Reviewer("user", "octocat"))
    args = cicd_args(
        oidc_provider_arn=existing,
        manage_github=True,
        reviewers=reviewers,
        deploy_branches=("main", "release/*"),
    )
    plan = run(lambda: Cicd("ci", args) and None)
    assert plan.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider") == []
    trust = json.loads(plan.one("aws:iam/role:Role", "ci-deploy-role").inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Federated": existing}
    environment = plan.one(
        "github:index/repositoryEnvironment:RepositoryEnvironment", "ci-github-environment"
    ).inputs
    assert environment["environment"] == "e-env" and environment["repository"] == "repo"
    (entry,) = environment["reviewers"]
    assert len(entry["teams"]) == 1 and len(entry["users"]) == 1
    assert environment["deploymentBranchPolicy"] == {"customBranchPolicies": True, "protectedBranches": False}
    policies = plan.of_type(
        "github:index/repositoryEnvironmentDeploymentPolicy:RepositoryEnvironmentDeploymentPolicy"
    )
    assert [
        (p.inputs["repository"], p.inputs["environment"], p.inputs["branchPattern"]) for p in policies
    ] == [
        ("repo", "e-env", "main"),
        ("repo", "e-env", "release/*"),
    ]
    variable = plan.one(
        "github:index/actionsEnvironmentVariable:ActionsEnvironmentVariable", "ci-deploy-role-variable"
    )
    assert variable.inputs["variableName"] == "AWS_DEPLOY_ROLE_ARN"
    assert variable.inputs["value"] == "arn:aws:iam::123456789012:role/p-e-deploy"
    preview = plan.one("github:index/actionsVariable:ActionsVariable", "ci-preview-role-variable").inputs
    assert preview["variableName"] == "AWS_PREVIEW_ROLE_ARN_E_ENV"
    provider = plan.one("pulumi:providers:github", "ci-github").inputs
    assert provider["owner"] == "org"


def test_cicd_refuses_a_malformed_repository():
    with pytest.raises(ValueError, match="owner/name"):
        run(lambda: Cicd("ci", cicd_args(github_repository="repo")))


def test_components_parent_their_children():
    plan = run(lambda: Storage("st", storage_args()) and None)
    component = plan.one("mlops:storage:Storage", "st")
    key = plan.one("aws:kms/key:Key", "st-key")
    assert key.parent == component.urn
