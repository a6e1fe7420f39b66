"""The local environment's platform inside the emulator: what `pulumi up` creates in AWS.

In AWS the Pulumi program provisions buckets, the key and the model package group; on the embedded
default there is no Pulumi engine, so this module creates the same resources, under the same names
(`mlops_kit.naming`), in the emulator. It is idempotent: running it twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlops_kit import naming
from mlops_kit.settings import Settings

ClientFactory = Callable[[str], Any]


@dataclass(frozen=True)
class LocalPlatform:
    account_id: str
    kms_key_arn: str
    buckets: dict[str, str]
    model_package_group: str


def ensure(settings: Settings, client: ClientFactory) -> LocalPlatform:
    """Create (or find) the environment's key, buckets and model package group."""
    account_id = client("sts").get_caller_identity()["Account"]
    kms_key_arn = _ensure_key(settings, client("kms"))
    s3 = client("s3")
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    buckets = {}
    for purpose in naming.BUCKET_PURPOSES:
        name = naming.bucket(settings, purpose, account_id)
        if name not in existing:
            s3.create_bucket(Bucket=name)
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
            s3.put_bucket_encryption(
                Bucket=name,
                ServerSideEncryptionConfiguration={
                    "Rules": [
                        {
                            "ApplyServerSideEncryptionByDefault": {
                                "SSEAlgorithm": "aws:kms",
                                "KMSMasterKeyID": kms_key_arn,
                            },
                            "BucketKeyEnabled": True,
                        }
                    ]
                },
            )
            s3.put_public_access_block(
                Bucket=name,
                PublicAccessBlockConfiguration={
                    "BlockPublicAcls": True,
                    "IgnorePublicAcls": True,
                    "BlockPublicPolicy": True,
                    "RestrictPublicBuckets": True,
                },
            )
        buckets[purpose] = name
    group = naming.model_package_group(settings)
    sagemaker = client("sagemaker")
    groups = sagemaker.list_model_package_groups(NameContains=group)["ModelPackageGroupSummaryList"]
    if not any(g["ModelPackageGroupName"] == group for g in groups):
        sagemaker.create_model_package_group(
            ModelPackageGroupName=group,
            ModelPackageGroupDescription=f"Models of {settings.prefix}",
            Tags=[{"Key": "environment", "Value": settings.env}, {"Key": "owner", "Value": settings.owner}],
        )
    return LocalPlatform(account_id, kms_key_arn, buckets, group)


def _ensure_key(settings: Settings, kms: Any) -> str:
    alias = f"alias/{settings.prefix}"
    for entry in kms.list_aliases()["Aliases"]:
        if entry["AliasName"] == alias and entry.get("TargetKeyId"):
            return kms.describe_key(KeyId=entry["TargetKeyId"])["KeyMetadata"]["Arn"]
    key = kms.create_key(Description=f"{settings.prefix} data key")["KeyMetadata"]
    kms.enable_key_rotation(KeyId=key["KeyId"])
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    return key["Arn"]


@dataclass(frozen=True)
class LocalMonitoring:
    """The monitoring loop as the emulator holds it (what `mlops_kit.infra.components.monitoring` makes)."""

    job: Any  # mlops_kit.infra.plans.monitoring.MonitoringJob
    pipeline_arn: str
    role_arn: str  # the monitoring pipeline's and its job's
    invoker_role_arn: str  # the schedule's and the retraining rule's
    image_uri: str
    alarm_arn: str
    training_pipeline_arn: str
    definition: str


