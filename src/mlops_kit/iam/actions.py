"""What each AWS call the kit makes needs from IAM: its action(s), on which resource ARN(s), with which
request context, and whose resource policy has a say.

One entry per (service, operation) the kit uses; a call with no entry is an error naming it, so a new
AWS call in the code cannot pass unchecked. The ARNs follow the Service Authorization Reference. Some
calls need more than their own action:
- an object read or write in a bucket encrypted with SSE-KMS needs the caller's `kms:Decrypt` (read) or
  `kms:GenerateDataKey` (write) on the bucket's key, asked by S3 on the caller's behalf
  (`kms:ViaService` s3, the bucket as encryption context: Bucket Keys are on);
- a request that hands a role to SageMaker (a job's `RoleArn`, a model's `ExecutionRoleArn`) needs
  `iam:PassRole` on it, to sagemaker.amazonaws.com;
- `CopyObject` reads its source and writes its target.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote


class UnknownCall(LookupError):
    """A call the table has no entry for: add it to `mlops_kit.iam.actions`."""


@dataclass(frozen=True)
class Need:
    action: str
    resource: str
    owner: str = ""  # "bucket:<name>", "key:<arn>", "group:<name>": whose resource policy applies
    context: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class Where:
    """What the table needs beyond a call's parameters: the caller's account and region, and the key of
    each SSE-KMS bucket (bucket name -> key ARN)."""

    account: str
    region: str
    bucket_keys: Mapping[str, str] = field(default_factory=dict)
    aliases: Mapping[str, str] = field(default_factory=dict)  # alias name -> key ARN
    partition: str = "aws"

    def arn(self, service: str, resource: str, *, region: bool = True, account: str | None = None) -> str:
        return (
            f"arn:{self.partition}:{service}:{self.region if region else ''}:"
            f"{self.account if account is None else account}:{resource}"
        )


Rule = Callable[[Mapping[str, Any], Where], list[Need]]


# --------------------------------------------------------------------------------------------- S3


def _bucket(name: str) -> str:
    return f"arn:aws:s3:::{name}"


def _object(p: Mapping[str, Any]) -> str:
    return f"arn:aws:s3:::{p['Bucket']}/{p['Key']}"


def _sse(bucket: str, action: str, w: Where) -> list[Need]:
    key = w.bucket_keys.get(bucket)
    if not key:
        return []
    context = (
        ("kms:ViaService", f"s3.{w.region}.amazonaws.com"),
        ("kms:EncryptionContext:aws:s3:arn", _bucket(bucket)),
    )
    return [Need(action, key, f"key:{key}", context)]


def _s3_read(p: Mapping[str, Any], w: Where) -> list[Need]:
    return [Need("s3:GetObject", _object(p), f"bucket:{p['Bucket']}"), *_sse(p["Bucket"], "kms:Decrypt", w)]


def _s3_write(p: Mapping[str, Any], w: Where) -> list[Need]:
    return [
        Need("s3:PutObject", _object(p), f"bucket:{p['Bucket']}"),
        *_sse(p["Bucket"], "kms:GenerateDataKey", w),
    ]


def _s3_part(p: Mapping[str, Any], w: Where) -> list[Need]:
    # parts of an SSE-KMS multipart upload are encrypted under the upload's data key, which S3 decrypts
    return [Need("s3:PutObject", _object(p), f"bucket:{p['Bucket']}"), *_sse(p["Bucket"], "kms:Decrypt", w)]


def _s3_bucket(action: str, context: Callable[[Mapping[str, Any]], tuple] = lambda p: ()) -> Rule:
    return lambda p, w: [Need(action, _bucket(p["Bucket"]), f"bucket:{p['Bucket']}", context(p))]


def _s3_object(action: str) -> Rule:
    return lambda p, w: [Need(action, _object(p), f"bucket:{p['Bucket']}")]


def _s3_copy(p: Mapping[str, Any], w: Where) -> list[Need]:
    source = p["CopySource"]
    if isinstance(source, str):
        bucket, _, key = unquote(source.lstrip("/")).partition("/")
        source = {"Bucket": bucket, "Key": key.split("?versionId=")[0]}
    return [*_s3_read(source, w), *_s3_write(p, w)]


def _s3_delete_many(p: Mapping[str, Any], w: Where) -> list[Need]:
    return [
        Need("s3:DeleteObject", _object({"Bucket": p["Bucket"], "Key": o["Key"]}), f"bucket:{p['Bucket']}")
        for o in p.get("Delete", {}).get("Objects", [])
    ]


def _prefix(p: Mapping[str, Any]) -> tuple:
    return (("s3:prefix", p.get("Prefix", "")),)


S3: dict[str, Rule] = {
    "GetObject": _s3_read,
    "HeadObject": _s3_read,
    "PutObject": _s3_write,
    "CreateMultipartUpload": _s3_write,
    "UploadPart": _s3_part,
    "CompleteMultipartUpload": _s3_part,
    "AbortMultipartUpload": _s3_object("s3:AbortMultipartUpload"),
    "CopyObject": _s3_copy,
    "DeleteObject": _s3_object("s3:DeleteObject"),
    "DeleteObjects": _s3_delete_many,
    "GetObjectTagging": _s3_object("s3:GetObjectTagging"),
    "PutObjectTagging": _s3_object("s3:PutObjectTagging"),
    "ListObjectsV2": _s3_bucket("s3:ListBucket", _prefix),
    "ListObjects": _s3_bucket("s3:ListBucket", _prefix),
    "ListObjectVersions": _s3_bucket("s3:ListBucketVersions", _prefix),
    "HeadBucket": _s3_bucket("s3:ListBucket"),
    "GetBucketLocation": _s3_bucket("s3:GetBucketLocation"),
    "CreateBucket": _s3_bucket("s3:CreateBucket"),
    "PutBucketVersioning": _s3_bucket("s3:PutBucketVersioning"),
    "PutBucketEncryption": _s3_bucket("s3:PutEncryptionConfiguration"),
    "PutPublicAccessBlock": _s3_bucket("s3:PutBucketPublicAccessBlock"),
    "ListBuckets": lambda p, w: [Need("s3:ListAllMyBuckets", "*")],
}


# -------------------------------------------------------------------------------------- SageMaker


def _sm(kind: str, param: str, action: str | None = None) -> Callable[[str], Rule]:
    """A call on one named resource: `arn:aws:sagemaker:<region>:<account>:<kind>/<name>` (an ARN given
    as the parameter is used as it is)."""

    def rule_for(operation: str) -> Rule:
        def rule(p: Mapping[str, Any], w: Where) -> list[Need]:
            value = str(p[param])
            arn = (
                value
                if value.startswith("arn:")
                else w.arn("sagemaker", f"{kind}/{value.lower() if kind in _LOWER else value}")
            )
            owner = _group_owner(arn)
            return [Need(action or f"sagemaker:{operation}", arn, owner)]

        return rule

    return rule_for


_LOWER = (
    "feature-group",
    "endpoint",
    "endpoint-config",
    "model",
    "processing-job",
    "training-job",
    "pipeline",
)


def _group_owner(arn: str) -> str:
    """Packages and their groups answer to the group's resource policy."""
    resource = arn.split(":", 5)[-1]
    if resource.startswith("model-package-group/"):
        return f"group:{resource.split('/', 1)[1]}"
    if resource.startswith("model-package/") and resource.count("/") >= 2:
        return f"group:{resource.split('/')[1]}"
    return ""


