"""The monitoring loop as data: the monitor's pipeline, its drift alarm, the retraining trigger and the
dashboard.

The kit's monitor runs as a one-step SageMaker pipeline that EventBridge Scheduler starts. A pipeline
(rather than a Scheduler universal target calling CreateProcessingJob directly) because a pipeline gives
each run a unique job name, an execution history and retries without templating the request, its
parameters (capture and baseline locations) can be overridden per run, and the kit's local executor
runs the very same definition on the embedded default. The step runs the project's runtime image with
the monitor's module as its entry point: nothing is downloaded or installed when the job starts.

Each run monitors one window of capture, given by the time the schedule fired: the schedule is a universal
target (`StartPipelineExecution`) whose request carries Scheduler's `<aws.scheduler.scheduled-time>` as
the pipeline's `ScheduledTime` parameter. The job reads the capture files of the hour partitions
(SageMaker's `<endpoint>/<variant>/yyyy/mm/dd/hh/`) in [T - window, T), T the scheduled time floored to
its hour, and writes its reports under `<reports>/yyyy/mm/dd/hh/` of T, as Model Monitor does. Why the
job selects the partitions rather than a Processing input naming them: an input is a fixed prefix (or a
manifest someone must write), SageMaker Pipelines has no date arithmetic to turn a time into prefixes, and
a window of N hours is N prefixes. `MonitoringJob` is the one description of this job, built from the
settings by `monitoring_job`, which the Pulumi program deploys and the local scheduler
(`mlops_kit.scheduler`) runs.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from dataclasses import dataclass
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
SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"  # EventBridge Scheduler's context attribute
# The universal target that starts a pipeline with a request of our own (a templated SageMaker target
# takes fixed parameters only, and context attributes are documented for a target's input).
START_PIPELINE_TARGET = "arn:aws:scheduler:::aws-sdk:sagemaker:startPipelineExecution"
NOW = "now"  # ScheduledTime's default: a run started by hand monitors the window ending at its hour


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
    window_hours: int = 1,
    task: str = "binary",
    classes: tuple[str | int, ...] = (),
    min_window_rows: int,
) -> str:
    """The monitoring pipeline's definition JSON: one Processing step whose arguments are a
    CreateProcessingJob request (without the name, which SageMaker Pipelines generates), running the
    kit's monitor (`JOB_MODULE`) in the project's runtime image `image_uri` over the `window_hours`
    hour partitions of capture before the `ScheduledTime` parameter."""

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
            # The capture is not an input: the job reads only its window's partitions (module docstring).
            s3_input("baseline", {"Get": "Parameters.BaselineUri"}, BASELINE_DIR, "S3Prefix"),
        ],
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "report",
                    # the job writes below OUTPUT_DIR/yyyy/mm/dd/hh/: one prefix per scheduled run
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
            "CAPTURE_PATH": {"Get": "Parameters.CaptureUri"},
            "SCHEDULED_TIME": {"Get": "Parameters.ScheduledTime"},
            "WINDOW_HOURS": str(int(window_hours)),
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
    }
    definition = {
        "Version": "2020-12-01",
        "Metadata": {},
        "Parameters": [
            {"Name": "CaptureUri", "Type": "String", "DefaultValue": capture_uri},
            {"Name": "BaselineUri", "Type": "String", "DefaultValue": baseline_uri},
            {"Name": "ScheduledTime", "Type": "String", "DefaultValue": NOW},
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


_CRON_EVERY = re.compile(r"^(?:\*|0)/(\d+)$")


def window_hours(expression: str) -> int:
    """How many hour partitions of capture one scheduled run reads: the time between two runs, in whole
    hours (capture is partitioned by the hour), so consecutive runs read every partition once."""
    match = _RATE.match(expression)
    if match:
        seconds = int(match.group(1)) * _SECONDS[match.group(2).rstrip("s")]
        return max(1, math.ceil(seconds / 3600))
    fields = expression[len("cron(") : -1].split() if expression.startswith("cron(") else []
    if len(fields) == 6 and fields[2] in ("*", "?") and fields[4] in ("*", "?"):
        hours = fields[1]
        every = _CRON_EVERY.match(hours)
        if hours == "*":
            return 1
        if every and 24 % int(every.group(1)) == 0:
            return int(every.group(1))
        if hours.isdigit():
            return 24
    raise ValueError(
        f"{expression!r} is not a schedule expression the monitor can take a window from: use rate(N "
        "hours|days), or a cron expression firing every hour, every N hours (N divides 24) or once a day"
    )


def window(scheduled_time: dt.datetime, hours: int) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of the hour partitions a run scheduled at `scheduled_time` reads: the `hours` before
    the hour it fires in (the hour still being written is the next run's)."""
    moment = (
        scheduled_time.astimezone(dt.UTC) if scheduled_time.tzinfo else scheduled_time.replace(tzinfo=dt.UTC)
    )
    end = moment.replace(minute=0, second=0, microsecond=0)
    return end - dt.timedelta(hours=hours), end


