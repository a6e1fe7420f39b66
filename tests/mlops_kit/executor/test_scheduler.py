"""The scheduled monitor runs locally from the request the Pulumi program deploys: its window of capture,
its own report prefix, its metric, the alarm, and the rule that starts retraining."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_kit import infra_plan, local_platform, naming, settings
from mlops_kit.emulator import Emulator
from mlops_kit.executor import scheduler
from mlops_kit.infra.plans import monitoring as plan
from mlops_kit.monitoring import files, stats

ENV = settings.load("local")
PROJECT = Path(__file__).resolve().parents[2] / "project"
ENDPOINT = naming.endpoint(ENV)
T = dt.datetime(2026, 11, 20, 10, 7, tzinfo=dt.UTC)  # fires at 10:07: the window is [09:00, 10:00)


@pytest.fixture()
def fresh():
    """An emulator of its own: alarm states and schedules must not leak between these tests."""
    with Emulator() as running:
        yield running


def _frame(rows: int, seed: int, drifted: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "amount": rng.lognormal(6.0 if drifted else 4.0, 0.5, rows).round(2),
            "channel": rng.choice(["web", "pos"] if not drifted else ["app", "app", "web"], rows),
        }
    )


def _capture_line(row: pd.Series, event: str, when: dt.datetime) -> str:
    return json.dumps(
        {
            "captureData": {
                "endpointInput": {
                    "observedContentType": "text/csv",
                    "mode": "INPUT",
                    "data": f"{row['amount']},{row['channel']}",
                    "encoding": "CSV",
                },
                "endpointOutput": {
                    "observedContentType": "text/csv",
                    "mode": "OUTPUT",
                    "data": "0.1",
                    "encoding": "CSV",
                },
            },
            "eventMetadata": {"eventId": event, "inferenceTime": when.strftime("%Y-%m-%dT%H:%M:%SZ")},
            "eventVersion": "0",
        }
    )


def _put_capture(s3, bucket: str, hour: dt.datetime, body: str, name: str = "00-00-000-a.jsonl") -> None:
    key = f"datacapture/{ENDPOINT}/AllTraffic/{hour:%Y/%m/%d/%H}/{name}"
    s3.put_object(Bucket=bucket, Key=key, Body=body.encode())


def _capture(s3, bucket: str, hour: dt.datetime, frame: pd.DataFrame, tag: str) -> None:
    lines = [
        _capture_line(row, f"{tag}-{i}", hour + dt.timedelta(minutes=i % 60)) for i, row in frame.iterrows()
    ]
    _put_capture(s3, bucket, hour, "\n".join(lines) + "\n", name=f"00-00-000-{tag}.jsonl")


def _platform(emulator) -> local_platform.LocalPlatform:
    """The local platform with the served model's baseline where the monitoring job reads it, and an
    endpoint in service (the schedule is enabled only then)."""
    platform = local_platform.ensure(ENV, emulator.client)
    statistics, constraints = stats.baseline(_frame(5000, seed=1), psi_threshold=0.2)
    s3 = emulator.client("s3")
    for name, document in ((files.STATISTICS, statistics), (files.CONSTRAINTS, constraints)):
        s3.put_object(
            Bucket=platform.buckets["monitoring"],
            Key=f"{ENDPOINT}/baseline/{name}",
            Body=json.dumps(document).encode(),
        )
    sagemaker = emulator.client("sagemaker")
    sagemaker.create_model(
        ModelName=ENDPOINT,
        ExecutionRoleArn="arn:aws:iam::123456789012:role/serving",
        PrimaryContainer={"Image": "image"},
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=ENDPOINT,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": ENDPOINT,
                "InitialInstanceCount": 1,
                "InstanceType": "ml.t2.medium",
            }
        ],
    )
    sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=ENDPOINT)
    return platform


class Recorder:
    """Stands for the training pipeline's start: what the rule's target asked for."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    def __call__(self, arn: str, parameters: dict) -> str:
        self.calls.append((arn, parameters))
        return f"retrain-{len(self.calls)}"