def _pass_role(param: str) -> Rule:
    def rule(p: Mapping[str, Any], w: Where) -> list[Need]:
        return [
            Need("iam:PassRole", str(p[param]), "", (("iam:PassedToService", "sagemaker.amazonaws.com"),))
        ]

    return rule


def _both(*rules: Rule) -> Rule:
    return lambda p, w: [need for rule in rules for need in rule(p, w)]


def _create_package(p: Mapping[str, Any], w: Where) -> list[Need]:
    group = str(p["ModelPackageGroupName"])
    group = group.rsplit("/", 1)[-1]
    return [
        Need("sagemaker:CreateModelPackage", w.arn("sagemaker", f"model-package/{group}/*"), f"group:{group}")
    ]


def _list_packages(p: Mapping[str, Any], w: Where) -> list[Need]:
    """IAM scopes no list call; the resource is the group listed, whose policy has its say across
    accounts (the cross-stage grants)."""
    group = str(p.get("ModelPackageGroupName", ""))
    if not group:
        return [Need("sagemaker:ListModelPackages", "*")]
    arn = group if group.startswith("arn:") else w.arn("sagemaker", f"model-package-group/{group}")
    return [Need("sagemaker:ListModelPackages", arn, _group_owner(arn))]


def _any(action: str) -> Rule:
    return lambda p, w: [Need(action, "*")]


