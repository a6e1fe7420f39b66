"""SageMaker Pipeline steps whose `Arguments` are built here, as plain API requests.

The SDK's ProcessingStep / TrainingStep take `step_args` from `processor.run()` / `trainer.train()`,
which upload code and stamp names with the time, so the definition changes on every build. These steps
carry a ready `CreateProcessingJob` / `CreateTrainingJob` / `CreateModelPackage` request instead (with
pipeline expressions where values are known only at run time), which makes the definition
deterministic and lets tests check each request against botocore's service model.

Importing this module imports the SageMaker SDK (slow): only the definition builder needs it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mlops_kit import container
from mlops_kit.infra.plans.stages import TEST_SET_OUTPUT
from mlops_kit.pipeline import PipelineContext, prepare_sdk
from mlops_kit.registry import metadata
from mlops_kit.settings import Gate, Settings
from mlops_kit.usecase import UseCase

prepare_sdk("us-east-1")

from sagemaker.core.workflow.execution_variables import ExecutionVariables  # noqa: E402
from sagemaker.core.workflow.functions import Join  # noqa: E402
from sagemaker.core.workflow.properties import Properties, PropertyFile  # noqa: E402
from sagemaker.mlops.workflow.steps import CacheConfig, Step, StepTypeEnum  # noqa: E402

PROCESSING_ROOT = "/opt/ml/processing"
VOLUME_GB = 30
MAX_RUNTIME_S = 3 * 3600


class RequestStep(Step):
    """A step whose Arguments are a ready request, with the properties of its Describe* response."""

    def __init__(
        self,
        name: str,
        step_type: StepTypeEnum,
        request: dict[str, Any],
        describe_shape: str,
        *,
        property_files: Sequence[PropertyFile] = (),
        cache: bool = False,
        depends_on: Sequence[Step | str] | None = None,
        display_name: str | None = None,
    ):
        super().__init__(
            name, display_name=display_name, step_type=step_type, depends_on=list(depends_on or []) or None
        )
        self._request = request
        self.property_files = list(property_files)
        self.cache_config = CacheConfig(enable_caching=True, expire_after="P30D") if cache else None
        self._properties = Properties(step_name=name, step=self, shape_name=describe_shape)

    @property
    def arguments(self) -> dict[str, Any]:
        return self._request

    @property
    def properties(self) -> Properties:
        return self._properties

    def to_request(self) -> dict[str, Any]:
        request = super().to_request()
        if self.cache_config is not None:
            request.update(self.cache_config.config)
        if self.property_files:
            request["PropertyFiles"] = [p.expr for p in self.property_files]
        return request


def output_uri(ctx: PipelineContext, pipeline_name: str, step: str, output: str) -> Join:
    """s3://<artifacts>/pipelines/<pipeline>/<execution id>/<step>/<output>: one place per run."""
    return Join(
        on="/",
        values=[
            f"s3://{ctx.buckets['artifacts']}/pipelines/{pipeline_name}",
            ExecutionVariables.PIPELINE_EXECUTION_ID,
            step,
            output,
        ],
    )


