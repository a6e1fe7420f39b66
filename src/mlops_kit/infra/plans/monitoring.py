"""The monitoring loop as data: the monitor's pipeline, its drift alarm, the retraining trigger and the
dashboard.

The kit's monitor runs as a one-step SageMaker pipeline that EventBridge Scheduler starts. A pipeline
(rather than a Scheduler universal target calling CreateProcessingJob directly) because a pipeline gives
each run a unique job name, an execution history and retries without templating the request, its
parameters (capture and baseline locations) can be overridden per run, and the kit's local executor
runs the very same definition on the embedded default. The step runs the project's runtime image with
the monitor's module as its entry point: nothing is downloaded or installed when the job starts.
"""

from __future__ import annotations

import json
import re
from typing import Any

from mlops_kit import container
from mlops_kit.infra.plans.serving import VARIANT, AlarmSpec

NAMESPACE = "mlops-kit/monitoring"
DRIFT_METRIC = "drift_score"
FEATURE_METRIC = "feature_psi"
JOB_MODULE = "mlops_kit.monitoring.job"
BASELINE_DIR = "/opt/ml/processing/baseline"
CAPTURE_DIR = "/opt/ml/processing/input/capture"
OUTPUT_DIR = "/opt/ml/processing/output"


def baseline_uri(monitoring_bucket: str, endpoint: str) -> str:
    """Where promotion puts the served model's baseline (statistics.json, constraints.json)."""
    return f"s3://{monitoring_bucket}/{endpoint}/baseline/"


def reports_uri(monitoring_bucket: str, endpoint: str) -> str:
    return f"s3://{monitoring_bucket}/{endpoint}/reports"


def native_monitor_uri(monitoring_bucket: str, endpoint: str) -> str:
    """Where the opt-in native Model Monitor's job writes its reports."""
    return f"s3://{monitoring_bucket}/{endpoint}/model-monitor"


def pipeline_definition(
    *,
    endpoint: str,
    role_arn: str,
    image_uri: str,
    instance_type: str,
    kms_key_arn: str,
    capture_uri: str,
    baseline_uri: str,
    reports_uri: str,
    drift_threshold: float,
    task: str = "binary",
    classes: tuple[str | int, ...] = (),
    min_window_rows: int,
) -> str:
    """The monitoring pipeline's definition JSON: one Processing step whose arguments are a
    CreateProcessingJob request (without the name, which SageMaker Pipelines generates), running the
    kit's monitor (`JOB_MODULE`) in the project's runtime image `image_uri`."""

    def s3_input(name: str, uri: Any, local: str, data_type: str) -> dict:
        return {
            "InputName": name,
            "S3Input": {
                "S3Uri": uri,
                "LocalPath": local,
                "S3DataType": data_type,
                "S3InputMode": "File",
                "S3DataDistributionType": "FullyReplicated",
            },
        }

    arguments = {
        "ProcessingResources": {
            "ClusterConfig": {
                "InstanceCount": 1,
                "InstanceType": instance_type,
                "VolumeSizeInGB": 30,
                "VolumeKmsKeyId": kms_key_arn,
            }
        },
        "AppSpecification": {
            "ImageUri": image_uri,
            "ContainerEntrypoint": container.processing_command(JOB_MODULE),
        },
        "RoleArn": role_arn,
        "ProcessingInputs": [
            s3_input("baseline", {"Get": "Parameters.BaselineUri"}, BASELINE_DIR, "S3Prefix"),
            s3_input("capture", {"Get": "Parameters.CaptureUri"}, CAPTURE_DIR, "S3Prefix"),
        ],
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "report",
                    "S3Output": {"S3Uri": reports_uri, "LocalPath": OUTPUT_DIR, "S3UploadMode": "EndOfJob"},
                }
            ],
            "KmsKeyId": kms_key_arn,
        },
        # The names the job reads (`mlops_kit.monitoring.job.parser`); the use case's task and classes say
        # how it measures model quality.
        "Environment": {
            "ENDPOINT_NAME": endpoint,
            "DRIFT_THRESHOLD": repr(float(drift_threshold)),
            "MIN_WINDOW_ROWS": str(int(min_window_rows)),
            "TASK": task,
            **({"CLASSES": ",".join(map(str, classes))} if classes else {}),
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
    }
    definition = {
        "Version": "2020-12-01",
        "Metadata": {},
        "Parameters": [
            {"Name": "CaptureUri", "Type": "String", "DefaultValue": capture_uri},
            {"Name": "BaselineUri", "Type": "String", "DefaultValue": baseline_uri},
        ],
        "PipelineExperimentConfig": {
            "ExperimentName": {"Get": "Execution.PipelineName"},
            "TrialName": {"Get": "Execution.PipelineExecutionId"},
        },
        "Steps": [{"Name": "Monitor", "Type": "Processing", "Arguments": arguments}],
    }
    return json.dumps(definition, sort_keys=True, separators=(",", ":"))