_SAGEMAKER_NAMED = {
    "DescribeModelPackage": _sm("model-package", "ModelPackageName"),
    "UpdateModelPackage": _sm("model-package", "ModelPackageArn"),
    "DeleteModelPackage": _sm("model-package", "ModelPackageName"),
    "DescribeModelPackageGroup": _sm("model-package-group", "ModelPackageGroupName"),
    "CreateModelPackageGroup": _sm("model-package-group", "ModelPackageGroupName"),
    "DescribeProcessingJob": _sm("processing-job", "ProcessingJobName"),
    "DescribeTrainingJob": _sm("training-job", "TrainingJobName"),
    "DescribePipeline": _sm("pipeline", "PipelineName"),
    "StartPipelineExecution": _sm("pipeline", "PipelineName"),
    "ListPipelineExecutions": _sm("pipeline", "PipelineName"),
    "DescribePipelineExecution": _sm("pipeline-execution", "PipelineExecutionArn"),
    "DescribeFeatureGroup": _sm("feature-group", "FeatureGroupName"),
    "DescribeEndpoint": _sm("endpoint", "EndpointName"),
    "DescribeEndpointConfig": _sm("endpoint-config", "EndpointConfigName"),
    "DescribeModel": _sm("model", "ModelName"),
    "CreateEndpoint": _sm("endpoint", "EndpointName"),
    "CreateEndpointConfig": _sm("endpoint-config", "EndpointConfigName"),
    "DeleteEndpoint": _sm("endpoint", "EndpointName"),
    "DeleteEndpointConfig": _sm("endpoint-config", "EndpointConfigName"),
    "DeleteModel": _sm("model", "ModelName"),
    "AddTags": _sm("", "ResourceArn"),
    "ListTags": _sm("", "ResourceArn"),
}
SAGEMAKER: dict[str, Rule] = {op: make(op) for op, make in _SAGEMAKER_NAMED.items()}
SAGEMAKER.update(
    {
        "CreateModelPackage": _create_package,
        "ListModelPackages": _list_packages,
        "ListModelPackageGroups": _any("sagemaker:ListModelPackageGroups"),
        "ListEndpoints": _any("sagemaker:ListEndpoints"),
        "ListPipelines": _any("sagemaker:ListPipelines"),
        "CreateProcessingJob": _both(
            _sm("processing-job", "ProcessingJobName")("CreateProcessingJob"), _pass_role("RoleArn")
        ),
        "CreateTrainingJob": _both(
            _sm("training-job", "TrainingJobName")("CreateTrainingJob"), _pass_role("RoleArn")
        ),
        "CreatePipeline": _both(_sm("pipeline", "PipelineName")("CreatePipeline"), _pass_role("RoleArn")),
        "UpdatePipeline": _both(_sm("pipeline", "PipelineName")("UpdatePipeline"), _pass_role("RoleArn")),
        "CreateModel": _both(_sm("model", "ModelName")("CreateModel"), _pass_role("ExecutionRoleArn")),
    }
)


def _feature_record(action: str) -> Rule:
    return lambda p, w: [
        Need(action, w.arn("sagemaker", f"feature-group/{str(p['FeatureGroupName']).lower()}"))
    ]


def _batch_get(p: Mapping[str, Any], w: Where) -> list[Need]:
    return [
        Need(
            "sagemaker:BatchGetRecord",
            w.arn("sagemaker", f"feature-group/{str(i['FeatureGroupName']).lower()}"),
        )
        for i in p.get("Identifiers", [])
    ]


FEATURESTORE: dict[str, Rule] = {
    "PutRecord": _feature_record("sagemaker:PutRecord"),
    "GetRecord": _feature_record("sagemaker:GetRecord"),
    "DeleteRecord": _feature_record("sagemaker:DeleteRecord"),
    "BatchGetRecord": _batch_get,
}
RUNTIME: dict[str, Rule] = {
    "InvokeEndpoint": lambda p, w: [
        Need("sagemaker:InvokeEndpoint", w.arn("sagemaker", f"endpoint/{str(p['EndpointName']).lower()}"))
    ],
}


# ------------------------------------------------------------------------------- KMS, CloudWatch, ...


def _key(action: str) -> Rule:
    def rule(p: Mapping[str, Any], w: Where) -> list[Need]:
        key = str(p["KeyId"])
        if key.startswith("alias/"):
            key = w.aliases.get(key, w.arn("kms", key))
        elif not key.startswith("arn:"):
            key = w.arn("kms", f"key/{key}")
        return [Need(action, key, f"key:{key}")]

    return rule


KMS: dict[str, Rule] = {
    **{
        op: _key(f"kms:{op}")
        for op in ("DescribeKey", "Decrypt", "Encrypt", "GenerateDataKey", "EnableKeyRotation")
    },
    "ListAliases": _any("kms:ListAliases"),
    "ListKeys": _any("kms:ListKeys"),
    "CreateKey": _any("kms:CreateKey"),
    "CreateAlias": lambda p, w: [
        Need("kms:CreateAlias", w.arn("kms", str(p["AliasName"]))),
        *_key("kms:CreateAlias")({"KeyId": p["TargetKeyId"]}, w),
    ],
}


