"""IAM documents of the platform: trust policies, role policies, the key policy and bucket policies.

Every document is built from plain values (names, ARNs, account, region) so it can be unit tested and
checked against botocore's service models; the components only serialise them. No statement grants
`*` on `*`: list-style calls that IAM cannot scope to a resource get `*` resources with named actions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mlops_kit.infra.plans.monitoring import baseline_uri, native_monitor_uri, reports_uri
from mlops_kit.infra.plans.serving import rollback_alarm_names, scaling_resource_id
from mlops_kit.infra.plans.storage import endpoint_capture_uri

GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
GITHUB_OIDC_URL = f"https://{GITHUB_OIDC_HOST}"
GITHUB_AUDIENCE = "sts.amazonaws.com"
MONITORING_NAMESPACE = "mlops-kit/monitoring"
# Application Auto Scaling's service-linked role for SageMaker variants: it creates the target-tracking
# alarms (its managed policy allows cloudwatch:PutMetricAlarm/DeleteAlarms on alarm:TargetTracking*).
# The IAM writes that change what a role may do, or who may assume it: the CI roles never get them on
# a CI role (itself included).
ROLE_WRITES = (
    "iam:Put*",
    "iam:Attach*",
    "iam:Detach*",
    "iam:Delete*",
    "iam:Update*",
    "iam:Create*",
    "iam:Tag*",
    "iam:Untag*",
    "iam:PassRole",
)
AUTOSCALING_SERVICE = "sagemaker.application-autoscaling.amazonaws.com"
AUTOSCALING_SERVICE_ROLE = "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"

Document = dict[str, Any]


def statement(
    actions: Sequence[str],
    resources: Sequence[str],
    *,
    sid: str = "",
    effect: str = "Allow",
    condition: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    if not actions or not resources:
        raise ValueError(f"statement {sid or '(unnamed)'} needs at least one action and one resource")
    out: dict[str, Any] = {"Effect": effect, "Action": sorted(set(actions)), "Resource": list(resources)}
    if sid:
        out = {"Sid": sid, **out}
    if condition:
        out["Condition"] = dict(condition)
    return out


def document(*statements: dict[str, Any]) -> Document:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def service_trust(*services: str, account_id: str | None = None) -> Document:
    """Lets AWS services assume the role; with `account_id`, only on behalf of that account."""
    condition = {"StringEquals": {"aws:SourceAccount": account_id}} if account_id else None
    stmt: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": sorted(services)},
        "Action": "sts:AssumeRole",
    }
    if condition:
        stmt["Condition"] = condition
    return document(stmt)


def github_subject(repository: str, *, environment: str | None = None) -> str:
    """The OIDC `sub` claim GitHub signs: a deployment job's environment, or a pull request."""
    if "/" not in repository or "*" in repository:
        raise ValueError(f"github repository must be owner/name without wildcards, got {repository!r}")
    if environment is None:
        return f"repo:{repository}:pull_request"
    if not environment or "*" in environment:
        raise ValueError(f"github environment must be a plain name, got {environment!r}")
    return f"repo:{repository}:environment:{environment}"


def github_trust(provider_arn: str, subject: str) -> Document:
    """Trust GitHub's OIDC tokens for exactly one subject (repository + environment or pull requests)."""
    return document(
        {
            "Effect": "Allow",
            "Principal": {"Federated": provider_arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {
                    f"{GITHUB_OIDC_HOST}:aud": GITHUB_AUDIENCE,
                    f"{GITHUB_OIDC_HOST}:sub": subject,
                }
            },
        }
    )