def report_prefix(scheduled_time: dt.datetime) -> str:
    """`yyyy/mm/dd/hh`: the folder of a run's reports below the reports prefix, as Model Monitor's."""
    return window(scheduled_time, 1)[1].strftime("%Y/%m/%d/%H")


def schedule_request(pipeline_name: str) -> str:
    """The StartPipelineExecution request the schedule's universal target sends, with Scheduler's
    scheduled time as the window's end (it substitutes `SCHEDULED_TIME` at each run)."""
    return json.dumps(
        {
            "PipelineName": pipeline_name,
            "PipelineExecutionDescription": "scheduled drift monitoring",
            "PipelineParameters": [{"Name": "ScheduledTime", "Value": SCHEDULED_TIME}],
        },
        sort_keys=True,
    )


@dataclass(frozen=True)
class MonitoringJob:
    """The monitor's scheduled job as the settings describe it: what the Pulumi program deploys and the
    local scheduler runs (both build it with `monitoring_job`)."""

    endpoint: str
    pipeline_name: str
    schedule_name: str
    alarm_name: str
    rule_name: str  # the EventBridge rule that starts the training pipeline on drift
    training_pipeline: str
    schedule: str
    instance_type: str
    drift_threshold: float
    task: str
    classes: tuple[str | int, ...]
    retrain_on_drift: bool
    min_window_rows: int  # fewer captured rows: the job reports insufficient data, not a score

    def __post_init__(self) -> None:
        window_hours(self.schedule)  # a schedule it cannot read is refused here, naming the expression

    @property
    def window_hours(self) -> int:
        return window_hours(self.schedule)

    def definition(
        self, *, role_arn: str, image_uri: str, kms_key_arn: str, capture_bucket: str, monitoring_bucket: str
    ) -> str:
        from mlops_kit.infra.plans.storage import endpoint_capture_uri

        return pipeline_definition(
            endpoint=self.endpoint,
            role_arn=role_arn,
            image_uri=image_uri,
            instance_type=self.instance_type,
            kms_key_arn=kms_key_arn,
            capture_uri=endpoint_capture_uri(capture_bucket, self.endpoint),
            baseline_uri=baseline_uri(monitoring_bucket, self.endpoint),
            reports_uri=reports_uri(monitoring_bucket, self.endpoint),
            drift_threshold=self.drift_threshold,
            window_hours=self.window_hours,
            task=self.task,
            classes=self.classes,
            min_window_rows=self.min_window_rows,
        )

    def alarm(self) -> AlarmSpec:
        return drift_alarm(
            self.alarm_name,
            self.endpoint,
            threshold=self.drift_threshold,
            period_seconds=schedule_period_seconds(self.schedule),
        )

    def schedule_request(self) -> str:
        return schedule_request(self.pipeline_name)


def monitoring_job(settings: Any, case: Any) -> MonitoringJob:
    """The environment's monitoring job, from its settings and its use case (task, classes)."""
    from mlops_kit import naming

    return MonitoringJob(
        endpoint=naming.endpoint(settings),
        pipeline_name=naming.monitoring_pipeline(settings),
        schedule_name=f"{settings.prefix}-monitoring",
        alarm_name=naming.drift_alarm(settings),
        rule_name=f"{settings.prefix}-retrain-on-drift",
        training_pipeline=naming.pipeline(settings),
        schedule=settings.monitoring.schedule,
        instance_type=settings.monitoring.instance_type,
        drift_threshold=settings.monitoring.drift_threshold,
        task=str(case.task),
        classes=tuple(case.classes),
        retrain_on_drift=settings.monitoring.retrain_on_drift,
        min_window_rows=settings.monitoring.min_window_rows,
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