def processing_step(
    name: str,
    *,
    ctx: PipelineContext,
    pipeline_name: str,
    instance_type: Any,
    module: str,
    arguments: Sequence[Any] = (),
    inputs: dict[str, Any] | None = None,
    outputs: Sequence[str] = (),
    instance_count: int = 1,
    sharded: Sequence[str] = (),
    environment: dict[str, str] | None = None,
    property_files: Sequence[PropertyFile] = (),
    cache: bool = True,
    network_isolation: bool = True,
    depends_on: Sequence[Step | str] | None = None,
) -> RequestStep:
    """A Processing step running `python3 -m <module> <arguments>` in the project's image.

    `inputs` maps an input name to its S3 URI (staged at /opt/ml/processing/input/<name>); each output
    name is written under /opt/ml/processing/<name> and uploaded to `output_uri(...)` at the end. The
    module gets every one of these folders as `--<name> <folder>`, so no container path is implicit.
    Nothing is installed when the job starts, so a step that calls no AWS API runs with network
    isolation (`network_isolation=False` for one that writes to the feature store, say).

    With `instance_count` > 1 the job runs on that many instances: each gets every object of an input
    (`FullyReplicated`) except those named in `sharded`, whose objects are dealt out among the instances
    (`ShardedByS3Key`), and each must name its output files apart (`mlops_kit.sharding.part_name`).
    """
    unknown = sorted(set(sharded) - set(inputs or {}))
    if unknown:
        raise ValueError(f"step {name}: sharded input(s) {', '.join(unknown)} are not among its inputs")
    processing_inputs = []
    for input_name, uri in (inputs or {}).items():
        processing_inputs.append(
            {
                "InputName": input_name,
                "AppManaged": False,
                "S3Input": {
                    "S3Uri": uri,
                    "LocalPath": f"{PROCESSING_ROOT}/input/{input_name}",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                    "S3DataDistributionType": "ShardedByS3Key"
                    if input_name in sharded
                    else "FullyReplicated",
                },
            }
        )
    output_config: dict[str, Any] = {
        "Outputs": [
            {
                "OutputName": output,
                "AppManaged": False,
                "S3Output": {
                    "S3Uri": output_uri(ctx, pipeline_name, name, output),
                    "LocalPath": f"{PROCESSING_ROOT}/{output}",
                    "S3UploadMode": "EndOfJob",
                },
            }
            for output in outputs
        ]
    }
    cluster: dict[str, Any] = {
        "InstanceCount": instance_count,
        "InstanceType": instance_type,
        "VolumeSizeInGB": VOLUME_GB,
    }
    if ctx.kms_key_arn:
        output_config["KmsKeyId"] = ctx.kms_key_arn
        cluster["VolumeKmsKeyId"] = ctx.kms_key_arn
    request = {
        "ProcessingResources": {"ClusterConfig": cluster},
        "StoppingCondition": {"MaxRuntimeInSeconds": MAX_RUNTIME_S},
        "AppSpecification": {
            "ImageUri": ctx.image_uri,
            "ContainerEntrypoint": container.processing_command(module),
            "ContainerArguments": [
                *(str(a) if isinstance(a, (int, float)) else a for a in arguments),
                *(part for n in (inputs or {}) for part in (f"--{n}", f"{PROCESSING_ROOT}/input/{n}")),
                *(part for n in outputs for part in (f"--{n}", f"{PROCESSING_ROOT}/{n}")),
            ],
        },
        "Environment": dict(sorted((environment or {}).items())),
        "NetworkConfig": {"EnableNetworkIsolation": network_isolation},
        "RoleArn": ctx.role_arn,
        "ProcessingInputs": processing_inputs,
        "ProcessingOutputConfig": output_config,
    }
    return RequestStep(
        name,
        StepTypeEnum.PROCESSING,
        request,
        "DescribeProcessingJobResponse",
        property_files=property_files,
        cache=cache,
        depends_on=depends_on,
    )


def training_step(
    name: str,
    *,
    ctx: PipelineContext,
    pipeline_name: str,
    instance_type: Any,
    instance_count: int,
    module: str,
    channels: dict[str, Any],
    hyperparameters: dict[str, Any],
    cache: bool = True,
    depends_on: Sequence[Step | str] | None = None,
) -> RequestStep:
    """A Training step: the project's image runs `train` (`mlops_kit.container`), which runs `module`
    with the hyperparameters as `--name value` and SageMaker's `SM_*` variables (script mode's contract)."""
    # Every value JSON-encoded, as script mode does; the image's `train` decodes them back.
    encoded = {k: json.dumps(v) for k, v in sorted(hyperparameters.items())}
    output: dict[str, Any] = {
        "S3OutputPath": Join(
            on="/",
            values=[
                f"s3://{ctx.buckets['artifacts']}/pipelines/{pipeline_name}",
                ExecutionVariables.PIPELINE_EXECUTION_ID,
                name,
            ],
        )
    }
    resources: dict[str, Any] = {
        "InstanceCount": instance_count,
        "InstanceType": instance_type,
        "VolumeSizeInGB": VOLUME_GB,
    }
    if ctx.kms_key_arn:
        output["KmsKeyId"] = ctx.kms_key_arn
        resources["VolumeKmsKeyId"] = ctx.kms_key_arn
    request = {
        "AlgorithmSpecification": {"TrainingImage": ctx.image_uri, "TrainingInputMode": "File"},
        "HyperParameters": encoded,
        "Environment": {container.TRAIN_MODULE_VARIABLE: module},
        "InputDataConfig": [
            {
                "ChannelName": channel,
                "ContentType": "application/x-parquet",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": uri,
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            }
            for channel, uri in channels.items()
        ],
        "OutputDataConfig": output,
        "ResourceConfig": resources,
        "RoleArn": ctx.role_arn,
        "StoppingCondition": {"MaxRuntimeInSeconds": MAX_RUNTIME_S},
        # Channels in, the model out: SageMaker moves both; the container itself needs no network.
        "EnableNetworkIsolation": True,
    }
    return RequestStep(
        name,
        StepTypeEnum.TRAINING,
        request,
        "DescribeTrainingJobResponse",
        cache=cache,
        depends_on=depends_on,
    )


def register_step(
    name: str, request: dict[str, Any], depends_on: Sequence[Step | str] | None = None
) -> RequestStep:
    """A RegisterModel step: its Arguments are a CreateModelPackage request."""
    return RequestStep(
        name, StepTypeEnum.REGISTER_MODEL, request, "DescribeModelPackageOutput", depends_on=depends_on
    )