@dataclass(frozen=True)
class Scope:
    """Where one environment's resources live, for building ARNs."""

    account_id: str
    region: str
    prefix: str
    partition: str = "aws"

    def arn(self, service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
        return (
            f"arn:{self.partition}:{service}:{self.region if region else ''}:"
            f"{self.account_id if account else ''}:{resource}"
        )

    def role_arn(self, name: str) -> str:
        return f"arn:{self.partition}:iam::{self.account_id}:role/{name}"

    def bucket_arns(self, buckets: Iterable[str]) -> list[str]:
        names = sorted(buckets)
        return [f"arn:{self.partition}:s3:::{b}" for b in names] + [
            f"arn:{self.partition}:s3:::{b}/*" for b in names
        ]


@dataclass(frozen=True)
class RoleNames:
    """Every role one environment's stack creates, by name. The service roles are those AWS services
    assume, which `pulumi up` in CI manages; the CI roles are those GitHub Actions assume, which only an
    administrator changes."""

    jobs: str  # the training pipeline and its jobs (`mlops_kit.naming.execution_role`)
    endpoint: str  # the endpoint's model
    monitoring: str  # the monitoring pipeline and its job
    monitoring_invoker: str  # the schedule and the retraining rule start pipelines with it
    retrain_scheduler: str  # the periodic retraining schedule's
    deploy: str
    preview: str

    @property
    def service(self) -> tuple[str, ...]:
        return (self.jobs, self.endpoint, self.monitoring, self.monitoring_invoker, self.retrain_scheduler)

    @property
    def ci(self) -> tuple[str, ...]:
        return (self.deploy, self.preview)


def role_names(prefix: str, *, jobs: str, deploy: str, preview: str) -> RoleNames:
    """The names of an environment's roles: those the kit looks up by name come from `mlops_kit.naming`,
    the others are `<prefix>-<purpose>`."""
    return RoleNames(
        jobs=jobs,
        endpoint=f"{prefix}-serving",
        monitoring=f"{prefix}-monitoring",
        monitoring_invoker=f"{prefix}-monitoring-invoker",
        retrain_scheduler=f"{prefix}-retrain-scheduler",
        deploy=deploy,
        preview=preview,
    )


def key_policy(scope: Scope, *, extra: Sequence[Mapping[str, Any]] = ()) -> Document:
    """The data key: administered by the account (IAM decides who), usable by CloudWatch for the
    encrypted alarm topic and by EventBridge/Scheduler deliveries from this account; `extra` statements
    let other stages decrypt what they copy (`plans.stages.key_statements`)."""
    root = f"arn:{scope.partition}:iam::{scope.account_id}:root"
    return document(
        {
            "Sid": "AccountAdministers",
            "Effect": "Allow",
            "Principal": {"AWS": root},
            "Action": "kms:*",
            "Resource": "*",
        },
        {
            "Sid": "AlarmDelivery",
            "Effect": "Allow",
            "Principal": {"Service": ["cloudwatch.amazonaws.com", "events.amazonaws.com"]},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:SourceAccount": scope.account_id}},
        },
        *extra,
    )


def tls_only_bucket_policy(
    bucket: str, partition: str = "aws", *, extra: Sequence[Mapping[str, Any]] = ()
) -> Document:
    """Deny every request to the bucket that does not come over TLS; `extra` statements grant other
    stages their reads (`plans.stages.bucket_statements`)."""
    return document(
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [f"arn:{partition}:s3:::{bucket}", f"arn:{partition}:s3:::{bucket}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
        *extra,
    )


def model_package_group_policy(
    group_arn: str, reader_accounts: Sequence[str], *, extra: Sequence[Mapping[str, Any]] = ()
) -> Document:
    """Let other accounts (e.g. prod reading staging's registry) describe and use the group's packages;
    `extra` statements let the stages that copy from this one read its packages (`plans.stages`)."""
    if not reader_accounts:
        if extra:
            return document(*extra)
        raise ValueError("a model package group policy needs at least one reader account")
    package_arn = group_arn.replace(":model-package-group/", ":model-package/", 1) + "/*"
    principals = [f"arn:aws:iam::{a}:root" for a in sorted(set(reader_accounts))]
    return document(
        {
            "Sid": "ReadGroup",
            "Effect": "Allow",
            "Principal": {"AWS": principals},
            "Action": ["sagemaker:DescribeModelPackageGroup"],
            "Resource": group_arn,
        },
        {
            "Sid": "ReadPackages",
            "Effect": "Allow",
            "Principal": {"AWS": principals},
            "Action": ["sagemaker:DescribeModelPackage", "sagemaker:ListModelPackages"],
            "Resource": package_arn,
        },
        *extra,
    )


# What the pipeline's jobs read, and what they write, by bucket purpose (`mlops_kit.naming.BUCKET_PURPOSES`):
# raw data in; feature records (the offline store) and models, evaluations and baselines out. Captured
# requests and monitoring reports are the endpoint's and the monitor's, never the jobs'.
JOBS_READ = ("raw",)
JOBS_WRITE = ("features", "artifacts")


def jobs_role_policy(
    scope: Scope,
    *,
    role_arn: str,
    buckets: Mapping[str, str],
    kms_key_arn: str,
    model_package_group: str,
    glue_database: str,
    image_repository: str,
) -> Document:
    """The role of the training pipeline and of its processing and training jobs (and of the feature
    groups' offline store): read the raw bucket, write the features and artifacts buckets (no deletes),
    its key, its jobs, its model package group, its feature groups and their catalog, its logs, pulls of
    the environment's own runtime image. Jobs that SageMaker Pipelines creates get generated names, so
    job ARNs are scoped by type, not by name."""
    missing = [p for p in (*JOBS_READ, *JOBS_WRITE) if p not in buckets]
    if missing:
        raise ValueError(f"the jobs role needs the {', '.join(missing)} bucket(s)")
    sm = scope.arn
    s3 = f"arn:{scope.partition}:s3:::"
    return document(
        statement(
            ["s3:ListBucket", "s3:GetBucketLocation", "s3:GetBucketAcl"],
            [f"{s3}{buckets[p]}" for p in (*JOBS_READ, *JOBS_WRITE)],
            sid="Buckets",
        ),
        statement(["s3:GetObject"], [f"{s3}{buckets[p]}/*" for p in JOBS_READ], sid="ReadInputs"),
        statement(
            ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
            [f"{s3}{buckets[p]}/*" for p in JOBS_WRITE],
            sid="WriteOutputs",
        ),
        statement(
            [
                "kms:Decrypt",
                "kms:Encrypt",
                "kms:GenerateDataKey",
                "kms:GenerateDataKeyWithoutPlaintext",
                "kms:DescribeKey",
                "kms:CreateGrant",
            ],
            [kms_key_arn],
            sid="DataKey",
        ),
        statement(
            [
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
            ],
            [
                sm("sagemaker", "processing-job/*"),
                sm("sagemaker", "training-job/*"),
                sm("sagemaker", "hyper-parameter-tuning-job/*"),
            ],
            sid="PipelineJobs",
        ),
        statement(
            [
                "sagemaker:CreateModelPackage",
                "sagemaker:DescribeModelPackage",
                "sagemaker:DescribeModelPackageGroup",
                "sagemaker:AddTags",
            ],
            [
                sm("sagemaker", f"model-package-group/{model_package_group}"),
                sm("sagemaker", f"model-package/{model_package_group}/*"),
            ],
            sid="ModelRegistry",
        ),
        statement(["sagemaker:ListModelPackages"], ["*"], sid="ListPackages"),
        statement(
            [
                "sagemaker:PutRecord",
                "sagemaker:GetRecord",
                "sagemaker:BatchGetRecord",
                "sagemaker:DeleteRecord",
                "sagemaker:DescribeFeatureGroup",
            ],
            [sm("sagemaker", f"feature-group/{scope.prefix}-*")],
            sid="FeatureGroups",
        ),
        statement(
            [
                "glue:GetDatabase",
                "glue:GetTable",
                "glue:CreateTable",
                "glue:UpdateTable",
                "glue:GetPartitions",
                "glue:BatchCreatePartition",
            ],
            [
                sm("glue", "catalog"),
                sm("glue", f"database/{glue_database}"),
                sm("glue", f"table/{glue_database}/*"),
            ],
            sid="OfflineStoreCatalog",
        ),
        _logs(scope, "/aws/sagemaker/ProcessingJobs", "/aws/sagemaker/TrainingJobs"),
        # GetAuthorizationToken has no resource-level permission; the token alone pulls nothing
        statement(["ecr:GetAuthorizationToken"], ["*"], sid="RegistryLogin"),
        _image_pulls(scope, image_repository),
        _pass_self(role_arn),
    )


def endpoint_role_policy(
    scope: Scope,
    *,
    endpoint: str,
    model_artifacts_uri: str,
    capture_bucket: str,
    kms_key_arn: str,
    image_repository: str,
) -> Document:
    """The endpoint's model: read the models the training pipeline writes and pull the runtime image;
    write its captured requests (SageMaker delivers data capture with the model's role), its logs, its
    metrics; see its rollback alarms (SageMaker checks them with this role during a blue/green update).
    Nothing else: no job, no pipeline, no other bucket, no delete."""
    capture = _object_arn(scope, endpoint_capture_uri(capture_bucket, endpoint))
    alarms = [scope.arn("cloudwatch", f"alarm:{name}") for name in rollback_alarm_names(endpoint)]
    return document(
        statement(["s3:GetObject"], [_object_arn(scope, model_artifacts_uri) + "*"], sid="ModelArtifacts"),
        statement(["s3:PutObject"], [capture + "*"], sid="DataCapture"),
        # Decrypt the model artifact; a data key for each capture file (SSE-KMS)
        statement(["kms:Decrypt", "kms:GenerateDataKey"], [kms_key_arn], sid="DataKey"),
        _logs(scope, f"/aws/sagemaker/Endpoints/{endpoint}"),
        statement(
            ["cloudwatch:PutMetricData"],
            ["*"],
            sid="EndpointMetrics",
            condition={"StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/Endpoints"}},
        ),
        statement(["cloudwatch:DescribeAlarms"], alarms, sid="RollbackAlarms"),
        statement(["ecr:GetAuthorizationToken"], ["*"], sid="RegistryLogin"),
        _image_pulls(scope, image_repository),
    )


def monitoring_role_policy(
    scope: Scope,
    *,
    role_arn: str,
    endpoint: str,
    capture_bucket: str,
    monitoring_bucket: str,
    kms_key_arn: str,
    image_repository: str,
    native_model_monitor: bool = False,
) -> Document:
    """The monitoring pipeline and its job: read the endpoint's captured requests and its baseline, write
    its reports (and, with the opt-in native Model Monitor, that job's outputs), put the monitor's
    CloudWatch metrics. It starts no other pipeline: retraining on drift is the alarm rule's, with the
    invoker role (`start_pipelines_policy`), only when the settings ask for it."""
    capture = _object_arn(scope, endpoint_capture_uri(capture_bucket, endpoint))
    baseline = _object_arn(scope, baseline_uri(monitoring_bucket, endpoint))
    reports = _object_arn(scope, reports_uri(monitoring_bucket, endpoint).rstrip("/") + "/")
    writes = [reports + "*"]
    if native_model_monitor:
        writes.append(_object_arn(scope, native_monitor_uri(monitoring_bucket, endpoint)) + "/*")
    return document(
        # SageMaker lists an S3Prefix input before it downloads it: these prefixes only
        _list_prefix(scope, endpoint_capture_uri(capture_bucket, endpoint), sid="ListCapture"),
        _list_prefix(scope, baseline_uri(monitoring_bucket, endpoint), sid="ListBaseline"),
        statement(["s3:GetObject"], [capture + "*", baseline + "*"], sid="ReadInputs"),
        statement(["s3:PutObject", "s3:AbortMultipartUpload"], writes, sid="WriteReports"),
        # read the encrypted inputs, encrypt the outputs and the job's volume (a grant, as its creator)
        statement(
            ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey", "kms:CreateGrant"],
            [kms_key_arn],
            sid="DataKey",
        ),
        statement(
            [
                "sagemaker:CreateProcessingJob",
                "sagemaker:DescribeProcessingJob",
                "sagemaker:StopProcessingJob",
                "sagemaker:AddTags",
            ],
            [scope.arn("sagemaker", "processing-job/*")],
            sid="MonitorJob",
        ),
        _logs(scope, "/aws/sagemaker/ProcessingJobs"),
        statement(
            ["cloudwatch:PutMetricData"],
            ["*"],
            sid="MonitorMetrics",
            condition={"StringEquals": {"cloudwatch:namespace": MONITORING_NAMESPACE}},
        ),
        statement(["ecr:GetAuthorizationToken"], ["*"], sid="RegistryLogin"),
        _image_pulls(scope, image_repository),
        _pass_self(role_arn),
    )


def _logs(scope: Scope, *groups: str) -> dict[str, Any]:
    """Write to these log groups (and their streams); SageMaker creates them on first use."""
    return statement(
        ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
        [scope.arn("logs", f"log-group:{g}*") for g in groups],
        sid="Logs",
    )


def _image_pulls(scope: Scope, repository: str) -> dict[str, Any]:
    return statement(
        ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
        [image_repository_arn(scope, repository)],
        sid="ImagePulls",
    )


def _pass_self(role_arn: str) -> dict[str, Any]:
    """A pipeline's role passes itself to the jobs it starts, and only to SageMaker."""
    return statement(
        ["iam:PassRole"],
        [role_arn],
        sid="PassSelfToJobs",
        condition={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
    )


def _list_prefix(scope: Scope, uri: str, *, sid: str) -> dict[str, Any]:
    bucket, _, key = uri[len("s3://") :].partition("/")
    return statement(
        ["s3:ListBucket"],
        [f"arn:{scope.partition}:s3:::{bucket}"],
        sid=sid,
        condition={"StringLike": {"s3:prefix": f"{key}*"}},
    )


def _object_arn(scope: Scope, uri: str) -> str:
    """`s3://bucket/key` → the object ARN (a prefix ending in `/` stays one)."""
    if not uri.startswith("s3://"):
        raise ValueError(f"expected an s3:// URI, got {uri!r}")
    return f"arn:{scope.partition}:s3:::{uri[len('s3://') :]}"


def target_tracking_alarms_arn(scope: Scope, endpoint: str) -> str:
    """The alarms Application Auto Scaling names for a target-tracking policy on the endpoint's variant."""
    if not endpoint or "*" in endpoint or "?" in endpoint:
        raise ValueError(f"endpoint must be a plain name, got {endpoint!r}")
    return scope.arn("cloudwatch", f"alarm:TargetTracking-{scaling_resource_id(endpoint)}-*")


def autoscaling_service_role_arn(scope: Scope) -> str:
    return (
        f"arn:{scope.partition}:iam::{scope.account_id}:role/aws-service-role/{AUTOSCALING_SERVICE}/"
        f"{AUTOSCALING_SERVICE_ROLE}"
    )


def image_repository_arn(scope: Scope, repository: str) -> str:
    """The environment's own ECR repository: the only one its roles pull from or push to."""
    if not repository or "*" in repository or "?" in repository:
        raise ValueError(f"image repository must be a plain name, got {repository!r}")
    return scope.arn("ecr", f"repository/{repository}")


def start_pipelines_policy(pipeline_arns: Sequence[str]) -> Document:
    """For the schedules and the retraining rule: start these pipelines, nothing else."""
    return document(
        statement(["sagemaker:StartPipelineExecution"], sorted(set(pipeline_arns)), sid="StartPipelines")
    )


def state_backend_bucket(backend: str) -> str:
    """`s3://bucket/optional/prefix` → bucket; anything else (Pulumi Cloud, file://) has none."""
    if not backend.startswith("s3://"):
        return ""
    return backend[len("s3://") :].split("/", 1)[0].split("?", 1)[0]


def secrets_key_alias(provider: str) -> str:
    """`awskms://alias/name?region=...` → alias/name; other providers hold no AWS key."""
    if not provider.startswith("awskms://"):
        return ""
    return provider[len("awskms://") :].split("?", 1)[0]


@dataclass(frozen=True)
class StateObjects:
    """Where Pulumi's S3 ("DIY") backend keeps one stack of one project, under the backend's folder
    (pulumi/pulumi pkg/backend/diy, project layout): the checkpoint `.pulumi/stacks/<project>/<stack>.json`
    with its `.json.bak`, compressed forms and `.pulumi-tags`; `.pulumi/history/<project>/<stack>/`,
    `.pulumi/backups/...` and `.pulumi/journal/...` for updates; the locks under
    `.pulumi/locks/<fully qualified stack name>/`, which is `organization/<project>/<stack>`; and the
    backend's own `.pulumi/meta.yaml`, which every command reads."""

    bucket: str
    folder: str  # "" or "<prefix>/"
    project: str
    stack: str
    partition: str = "aws"

    def _arn(self, key: str) -> str:
        return f"arn:{self.partition}:s3:::{self.bucket}/{self.folder}.pulumi/{key}"

    @property
    def bucket_arn(self) -> str:
        return f"arn:{self.partition}:s3:::{self.bucket}"

    @property
    def meta(self) -> str:
        return self._arn("meta.yaml")

    @property
    def checkpoint(self) -> str:
        """`<stack>.json`, `.json.bak`, `.json.gz`, `.pulumi-tags`: `<stack>.` bounds the name."""
        return self._arn(f"stacks/{self.project}/{self.stack}.*")

    @property
    def update_records(self) -> list[str]:
        return [
            self._arn(f"{kind}/{self.project}/{self.stack}/*") for kind in ("history", "backups", "journal")
        ]

    @property
    def locks(self) -> str:
        return self._arn(f"locks/organization/{self.project}/{self.stack}/*")


def state_objects(backend: str, *, project: str, stack: str, partition: str = "aws") -> StateObjects | None:
    """The stack's own objects in an `s3://bucket[/folder]` backend; None for other backends."""
    bucket = state_backend_bucket(backend)
    if not bucket:
        return None
    for what, name in (("project", project), ("stack", stack)):
        if not name or any(c in name for c in "*?/"):
            raise ValueError(f"the state of a stack needs a plain {what} name, got {name!r}")
    path = backend[len("s3://") + len(bucket) :].split("?", 1)[0].strip("/")
    return StateObjects(bucket, f"{path}/" if path else "", project, stack, partition)


def _state_statements(
    scope: Scope, state: StateObjects | None, secrets_provider: str, *, write: bool
) -> list[dict[str, Any]]:
    """One stack's state, no other's: its objects in the backend bucket and the secrets key.

    The stack's objects only; but listing the bucket is granted whole: S3 answers a request for a key that
    does not exist (a stack's absent `.pulumi-tags`, a checkpoint's compressed form) with 404 only to a
    caller who may list the bucket, and with 403 otherwise, which Pulumi reports as an error. A listing
    shows other stacks' names, not their contents."""
    out = []
    alias = secrets_key_alias(secrets_provider)
    if state is not None:
        out.append(
            statement(["s3:ListBucket", "s3:GetBucketLocation"], [state.bucket_arn], sid="StateBucket")
        )
        if write:
            out.append(statement(["s3:GetObject"], [state.meta], sid="StateBackend"))
            objects = [state.checkpoint, *state.update_records, state.locks]
            out.append(
                statement(["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], objects, sid="StateObjects")
            )
        else:
            # a preview reads the checkpoint, and takes and releases the stack's lock (reading the
            # locks others hold, to say who holds them)
            out.append(
                statement(["s3:GetObject"], [state.meta, state.checkpoint, state.locks], sid="StateRead")
            )
            out.append(statement(["s3:PutObject", "s3:DeleteObject"], [state.locks], sid="StateLocks"))
        if alias:
            # S3 encrypts the state objects with the key (SSE-KMS), asking KMS on the caller's behalf with
            # the object's ARN, or the bucket's with an S3 Bucket Key, as encryption context: this stack's
            # objects and the bucket only.
            contexts = [state.bucket_arn, state.meta, state.checkpoint, *state.update_records, state.locks]
            out.append(
                statement(
                    ["kms:Decrypt", "kms:GenerateDataKey"],
                    [scope.arn("kms", "key/*")],
                    sid="StateObjectsKey",
                    condition={
                        "ForAnyValue:StringEquals": {"kms:ResourceAliases": alias},
                        "StringLike": {
                            "kms:ViaService": f"s3.*.{_dns_suffix(scope.partition)}",
                            "kms:EncryptionContext:aws:s3:arn": contexts,
                        },
                    },
                )
            )
    if alias:
        # Pulumi's awskms secrets provider (gocloud.dev secrets/awskms) decrypts the stack's data key
        # (`encryptedkey` in the stack's settings file) with no encryption context, so the key alone is
        # the scope there; the data key was encrypted once, by `pulumi stack init`, by an administrator.
        out.append(
            statement(
                ["kms:Decrypt"],
                [scope.arn("kms", "key/*")],
                sid="StateSecrets",
                condition={"ForAnyValue:StringEquals": {"kms:ResourceAliases": alias}},
            )
        )
    return out


def _dns_suffix(partition: str) -> str:
    return "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"


def deploy_policy(
    scope: Scope,
    *,
    environment: str,
    image_repository: str,
    endpoint: str,
    roles: RoleNames,
    state: StateObjects | None = None,
    secrets_provider: str = "",
    manages_oidc_provider: bool = True,
) -> Document:
    """What `pulumi up` needs for one environment: full control of resources named `<prefix>-*` (or
    tagged with the environment, for KMS keys whose ARNs carry no name), its own image repository (manage
    it, push the runtime image to it), and nothing else.

    Of the stack's roles it changes only those the services assume (`roles.service`); the CI roles
    (`roles.ci`: itself and the preview role) it may read but never change, so a change to them is applied
    by an administrator, as the first `pulumi up` is."""
    p = scope.prefix
    arn = scope.arn
    tagged = {"StringEquals": {"aws:ResourceTag/environment": environment}}
    statements = [
        statement(
            ["s3:*"],
            [f"arn:{scope.partition}:s3:::{p}-*", f"arn:{scope.partition}:s3:::{p}-*/*"],
            sid="Buckets",
        ),
        # No kms:CreateKey, which has no resource to scope it by: the environment's one key is created by
        # the first, administrator's, `pulumi up`. A condition would not make it safe: CreateKey with tags
        # also needs kms:TagResource on every key of the account (AWS KMS's rule), and a role that may tag
        # any key `environment=<env>` could take over any untagged key through ManageTaggedKeys below.
        statement(["kms:ListAliases", "kms:ListKeys"], ["*"], sid="ListKeys"),
        statement(["kms:*"], [arn("kms", "key/*")], sid="ManageTaggedKeys", condition=tagged),
        statement(
            ["kms:CreateAlias", "kms:DeleteAlias", "kms:UpdateAlias"],
            [arn("kms", f"alias/{p}*"), arn("kms", "key/*")],
            sid="KeyAliases",
        ),
        # ManageTaggedKeys above also covers what an encrypted repository needs of the key (DescribeKey,
        # CreateGrant, RetireGrant): ECR encrypts the layers through a grant the creator makes
        statement(
            [
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
                # push the runtime image
                "ecr:InitiateLayerUpload",
                "ecr:UploadLayerPart",
                "ecr:CompleteLayerUpload",
                "ecr:PutImage",
                "ecr:BatchCheckLayerAvailability",
                "ecr:BatchGetImage",
                "ecr:GetDownloadUrlForLayer",
                "ecr:DescribeImages",
                # a replaced image is deleted by digest, and force_delete empties the repository first
                "ecr:BatchDeleteImage",
            ],
            [image_repository_arn(scope, image_repository)],
            sid="ImageRepository",
        ),
        statement(["ecr:GetAuthorizationToken"], ["*"], sid="RegistryLogin"),
        statement(["sagemaker:*"], [arn("sagemaker", f"*/{p}-*")], sid="SageMaker"),
        statement(["sagemaker:List*", "sagemaker:Search"], ["*"], sid="SageMakerLists"),
        statement(
            [
                "iam:GetRole",
                "iam:GetRolePolicy",
                "iam:ListRolePolicies",
                "iam:ListAttachedRolePolicies",
                "iam:ListInstanceProfilesForRole",
            ],
            [scope.role_arn(f"{p}-*")],
            sid="ReadRoles",
        ),
        # Changes only to the roles the services assume, each by name: never to a CI role (its own
        # included), so no run of CI can widen what CI may do.
        statement(
            [
                "iam:CreateRole",
                "iam:DeleteRole",
                "iam:UpdateRole",
                "iam:UpdateAssumeRolePolicy",
                "iam:TagRole",
                "iam:UntagRole",
                "iam:PutRolePolicy",
                "iam:DeleteRolePolicy",
                "iam:PassRole",
            ],
            [scope.role_arn(r) for r in roles.service],
            sid="ManageServiceRoles",
        ),
        statement(
            list(ROLE_WRITES),
            [scope.role_arn(r) for r in roles.ci],
            sid="NeverChangeCiRoles",
            effect="Deny",
        ),
        statement(
            ["glue:*"],
            [
                arn("glue", "catalog"),
                arn("glue", f"database/{glue_database_name(p)}"),
                arn("glue", f"table/{glue_database_name(p)}/*"),
            ],
            sid="Catalog",
        ),
        statement(
            ["events:*"],
            [arn("events", f"rule/{p}-*")],
            sid="Rules",
        ),
        statement(["scheduler:*"], [arn("scheduler", f"schedule/default/{p}-*")], sid="Schedules"),
        statement(["sns:*"], [arn("sns", f"{p}-*")], sid="Topics"),
        statement(
            ["cloudwatch:*"],
            [
                arn("cloudwatch", f"alarm:{p}-*"),
                f"arn:{scope.partition}:cloudwatch::{scope.account_id}:dashboard/{p}-*",
            ],
            sid="AlarmsAndDashboards",
        ),
        statement(["cloudwatch:DescribeAlarms", "cloudwatch:ListTagsForResource"], ["*"], sid="ReadAlarms"),
        # Target tracking: Application Auto Scaling creates and deletes the policy's alarms itself, with
        # its service-linked role, under names it chooses (`TargetTracking-<resource id>-AlarmHigh-<uuid>`,
        # `...-AlarmLow-...`), and first checks that the caller of PutScalingPolicy could do the same (its
        # "permissions validation": PutMetricAlarm, DescribeAlarms, DeleteAlarms). So the deploy role gets
        # those three on this environment's endpoint's target-tracking alarms, and nothing wider.
        statement(
            ["cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms", "cloudwatch:DescribeAlarms"],
            [target_tracking_alarms_arn(scope, endpoint)],
            sid="TargetTrackingAlarms",
        ),
        statement(
            [
                "application-autoscaling:RegisterScalableTarget",
                "application-autoscaling:DeregisterScalableTarget",
                "application-autoscaling:DescribeScalableTargets",
                "application-autoscaling:PutScalingPolicy",
                "application-autoscaling:DeleteScalingPolicy",
                "application-autoscaling:DescribeScalingPolicies",
                "application-autoscaling:TagResource",
                "application-autoscaling:ListTagsForResource",
            ],
            ["*"],
            sid="Autoscaling",
        ),
        # The first RegisterScalableTarget of a SageMaker variant in the account creates Application Auto
        # Scaling's service-linked role, as the caller: that one role, for that one service.
        statement(
            ["iam:CreateServiceLinkedRole"],
            [autoscaling_service_role_arn(scope)],
            sid="AutoscalingServiceRole",
            condition={"StringEquals": {"iam:AWSServiceName": AUTOSCALING_SERVICE}},
        ),
    ]
    if manages_oidc_provider:
        statements.append(
            statement(
                [
                    "iam:CreateOpenIDConnectProvider",
                    "iam:DeleteOpenIDConnectProvider",
                    "iam:GetOpenIDConnectProvider",
                    "iam:TagOpenIDConnectProvider",
                    "iam:UpdateOpenIDConnectProviderThumbprint",
                    "iam:AddClientIDToOpenIDConnectProvider",
                ],
                [f"arn:{scope.partition}:iam::{scope.account_id}:oidc-provider/{GITHUB_OIDC_HOST}"],
                sid="GithubOidcProvider",
            )
        )
    statements += _state_statements(scope, state, secrets_provider, write=True)
    return document(*statements)


def preview_policy(
    scope: Scope, *, image_repository: str, state: StateObjects | None = None, secrets_provider: str = ""
) -> Document:
    """What `pulumi preview` on a pull request needs: read what the stack manages, and its state."""
    p = scope.prefix
    statements = [
        statement(
            ["ecr:Describe*", "ecr:List*", "ecr:Get*"],
            [image_repository_arn(scope, image_repository)],
            sid="ReadImageRepository",
        ),
        # the program asks for a registry token (aws.ecr.get_authorization_token) in a preview too; the
        # token cannot push: pushes need the repository's upload permissions, which this role lacks
        statement(["ecr:GetAuthorizationToken"], ["*"], sid="RegistryLogin"),
        # the buckets' settings, never their objects: pull requests do not read data or captured requests
        statement(
            ["s3:GetBucket*", "s3:GetEncryptionConfiguration", "s3:GetLifecycleConfiguration"],
            [f"arn:{scope.partition}:s3:::{p}-*"],
            sid="ReadBuckets",
        ),
        statement(
            [
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
            ],
            ["*"],
            sid="ReadOnly",
        ),
    ]
    statements += _state_statements(scope, state, secrets_provider, write=False)
    return document(*statements)


def glue_database_name(prefix: str) -> str:
    """Glue database names take no hyphens."""
    return prefix.replace("-", "_") + "_features"


def actions(doc: Document) -> list[str]:
    """Every action an identity policy document names (for checks against botocore's models)."""
    out: list[str] = []
    for stmt in doc["Statement"]:
        value = stmt.get("Action", [])
        out.extend([value] if isinstance(value, str) else value)
    return out


def _pattern(value: str, *, ignore_case: bool) -> re.Pattern[str]:
    """An IAM wildcard (`*` any run of characters, `/` and `:` included; `?` one character) as a regex."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in value)
    return re.compile(f"^{body}$", re.IGNORECASE if ignore_case else 0)


def _matches(patterns: Any, value: str, *, ignore_case: bool) -> bool:
    listed = [patterns] if isinstance(patterns, str) else list(patterns or [])
    return any(_pattern(p, ignore_case=ignore_case).match(value) for p in listed)


def _applies(stmt: Mapping[str, Any], action: str, resource: str) -> bool:
    if "Action" in stmt:
        acts = _matches(stmt["Action"], action, ignore_case=True)
    else:
        acts = not _matches(stmt.get("NotAction"), action, ignore_case=True)
    if "Resource" in stmt:
        on = _matches(stmt["Resource"], resource, ignore_case=False)
    else:
        on = not _matches(stmt.get("NotResource"), resource, ignore_case=False)
    return acts and on


def allows(doc: Document, action: str, resource: str) -> bool:
    """Whether one identity policy lets `action` on `resource`, as IAM reads it: an explicit Deny wins,
    else any Allow. Conditions are not evaluated, and the answer leans towards "allowed": a conditional
    Allow counts as allowing and a conditional Deny as not denying. So `not allows(...)` is a proof that
    the document cannot grant the call, whatever the request carries."""
    statements = doc.get("Statement", [])
    statements = [statements] if isinstance(statements, Mapping) else statements
    if any(
        s.get("Effect") == "Deny" and not s.get("Condition") and _applies(s, action, resource)
        for s in statements
    ):
        return False
    return any(s.get("Effect") == "Allow" and _applies(s, action, resource) for s in statements)
