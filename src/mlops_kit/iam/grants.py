"""Least privilege, read from the ledger: every grant of a service role is used by a call of the kit's
lifecycle, or listed here with the reason it is there.

Most of these are what AWS's services themselves do with the role, which no code of the kit calls:
SageMaker pulls the image, writes the logs, encrypts the volume and uploads a job's outputs with the
job's role; SageMaker Pipelines polls, stops and tags the jobs it starts with the pipeline's role;
SageMaker hosting checks the rollback alarms and puts the endpoint's metrics with the model's role.
Keys are (role kind: the role name after `<prefix>-`, statement Sid, action); action "*" covers the
statement's every action.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

_SAGEMAKER_RUNS = "SageMaker runs the job with the role: it pulls the image, writes the logs"
_VOLUME = (
    "SageMaker encrypts the job's storage volume and its uploaded outputs under the key (through a grant)"
)

NOT_FROM_THE_KIT: dict[tuple[str, str, str], str] = {
    # the training pipeline and its jobs
    ("sagemaker", "Buckets", "s3:GetBucketLocation"): "SageMaker checks a job's S3 input and output buckets",
    ("sagemaker", "Buckets", "s3:GetBucketAcl"): "SageMaker checks a job's S3 input and output buckets",
    ("sagemaker", "DataKey", "kms:CreateGrant"): _VOLUME,
    ("sagemaker", "DataKey", "kms:DescribeKey"): _VOLUME,
    ("sagemaker", "DataKey", "kms:Encrypt"): _VOLUME,
    ("sagemaker", "DataKey", "kms:GenerateDataKeyWithoutPlaintext"): _VOLUME,
    (
        "sagemaker",
        "FeatureGroups",
        "*",
    ): "feature ingestion (mlops_kit.features.job) in a use case's Features "
    "step, and the feature groups' own use of their role; the kit's test project's pipeline ingests none",
    ("sagemaker", "OfflineStoreCatalog", "*"): "SageMaker Feature Store writes the offline store's Glue "
    "catalog with the feature group's role (this one)",
    ("sagemaker", "ImagePulls", "*"): _SAGEMAKER_RUNS,
    ("sagemaker", "RegistryLogin", "*"): _SAGEMAKER_RUNS,
    ("sagemaker", "Logs", "*"): _SAGEMAKER_RUNS,
    ("sagemaker", "ModelRegistry", "sagemaker:AddTags"): "SageMaker Pipelines tags what its steps create",
    ("sagemaker", "ModelRegistry", "sagemaker:DescribeModelPackageGroup"): "SageMaker Pipelines' register "
    "step reads the group it registers into (a service call: not verifiable locally)",
    ("sagemaker", "PipelineJobs", "sagemaker:AddTags"): "SageMaker Pipelines tags the jobs it starts",
    ("sagemaker", "PipelineJobs", "sagemaker:DescribeProcessingJob"): "SageMaker Pipelines polls its jobs",
    ("sagemaker", "PipelineJobs", "sagemaker:DescribeTrainingJob"): "SageMaker Pipelines polls its jobs",
    (
        "sagemaker",
        "PipelineJobs",
        "sagemaker:StopProcessingJob",
    ): "SageMaker Pipelines stops a stopped run's jobs",
    (
        "sagemaker",
        "PipelineJobs",
        "sagemaker:StopTrainingJob",
    ): "SageMaker Pipelines stops a stopped run's jobs",
    ("sagemaker", "PipelineJobs", "sagemaker:CreateHyperParameterTuningJob"): "a tuning step, with "
    "training.tuning_trials > 0 (the test project's local environment has none)",
    (
        "sagemaker",
        "PipelineJobs",
        "sagemaker:DescribeHyperParameterTuningJob",
    ): "a tuning step (tuning_trials)",
    ("sagemaker", "PipelineJobs", "sagemaker:StopHyperParameterTuningJob"): "a tuning step (tuning_trials)",
    ("sagemaker", "WriteOutputs", "s3:AbortMultipartUpload"): "SageMaker aborts a failed multipart upload of "
    "a job's output",
    # the endpoint's model
    (
        "serving",
        "EndpointMetrics",
        "*",
    ): "SageMaker hosting puts the endpoint's metrics with the model's role",
    ("serving", "RollbackAlarms", "*"): "SageMaker checks the rollback alarms during a blue/green update",
    ("serving", "ImagePulls", "*"): "SageMaker hosting pulls the image with the model's role",
    ("serving", "RegistryLogin", "*"): "SageMaker hosting pulls the image with the model's role",
    ("serving", "Logs", "*"): "SageMaker hosting writes the container's logs with the model's role",
    # the monitoring pipeline and its job
    ("monitoring", "DataKey", "*"): _VOLUME,
    ("monitoring", "ImagePulls", "*"): _SAGEMAKER_RUNS,
    ("monitoring", "RegistryLogin", "*"): _SAGEMAKER_RUNS,
    ("monitoring", "Logs", "*"): _SAGEMAKER_RUNS,
    (
        "monitoring",
        "MonitorJob",
        "*",
    ): "the monitoring pipeline (SageMaker Pipelines, with this role) starts, polls and tags the job",
    ("monitoring", "PassSelfToJobs", "*"): "the monitoring pipeline passes this role to its job",
    (
        "monitoring",
        "WriteReports",
        "*",
    ): "SageMaker uploads the job's /opt/ml/processing/output to the report "
    "prefix; the monitor itself writes nothing to S3",
}


def unexplained(unused: Mapping[str, Sequence[tuple[str, str]]], prefix: str) -> tuple[list[str], list[str]]:
    """The unused grants with no listed reason, and the listed reasons that no longer apply (a grant used
    after all, or gone), so the list cannot go stale."""
    missing, listed = [], set()
    for role, grants in unused.items():
        kind = role.rsplit("/", 1)[-1].removeprefix(f"{prefix}-")
        for sid, action in grants:
            key = (kind, sid, action) if (kind, sid, action) in NOT_FROM_THE_KIT else (kind, sid, "*")
            if key in NOT_FROM_THE_KIT:
                listed.add(key)
            else:
                missing.append(f"{role}: statement {sid} grants {action}, which no call of the ledger uses")
    kinds = {role.rsplit("/", 1)[-1].removeprefix(f"{prefix}-") for role in unused}
    stale = [
        f"{kind}/{sid}/{action}: listed as unused ({why}), but the ledger uses it or the role has no such grant"
        for (kind, sid, action), why in NOT_FROM_THE_KIT.items()
        if kind in kinds and (kind, sid, action) not in listed
    ]
    return missing, stale