def test_the_job_runs_from_its_deployed_request_on_its_window(fresh) -> None:
    platform = _platform(fresh)
    s3, capture = fresh.client("s3"), platform.buckets["capture"]
    _capture(s3, capture, dt.datetime(2026, 11, 20, 9, tzinfo=dt.UTC), _frame(300, seed=2), "in")
    # outside the window: the hour before it, and the hour the schedule fires in (still being written);
    # lines no reader could parse, so reading them at all would show as malformed
    _put_capture(s3, capture, dt.datetime(2026, 11, 20, 8, tzinfo=dt.UTC), "not json\n" * 7)
    _put_capture(s3, capture, dt.datetime(2026, 11, 20, 10, tzinfo=dt.UTC), "not json\n" * 5)
    _put_capture(s3, capture, dt.datetime(2026, 8, 1, 9, tzinfo=dt.UTC), "not json\n" * 3)

    tick = scheduler.tick(ENV, fresh, T, start=Recorder())

    # the request is the schedule's, with Scheduler's time in it
    assert tick.request["PipelineName"] == naming.monitoring_pipeline(ENV)
    assert tick.request["PipelineParameters"] == [{"Name": "ScheduledTime", "Value": "2026-11-20T10:07:00Z"}]
    summary = tick.summary
    assert (summary["items"], summary["files"], summary["malformed"]["count"]) == (300, 1, 0)
    assert summary["window"]["partitions"] == {"start": "2026-11-20T09:00:00Z", "end": "2026-11-20T10:00:00Z"}
    reports = f"s3://{platform.buckets['monitoring']}/{ENDPOINT}/reports/2026/11/20/10/"
    assert tick.reports == reports
    written = s3.list_objects_v2(Bucket=platform.buckets["monitoring"], Prefix=f"{ENDPOINT}/reports/")
    assert sorted(o["Key"].rsplit("/", 1)[-1] for o in written["Contents"]) == [
        "constraint_violations.json",
        "run.json",
        "statistics.json",
    ]
    assert all(o["Key"].startswith(f"{ENDPOINT}/reports/2026/11/20/10/") for o in written["Contents"])
    # the job ran as SageMaker runs it: a processing job of the monitoring pipeline's execution
    jobs = fresh.client("sagemaker").list_processing_jobs()["ProcessingJobSummaries"]
    assert any(tick.execution_id in j["ProcessingJobName"] for j in jobs)


def test_drift_in_the_window_fires_the_alarm_and_the_rule_starts_training_once(fresh) -> None:
    platform = _platform(fresh)
    s3, capture = fresh.client("s3"), platform.buckets["capture"]
    hour = dt.datetime(2026, 11, 20, 9, tzinfo=dt.UTC)
    _capture(s3, capture, hour - dt.timedelta(hours=1), _frame(300, seed=5), "calm")
    calm = Recorder()
    quiet = scheduler.tick(ENV, fresh, T - dt.timedelta(hours=1), start=calm)
    assert quiet.alarm_state == "OK" and not quiet.summary["drifted"] and calm.calls == []

    _capture(s3, capture, hour, _frame(300, seed=6, drifted=True), "drift")
    recorder = Recorder()
    tick = scheduler.tick(ENV, fresh, T, start=recorder)
    assert tick.summary["drifted"] and tick.summary["drift_score"] > ENV.monitoring.drift_threshold
    assert (tick.previous_state, tick.alarm_state) == ("OK", "ALARM")
    training = f"arn:aws:sagemaker:us-east-1:{platform.account_id}:pipeline/{naming.pipeline(ENV)}"
    # the rule's target, with its input: the training pipeline with its own defaults
    assert recorder.calls == [(training, {})]
    assert [s.rule for s in tick.started] == [f"{ENV.prefix}-retrain-on-drift"]
    # two ticks, two prefixes: the calm run's files are still its own
    assert quiet.reports != tick.reports
    bucket, key = platform.buckets["monitoring"], quiet.reports.split("/", 3)[3] + "run.json"
    kept = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert (kept["items"], kept["drifted"]) == (300, False)

    # still drifted an hour later: the alarm stays in ALARM, no new state change, no second retraining
    _capture(s3, capture, hour + dt.timedelta(hours=1), _frame(300, seed=7, drifted=True), "again")
    again = Recorder()
    later = scheduler.tick(ENV, fresh, T + dt.timedelta(hours=1), start=again)
    assert later.alarm_state == "ALARM" and again.calls == []


def test_a_disabled_schedule_does_not_fire(fresh) -> None:
    local_platform.ensure(ENV, fresh.client)  # no endpoint serves
    with pytest.raises(scheduler.ScheduleError, match="disabled"):
        scheduler.tick(ENV, fresh, T, start=Recorder())


