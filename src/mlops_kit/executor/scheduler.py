"""What starts jobs in AWS, on this machine: EventBridge Scheduler, CloudWatch's alarm evaluation and
EventBridge rules, acting on what the emulator holds.

The Pulumi program schedules the drift monitor and closes the loop to retraining with resources, not code:
a schedule whose target is a `StartPipelineExecution` request, a pipeline, an alarm on the job's metric, and
a rule on that alarm's state changes. `local_platform.ensure_monitoring` creates the same resources in the
emulator from the same plan; `tick(settings, emulator, at)` is one firing of the schedule at `at`:

1. the schedule's target input, with Scheduler's context attributes substituted, is the request: its
   pipeline's deployed definition runs through the executor with the request's parameters (the job reads
   the capture partitions of its window, writes under its own `yyyy/mm/dd/hh/` prefix and puts its metric
   to the emulator's CloudWatch);
2. the alarms on the monitor's metric are evaluated as CloudWatch would when the job has finished;
3. each alarm that changed state sends CloudWatch's "Alarm State Change" event to the rules whose pattern
   matches it, and each matching rule's SageMaker pipeline target is started with its parameters.

A disabled schedule (no endpoint serves yet) does not fire, as in AWS.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlops_kit import local_platform, naming
from mlops_kit.settings import Settings

# (pipeline ARN, parameters) -> the started execution's id
Starter = Callable[[str, dict[str, str]], str]
ALARM_STATE_CHANGE = "CloudWatch Alarm State Change"


class ScheduleError(RuntimeError):
    """The schedule cannot fire here: not an embedded environment, disabled, or a target it cannot run."""


@dataclass
class Started:
    rule: str
    pipeline_arn: str
    parameters: dict[str, str]
    execution: str


@dataclass
class Tick:
    scheduled_time: str
    request: dict[str, Any]  # the StartPipelineExecution request the schedule sent
    execution_id: str  # the monitoring pipeline's execution
    reports: str  # this run's files: `<reports>/yyyy/mm/dd/hh/`
    summary: dict[str, Any]  # its run.json
    alarm: str
    alarm_state: str
    previous_state: str
    started: list[Started] = field(default_factory=list)


# --- pure parts ----------------------------------------------------------------------------------------


def scheduler_time(moment: dt.datetime) -> str:
    """A time as Scheduler writes `<aws.scheduler.scheduled-time>`: `2022-03-22T18:59:43Z`."""
    moment = moment.astimezone(dt.UTC) if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def with_context(text: str, *, scheduled_time: dt.datetime, schedule_arn: str, execution_id: str) -> str:
    """A target input with Scheduler's context attributes replaced by their values for one invocation."""
    values = {
        "<aws.scheduler.scheduled-time>": scheduler_time(scheduled_time),
        "<aws.scheduler.schedule-arn>": schedule_arn,
        "<aws.scheduler.execution-id>": execution_id,
        "<aws.scheduler.attempt-number>": "1",
    }
    for name, value in values.items():
        text = text.replace(name, value)
    return text


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """EventBridge's matching of exact values: every field of the pattern is in the event, and one of the
    pattern's values (a list) equals the event's value, or one of its values when it is a list."""
    for key, expected in pattern.items():
        if key not in event:
            return False
        value = event[key]
        if isinstance(expected, dict):
            if not isinstance(value, dict) or not matches(expected, value):
                return False
            continue
        if not isinstance(expected, list) or any(isinstance(e, dict) for e in expected):
            raise ValueError(
                f"event pattern field {key!r}: only lists of exact values are matched locally, got {expected!r}"
            )
        values = value if isinstance(value, list) else [value]
        if not any(v in expected for v in values):
            return False
    return True


def alarm_state_change(
    alarm: dict[str, Any], *, previous: str, state: str, when: dt.datetime, account: str, region: str
) -> dict[str, Any]:
    """The event CloudWatch sends to EventBridge when an alarm changes state."""
    stamp = scheduler_time(when)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": ALARM_STATE_CHANGE,
        "source": "aws.cloudwatch",
        "account": account,
        "time": stamp,
        "region": region,
        "resources": [alarm["AlarmArn"]],
        "detail": {
            "alarmName": alarm["AlarmName"],
            "state": {"value": state, "timestamp": stamp},
            "previousState": {"value": previous},
        },
    }


# --- one firing ----------------------------------------------------------------------------------------