def drift_alarm(name: str, endpoint: str, *, threshold: float, period_seconds: int) -> AlarmSpec:
    """ALARM when the monitor's overall drift score (max PSI over features) passes the threshold."""
    return AlarmSpec(
        name=name,
        namespace=NAMESPACE,
        metric_name=DRIFT_METRIC,
        dimensions={"Endpoint": endpoint},
        statistic="Maximum",
        threshold=threshold,
        comparison_operator="GreaterThanThreshold",
        period=period_seconds,
        evaluation_periods=1,
        description=f"{endpoint}: input drift (max PSI) above {threshold}",
    )


_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def schedule_period_seconds(expression: str) -> int:
    """How often a schedule fires; cron expressions count as daily (a safe alarm period upper bound)."""
    match = _RATE.match(expression)
    if not match:
        if expression.startswith("cron("):
            return 86400
        raise ValueError(f"not a schedule expression: {expression!r}")
    seconds = int(match.group(1)) * _SECONDS[match.group(2).rstrip("s")]
    # CloudWatch alarm periods are at most one day and, above a minute, a multiple of 60
    return max(60, min(seconds, 86400))


def model_monitor_cron(expression: str) -> str:
    """Native Model Monitor accepts only hourly or daily cron expressions, not rate()."""
    match = _RATE.match(expression)
    if expression.startswith("cron("):
        return expression
    if match and match.group(2).startswith("hour") and match.group(1) == "1":
        return "cron(0 * ? * * *)"
    if match and match.group(2).startswith("day") and match.group(1) == "1":
        return "cron(0 0 ? * * *)"
    if match and match.group(2).startswith("hour") and 24 % int(match.group(1)) == 0:
        return f"cron(0 */{int(match.group(1))} ? * * *)"
    raise ValueError(
        f"native Model Monitor runs hourly, every N hours (N divides 24) or daily; {expression!r} is none"
    )


def retrain_event_pattern(alarm_arn: str) -> str:
    """EventBridge pattern: the drift alarm entering ALARM."""
    return json.dumps(
        {
            "source": ["aws.cloudwatch"],
            "detail-type": ["CloudWatch Alarm State Change"],
            "resources": [alarm_arn],
            "detail": {"state": {"value": ["ALARM"]}},
        },
        sort_keys=True,
    )


def dashboard_body(
    *, region: str, endpoint: str, drift_alarm_arn: str, drift_threshold: float, features: list[str]
) -> str:
    """Invocations, errors, latency and drift on one CloudWatch dashboard."""
    ep = ["EndpointName", endpoint, "VariantName", VARIANT]

    def widget(title: str, metrics: list, x: int, y: int, **extra: Any) -> dict:
        props = {"title": title, "region": region, "metrics": metrics, "view": "timeSeries", "period": 300}
        props.update(extra)
        return {"type": "metric", "x": x, "y": y, "width": 12, "height": 6, "properties": props}

    widgets = [
        widget("Invocations", [["AWS/SageMaker", "Invocations", *ep, {"stat": "Sum"}]], 0, 0),
        widget(
            "Errors",
            [
                ["AWS/SageMaker", "Invocation4XXErrors", *ep, {"stat": "Sum"}],
                ["AWS/SageMaker", "Invocation5XXErrors", *ep, {"stat": "Sum"}],
            ],
            12,
            0,
        ),
        widget(
            "Model latency (µs)",
            [
                ["AWS/SageMaker", "ModelLatency", *ep, {"stat": "p50"}],
                ["AWS/SageMaker", "ModelLatency", *ep, {"stat": "p99"}],
            ],
            0,
            6,
        ),
        widget(
            "Drift (PSI)",
            [[NAMESPACE, DRIFT_METRIC, "Endpoint", endpoint, {"stat": "Maximum"}]]
            + [
                [NAMESPACE, FEATURE_METRIC, "Endpoint", endpoint, "Feature", f, {"stat": "Maximum"}]
                for f in features
            ],
            12,
            6,
            annotations={"horizontal": [{"label": "drift threshold", "value": drift_threshold}]},
        ),
        {
            "type": "alarm",
            "x": 0,
            "y": 12,
            "width": 24,
            "height": 3,
            "properties": {"title": "Drift alarm", "alarms": [drift_alarm_arn]},
        },
    ]
    return json.dumps({"widgets": widgets}, sort_keys=True, ensure_ascii=False)