def _alarms(action: str) -> Rule:
    def rule(p: Mapping[str, Any], w: Where) -> list[Need]:
        names = p.get("AlarmNames") or ([p["AlarmName"]] if "AlarmName" in p else [])
        if not names:
            return [Need(action, "*")]
        return [Need(action, w.arn("cloudwatch", f"alarm:{n}")) for n in names]

    return rule


CLOUDWATCH: dict[str, Rule] = {
    "PutMetricData": lambda p, w: [
        Need("cloudwatch:PutMetricData", "*", "", (("cloudwatch:namespace", p.get("Namespace", "")),))
    ],
    "PutMetricAlarm": _alarms("cloudwatch:PutMetricAlarm"),
    "DescribeAlarms": _alarms("cloudwatch:DescribeAlarms"),
    "SetAlarmState": _alarms("cloudwatch:SetAlarmState"),
    "DeleteAlarms": _alarms("cloudwatch:DeleteAlarms"),
    "GetMetricData": _any("cloudwatch:GetMetricData"),
    "GetMetricStatistics": _any("cloudwatch:GetMetricStatistics"),
    "ListMetrics": _any("cloudwatch:ListMetrics"),
}


def _rule(param: str, action: str) -> Rule:
    return lambda p, w: [Need(action, w.arn("events", f"rule/{p[param]}"))]


EVENTS: dict[str, Rule] = {
    "PutRule": _rule("Name", "events:PutRule"),
    "DescribeRule": _rule("Name", "events:DescribeRule"),
    "PutTargets": _rule("Rule", "events:PutTargets"),
    "ListTargetsByRule": _rule("Rule", "events:ListTargetsByRule"),
    "PutEvents": lambda p, w: [Need("events:PutEvents", w.arn("events", "event-bus/default"))],
}


def _log_group(action: str, *, stream: bool = False) -> Rule:
    def rule(p: Mapping[str, Any], w: Where) -> list[Need]:
        resource = f"log-group:{p['logGroupName']}"
        if stream:
            resource += f":log-stream:{p['logStreamName']}"
        return [Need(action, w.arn("logs", resource))]

    return rule


LOGS: dict[str, Rule] = {
    "CreateLogGroup": _log_group("logs:CreateLogGroup"),
    "DescribeLogStreams": _log_group("logs:DescribeLogStreams"),
    "CreateLogStream": _log_group("logs:CreateLogStream", stream=True),
    "PutLogEvents": _log_group("logs:PutLogEvents", stream=True),
}


def _repository(action: str) -> Rule:
    return lambda p, w: [Need(action, w.arn("ecr", f"repository/{p['repositoryName']}"))]


ECR: dict[str, Rule] = {
    "GetAuthorizationToken": _any("ecr:GetAuthorizationToken"),
    **{
        op: _repository(f"ecr:{op}")
        for op in (
            "BatchGetImage",
            "GetDownloadUrlForLayer",
            "BatchCheckLayerAvailability",
            "DescribeImages",
            "DescribeRepositories",
        )
    },
}
STS: dict[str, Rule] = {
    # GetCallerIdentity needs no permission: AWS answers it for any valid credentials
    "GetCallerIdentity": lambda p, w: [],
    "AssumeRole": lambda p, w: [Need("sts:AssumeRole", str(p["RoleArn"]))],
}

TABLE: dict[str, dict[str, Rule]] = {
    "s3": S3,
    "sagemaker": SAGEMAKER,
    "sagemaker-featurestore-runtime": FEATURESTORE,
    "sagemaker-runtime": RUNTIME,
    "kms": KMS,
    "cloudwatch": CLOUDWATCH,
    "events": EVENTS,
    "logs": LOGS,
    "ecr": ECR,
    "sts": STS,
}


def needs(service: str, operation: str, params: Mapping[str, Any], where: Where) -> list[Need]:
    """The IAM actions and resources one call needs."""
    rule = TABLE.get(service, {}).get(operation)
    if rule is None:
        raise UnknownCall(
            f"{service}:{operation} is not in the access ledger's table (mlops_kit.iam.actions): "
            "add its IAM action and resource there"
        )
    try:
        return rule(params, where)
    except KeyError as exc:
        raise ValueError(
            f"{service}:{operation}: the call has no {exc.args[0]} parameter the table needs"
        ) from None