def gate_conditions(gates: Mapping[str, Gate], metric: Callable[[str], Any]) -> tuple[list[Any], list[Any]]:
    """The CheckGates conditions of the settings' gates (`promotion.gates`), and the Fail step's message
    parts naming each metric, its value and its bound. `metric(name)` reads `metrics.<name>` of the
    evaluation's property file. A minimum passes at equality, as does a maximum: the promotion gates
    (`registry.gates`) apply the same bounds the same way."""
    from sagemaker.core.workflow.conditions import ConditionGreaterThanOrEqualTo, ConditionLessThanOrEqualTo

    conditions: list[Any] = []
    message: list[Any] = []
    for name, gate in sorted(gates.items()):
        if gate.min is not None:
            conditions.append(ConditionGreaterThanOrEqualTo(left=metric(name), right=float(gate.min)))
            message += [f" {name}=", metric(name), f" (min {gate.min});"]
        if gate.max is not None:
            conditions.append(ConditionLessThanOrEqualTo(left=metric(name), right=float(gate.max)))
            message += [f" {name}=", metric(name), f" (max {gate.max});"]
    return conditions, message


def model_package_request(
    settings: Settings,
    ctx: PipelineContext,
    case: UseCase,
    *,
    pipeline_name: str,
    approval: Any,
    model_uri: Any,
    evaluation_uri: Any,
    baseline_uri: Any,
    input_data: Any,
    test_uri: Any,
    metric: Callable[[str], Any],
) -> dict[str, Any]:
    """The Register step's CreateModelPackage request: the project's image serving the model, its
    evaluation and monitoring baseline, every metric the use case declares (`metric:<name>`), and its
    lineage (`lineage:*`): what promotion, serving and monitoring read from the registry."""
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join

    def text(value: Any) -> Join:
        return Join(on="", values=[value])

    def document(prefix: Any, name: str) -> dict[str, Any]:
        return {"ContentType": "application/json", "S3Uri": Join(on="/", values=[prefix, name])}

    # Promotion into the next stage reads the test set to re-score the champion, and the cross-stage
    # grants allow exactly a step output of this name (`plans.stages.TEST_SET_OUTPUT`): another place
    # would be denied in AWS, so it is refused here, when the definition is built.
    reference = str(getattr(test_uri, "expr", {}).get("Get", "")) if hasattr(test_uri, "expr") else ""
    if ".Outputs[" in reference and f".Outputs['{TEST_SET_OUTPUT}']" not in reference:
        raise ValueError(
            f"{pipeline_name}: the register request's test set is {reference}; it must be a processing "
            f"output named {TEST_SET_OUTPUT!r} (outputs=[..., {TEST_SET_OUTPUT!r}]), the one place the "
            "cross-stage grants let the next stage read"
        )

    return {
        "ModelPackageGroupName": ctx.model_package_group,
        "ModelPackageDescription": f"{case.name} ({case.task}) trained by {pipeline_name}",
        "ModelApprovalStatus": approval,
        "InferenceSpecification": {
            # the image's `serve`: the kit's server for /opt/ml/model and its code/inference.py
            "Containers": [{"Image": ctx.image_uri, "ModelDataUrl": model_uri}],
            "SupportedContentTypes": ["text/csv", "application/json"],
            "SupportedResponseMIMETypes": ["text/csv", "application/json"],
            "SupportedRealtimeInferenceInstanceTypes": sorted({settings.serving.instance_type}),
            "SupportedTransformInstanceTypes": ["ml.m5.large"],
        },
        "ModelMetrics": {
            "ModelQuality": {"Statistics": document(evaluation_uri, "evaluation.json")},
            "ModelDataQuality": {
                "Statistics": document(baseline_uri, "statistics.json"),
                "Constraints": document(baseline_uri, "constraints.json"),
            },
        },
        "CustomerMetadataProperties": {
            **{metadata.metric_key(name): text(metric(name)) for name in case.metric_names},
            **{
                metadata.lineage_key(what): value
                for what, value in (
                    ("pipeline", pipeline_name),
                    ("execution", ExecutionVariables.PIPELINE_EXECUTION_ID),
                    ("input", input_data),
                    ("code", ctx.image_tag),
                    ("environment", settings.env),
                    ("test", test_uri),
                    ("label", case.label),
                )
            },
        },
    }


def offline_session(region: str) -> Any:
    """A SageMaker session whose boto3 session never looks for credentials: building a definition calls
    no AWS API."""
    import boto3
    from sagemaker.core.helper.session_helper import Session

    return Session(
        boto_session=boto3.Session(
            region_name=region, aws_access_key_id="definition", aws_secret_access_key="definition"
        )
    )