def tick(
    settings: Settings,
    emulator: Any,
    at: dt.datetime,
    *,
    start: Starter | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> Tick:
    """Fire the environment's monitoring schedule at `at` (see the module docstring)."""
    from mlops_kit.executor import runner
    from mlops_kit.infra.plans import monitoring as plan
    from mlops_kit.monitoring import metrics
    from mlops_kit.pipeline import PipelineContext

    require_embedded(settings)
    client = emulator.client
    platform = local_platform.ensure(settings, client)
    monitoring = local_platform.ensure_monitoring(
        settings, client, platform, serving=_serving(client, naming.endpoint(settings))
    )
    job = monitoring.job
    schedule = client("scheduler").get_schedule(Name=job.schedule_name)
    if schedule.get("State") != "ENABLED":
        raise ScheduleError(
            f"the schedule {job.schedule_name} is disabled: no endpoint {job.endpoint} serves, so there is "
            "nothing captured to monitor (deploy one: mlops deploy --env local)"
        )
    target = schedule["Target"]
    if target["Arn"] != plan.START_PIPELINE_TARGET:
        raise ScheduleError(
            f"the schedule {job.schedule_name} targets {target['Arn']}, which runs only in AWS"
        )
    request = json.loads(
        with_context(
            target["Input"],
            scheduled_time=at,
            schedule_arn=schedule["Arn"],
            execution_id=uuid.uuid4().hex[:16],
        )
    )
    name = request["PipelineName"]
    sagemaker = client("sagemaker")
    definition = json.loads(sagemaker.describe_pipeline(PipelineName=name)["PipelineDefinition"])
    parameters = {p["Name"]: p["Value"] for p in request.get("PipelineParameters", [])}
    ctx = PipelineContext(
        role_arn=sagemaker.describe_pipeline(PipelineName=name)["RoleArn"],
        region=settings.region,
        account_id=platform.account_id,
        buckets=platform.buckets,
        model_package_group=platform.model_package_group,
        image_uri=monitoring.image_uri,
        kms_key_arn=platform.kms_key_arn,
    )
    progress(f"schedule {job.schedule_name}: {name} for {scheduler_time(at)}")
    cloudwatch = client("cloudwatch")
    before = _alarm(cloudwatch, job.alarm_name)
    began = time.monotonic()
    record = runner.execute(
        definition,
        settings=settings,
        emulator=emulator,
        ctx=ctx,
        parameters=parameters,
        use_cache=False,
        pipeline_name=name,
        progress=lambda step, state, _: progress(f"{name}: {step} {state.lower()}"),
    )
    # CloudWatch evaluates the alarm once the job's metric is in: at the scheduled time plus the run's length
    evaluated_at = _utc(at) + dt.timedelta(seconds=max(1.0, time.monotonic() - began))
    states = metrics.evaluate_alarms(cloudwatch, prefix=job.alarm_name, now=evaluated_at)
    after = _alarm(cloudwatch, job.alarm_name)
    reports = f"{record.artifacts['Monitor/report'].rstrip('/')}/{plan.report_prefix(at)}/"
    result = Tick(
        scheduled_time=scheduler_time(at),
        request=request,
        execution_id=record.execution_id,
        reports=reports,
        summary=_summary(client("s3"), reports),
        alarm=job.alarm_name,
        alarm_state=states.get(job.alarm_name, after["StateValue"]),
        previous_state=before["StateValue"],
    )
    if result.alarm_state != result.previous_state:
        event = alarm_state_change(
            after,
            previous=result.previous_state,
            state=result.alarm_state,
            when=evaluated_at,
            account=platform.account_id,
            region=settings.region,
        )
        result.started = deliver(
            client("events"), event, start or _executor_starter(settings, emulator), progress
        )
    return result


def require_embedded(settings: Settings) -> None:
    if not settings.embedded:
        raise ScheduleError(
            f"{settings.file}: {settings.env} runs in AWS, where EventBridge Scheduler fires its monitoring "
            "schedule; the local scheduler runs embedded environments only"
        )


def deliver(
    events: Any, event: dict[str, Any], start: Starter, progress: Callable[[str], None] = lambda _: None
) -> list[Started]:
    """EventBridge on the default bus: every enabled rule whose pattern matches starts its pipeline targets
    with their `SageMakerPipelineParameters`."""
    started = []
    for page in events.get_paginator("list_rules").paginate():
        for rule in page.get("Rules", []):
            if rule.get("State") != "ENABLED" or not rule.get("EventPattern"):
                continue
            if not matches(json.loads(rule["EventPattern"]), event):
                continue
            for target in events.list_targets_by_rule(Rule=rule["Name"])["Targets"]:
                if ":pipeline/" not in target["Arn"]:
                    raise ScheduleError(
                        f"rule {rule['Name']}: its target {target['Arn']} is not a SageMaker pipeline, "
                        "the only target the local EventBridge starts"
                    )
                listed = (target.get("SageMakerPipelineParameters") or {}).get("PipelineParameterList", [])
                parameters = {p["Name"]: p["Value"] for p in listed}
                progress(f"rule {rule['Name']}: starting {target['Arn'].rsplit('/', 1)[-1]}")
                execution = start(target["Arn"], parameters)
                started.append(Started(rule["Name"], target["Arn"], parameters, execution))
    return started


def _executor_starter(settings: Settings, emulator: Any) -> Starter:
    """Start a rule's pipeline locally: the training pipeline through the executor, from the definition
    the Pulumi program deploys."""

    def start(pipeline_arn: str, parameters: dict[str, str]) -> str:
        from mlops_kit.executor import runner

        name = pipeline_arn.rsplit("/", 1)[-1]
        if name != naming.pipeline(settings):
            raise ScheduleError(f"no local runner for the pipeline {name}: only {naming.pipeline(settings)}")
        return runner.run_pipeline(settings, emulator, parameters or None).execution_id

    return start


def _serving(client: Any, endpoint: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        return client("sagemaker").describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "InService"
    except ClientError:
        return False


def _alarm(cloudwatch: Any, name: str) -> dict[str, Any]:
    return cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]


def _summary(s3: Any, reports: str) -> dict[str, Any]:
    from mlops_kit.s3 import split_uri

    bucket, prefix = split_uri(reports)
    return json.loads(s3.get_object(Bucket=bucket, Key=f"{prefix}run.json")["Body"].read())


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC) if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