def test_the_local_resources_are_the_ones_the_program_deploys(fresh) -> None:
    """Byte for byte, but for the key's ARN (the emulator's key is not the plan's placeholder)."""
    platform = local_platform.ensure(ENV, fresh.client)
    local = local_platform.ensure_monitoring(ENV, fresh.client, platform, serving=True)
    deployed = infra_plan.plan("local", PROJECT)
    prefix = ENV.prefix
    pipeline = deployed.one("aws:sagemaker/pipeline:Pipeline", f"{prefix}-monitoring-pipeline").inputs
    key = deployed.outputs["kms_key_arn"]
    assert pipeline["pipelineDefinition"].replace(key, "KEY") == local.definition.replace(
        platform.kms_key_arn, "KEY"
    )
    schedule = deployed.one("aws:scheduler/schedule:Schedule", f"{prefix}-monitoring-schedule").inputs
    held = fresh.client("scheduler").get_schedule(Name=local.job.schedule_name)
    assert held["Target"]["Input"] == schedule["target"]["input"]
    assert held["Target"]["Arn"] == schedule["target"]["arn"] == plan.START_PIPELINE_TARGET
    assert held["ScheduleExpression"] == schedule["scheduleExpression"]
    alarm = deployed.one("aws:cloudwatch/metricAlarm:MetricAlarm", f"{prefix}-monitoring-drift").inputs
    [held_alarm] = fresh.client("cloudwatch").describe_alarms(AlarmNames=[alarm["name"]])["MetricAlarms"]
    assert (held_alarm["Threshold"], held_alarm["Period"], held_alarm["ComparisonOperator"]) == (
        alarm["threshold"],
        alarm["period"],
        alarm["comparisonOperator"],
    )
    rule = deployed.one("aws:cloudwatch/eventRule:EventRule", f"{prefix}-monitoring-retrain-on-drift").inputs
    held_rule = fresh.client("events").describe_rule(Name=rule["name"])
    assert json.loads(held_rule["EventPattern"]) == json.loads(rule["eventPattern"])


# --- the pure parts ------------------------------------------------------------------------------------


def test_context_attributes_are_substituted() -> None:
    text = plan.schedule_request("p-monitoring")
    out = json.loads(scheduler.with_context(text, scheduled_time=T, schedule_arn="arn:s", execution_id="e1"))
    assert out["PipelineParameters"] == [{"Name": "ScheduledTime", "Value": "2026-11-20T10:07:00Z"}]
    assert "<aws.scheduler" not in json.dumps(out)


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"source": "aws.cloudwatch", "resources": ["a"], "detail": {"state": {"value": "ALARM"}}}, True),
        ({"source": "aws.cloudwatch", "resources": ["a"], "detail": {"state": {"value": "OK"}}}, False),
        ({"source": "aws.cloudwatch", "resources": ["b"], "detail": {"state": {"value": "ALARM"}}}, False),
        ({"source": "aws.cloudwatch", "detail": {"state": {"value": "ALARM"}}}, False),
    ],
)
def test_event_patterns_match_as_eventbridge_does(event: dict, expected: bool) -> None:
    pattern = {"source": ["aws.cloudwatch"], "resources": ["a"], "detail": {"state": {"value": ["ALARM"]}}}
    assert scheduler.matches(pattern, event) is expected


def test_a_pattern_it_cannot_match_is_refused() -> None:
    with pytest.raises(ValueError, match="'source'"):
        scheduler.matches({"source": [{"prefix": "aws."}]}, {"source": "aws.cloudwatch"})


def test_the_rules_training_target_runs_through_the_executor(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlops_kit.executor import runner

    ran: list[tuple] = []

    class Record:
        execution_id = "run-1"

    monkeypatch.setattr(runner, "run_pipeline", lambda s, e, p: ran.append((s.env, e, p)) or Record())
    start = scheduler._executor_starter(ENV, "emulator")
    training = f"arn:aws:sagemaker:us-east-1:123456789012:pipeline/{naming.pipeline(ENV)}"
    assert start(training, {}) == "run-1" and ran == [("local", "emulator", None)]
    assert start(training, {"InputData": "s3://b/new/"}) == "run-1"
    assert ran[-1][2] == {"InputData": "s3://b/new/"}
    with pytest.raises(scheduler.ScheduleError, match="no local runner for the pipeline other"):
        start("arn:aws:sagemaker:us-east-1:123456789012:pipeline/other", {})