def ensure_monitoring(
    settings: Settings, client: ClientFactory, platform: LocalPlatform, *, serving: bool
) -> LocalMonitoring:
    """Create (or update) what the Pulumi program's Monitoring component creates, from the same plan
    (`plans.monitoring.monitoring_job`): the monitoring pipeline with the deployed definition, the drift
    alarm, the schedule with its StartPipelineExecution request (enabled when an endpoint serves) and,
    when retraining is on, the rule that starts the training pipeline. Idempotent."""
    from botocore.exceptions import ClientError

    from mlops_kit import project, runtime
    from mlops_kit.infra.plans import iam
    from mlops_kit.infra.plans import monitoring as plan
    from mlops_kit.settings import project_root

    job = plan.monitoring_job(settings, project.use_case(settings))
    account, region = platform.account_id, settings.region
    roles = iam.role_names(
        settings.prefix,
        jobs=naming.execution_role(settings),
        deploy=naming.deploy_role(settings),
        preview=naming.preview_role(settings),
    )
    role_arn = f"arn:aws:iam::{account}:role/{roles.monitoring}"
    invoker_arn = f"arn:aws:iam::{account}:role/{roles.monitoring_invoker}"
    image_uri = runtime.image_uri(
        account,
        region,
        naming.image_repository(settings),
        runtime.image_tag(project_root(settings.file.parent)),
    )
    definition = job.definition(
        role_arn=role_arn,
        image_uri=image_uri,
        kms_key_arn=platform.kms_key_arn,
        capture_bucket=platform.buckets["capture"],
        monitoring_bucket=platform.buckets["monitoring"],
    )
    sagemaker = client("sagemaker")
    try:
        sagemaker.describe_pipeline(PipelineName=job.pipeline_name)
        sagemaker.update_pipeline(
            PipelineName=job.pipeline_name, PipelineDefinition=definition, RoleArn=role_arn
        )
    except ClientError:
        sagemaker.create_pipeline(
            PipelineName=job.pipeline_name, PipelineDefinition=definition, RoleArn=role_arn
        )
    pipeline_arn = f"arn:aws:sagemaker:{region}:{account}:pipeline/{job.pipeline_name}"
    training_arn = f"arn:aws:sagemaker:{region}:{account}:pipeline/{job.training_pipeline}"

    cloudwatch = client("cloudwatch")
    request = job.alarm().put_metric_alarm_request()
    held = cloudwatch.describe_alarms(AlarmNames=[job.alarm_name])["MetricAlarms"]
    # unchanged, it is left alone: putting it again would reset its state, and with it the state changes
    # the retraining rule listens for
    if not held or any(held[0].get(k) != v for k, v in request.items()):
        cloudwatch.put_metric_alarm(**request)
    alarm_arn = cloudwatch.describe_alarms(AlarmNames=[job.alarm_name])["MetricAlarms"][0]["AlarmArn"]

    scheduler = client("scheduler")
    schedule = {
        "Name": job.schedule_name,
        "ScheduleExpression": job.schedule,
        "State": "ENABLED" if serving else "DISABLED",  # nothing captured to monitor before
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "Target": {
            "Arn": plan.START_PIPELINE_TARGET,
            "RoleArn": invoker_arn,
            "Input": job.schedule_request(),
            "RetryPolicy": {"MaximumRetryAttempts": 2},
        },
    }
    try:
        scheduler.get_schedule(Name=job.schedule_name)
        scheduler.update_schedule(**schedule)
    except ClientError:
        scheduler.create_schedule(**schedule)

    events = client("events")
    if job.retrain_on_drift:
        events.put_rule(
            Name=job.rule_name,
            EventPattern=plan.retrain_event_pattern(alarm_arn),
            State="ENABLED",
            Description=f"Start {settings.prefix}'s training pipeline when drift is detected",
        )
        events.put_targets(
            Rule=job.rule_name,
            Targets=[{"Id": "training-pipeline", "Arn": training_arn, "RoleArn": invoker_arn}],
        )
    elif any(r["Name"] == job.rule_name for r in events.list_rules(NamePrefix=job.rule_name)["Rules"]):
        targets = events.list_targets_by_rule(Rule=job.rule_name)["Targets"]
        if targets:
            events.remove_targets(Rule=job.rule_name, Ids=[t["Id"] for t in targets])
        events.delete_rule(Name=job.rule_name)
    return LocalMonitoring(
        job=job,
        pipeline_arn=pipeline_arn,
        role_arn=role_arn,
        invoker_role_arn=invoker_arn,
        image_uri=image_uri,
        alarm_arn=alarm_arn,
        training_pipeline_arn=training_arn,
        definition=definition,
    )
