"""The scheduled monitoring job's request is one its job can run: the environment it sets is the one the
job reads (a request whose variables the job ignored would exit at start, 'name the endpoint')."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from mlops_kit.infra.plans import monitoring as plan
from mlops_kit.monitoring import job


def _request(**changes) -> dict:
    options = dict(
        endpoint="p-e-endpoint",
        role_arn="arn:aws:iam::123456789012:role/r",
        image_uri="123456789012.dkr.ecr.us-east-1.amazonaws.com/p-e-runtime:abc",
        instance_type="ml.m5.large",
        kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/k",
        capture_uri="s3://capture/datacapture/p-e-endpoint/",
        baseline_uri="s3://monitoring/p-e-endpoint/baseline/",
        reports_uri="s3://monitoring/p-e-endpoint/reports/",
        drift_threshold=0.3,
        task="multiclass",
        classes=("bronze", "silver", "gold"),
        min_window_rows=250,
    )
    definition = json.loads(plan.pipeline_definition(**{**options, **changes}))
    [step] = definition["Steps"]
    return step["Arguments"]


def _parameters(**changes) -> dict:
    definition = json.loads(
        plan.pipeline_definition(
            **{**dict(_OPTIONS), **changes},
        )
    )
    return {p["Name"]: p["DefaultValue"] for p in definition["Parameters"]}


_OPTIONS = dict(
    endpoint="p-e-endpoint",
    role_arn="arn:aws:iam::123456789012:role/r",
    image_uri="i:t",
    instance_type="ml.m5.large",
    kms_key_arn="k",
    capture_uri="s3://capture/datacapture/p-e-endpoint/",
    baseline_uri="s3://monitoring/p-e-endpoint/baseline/",
    reports_uri="s3://monitoring/p-e-endpoint/reports/",
    drift_threshold=0.3,
    min_window_rows=250,
)


def test_the_job_reads_the_environment_the_request_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    environment = _request(window_hours=6)["Environment"]
    parameters = _parameters() | {"ScheduledTime": "2026-03-22T18:59:43Z"}
    for name, value in environment.items():
        # what SageMaker Pipelines substitutes: the execution's parameters
        value = parameters[value["Get"].split(".", 1)[1]] if isinstance(value, dict) else value
        monkeypatch.setenv(name, value)
    args = job.parser().parse_args([])
    assert args.endpoint == "p-e-endpoint" and args.drift_threshold == 0.3
    assert args.task == "multiclass" and job.classes(args.classes) == ["bronze", "silver", "gold"]
    assert args.min_window_rows == 250
    assert args.capture == "s3://capture/datacapture/p-e-endpoint/" and args.window_hours == 6
    assert args.scheduled_time == "2026-03-22T18:59:43Z"


def test_the_job_and_the_settings_agree_on_the_minimum_window() -> None:
    from mlops_kit.settings import Monitoring

    assert Monitoring.__dataclass_fields__["min_window_rows"].default == job.MIN_WINDOW_ROWS
    assert job.parser().parse_args([]).min_window_rows == job.MIN_WINDOW_ROWS


def test_every_variable_the_request_sets_is_one_the_job_reads() -> None:
    source = Path(job.__file__).read_text()
    for name in _request()["Environment"]:
        assert f'"{name}"' in source, f"the job never reads {name}"


def test_a_regression_use_case_gets_no_classes() -> None:
    environment = _request(task="regression", classes=())["Environment"]
    assert environment["TASK"] == "regression" and "CLASSES" not in environment


@pytest.mark.parametrize(
    ("expression", "hours"),
    [
        ("rate(1 hour)", 1),
        ("rate(30 minutes)", 1),  # capture is partitioned by the hour: a window is whole hours
        ("rate(61 minutes)", 2),
        ("rate(6 hours)", 6),
        ("rate(1 day)", 24),
        ("cron(0 * * * ? *)", 1),
        ("cron(15 */4 * * ? *)", 4),
        ("cron(0 3 * * ? *)", 24),
    ],
)
def test_a_window_is_the_time_between_two_runs_in_whole_hours(expression: str, hours: int) -> None:
    assert plan.window_hours(expression) == hours


@pytest.mark.parametrize("expression", ["cron(0 */5 * * ? *)", "cron(0 3 ? * MON *)", "every hour"])
def test_a_schedule_without_a_steady_window_is_refused(expression: str) -> None:
    with pytest.raises(ValueError, match="not a schedule expression the monitor can take a window from"):
        plan.window_hours(expression)


def test_the_window_ends_at_the_hour_the_schedule_fires_in() -> None:
    utc = dt.UTC
    assert plan.window(dt.datetime(2026, 3, 22, 18, 59, 43, tzinfo=utc), 2) == (
        dt.datetime(2026, 3, 22, 16, tzinfo=utc),
        dt.datetime(2026, 3, 22, 18, tzinfo=utc),
    )
    # on the hour exactly: the hour just closed is in, the one starting is not
    assert plan.window(dt.datetime(2026, 3, 22, 18, tzinfo=utc), 1)[0] == dt.datetime(
        2026, 3, 22, 17, tzinfo=utc
    )
    # a time elsewhere is read in UTC
    east = dt.timezone(dt.timedelta(hours=2))
    assert plan.report_prefix(dt.datetime(2026, 3, 22, 1, 30, tzinfo=east)) == "2026/03/21/23"


def test_consecutive_runs_read_every_hour_once() -> None:
    hours = plan.window_hours("rate(3 hours)")
    first = plan.window(dt.datetime(2026, 3, 22, 10, 23, tzinfo=dt.UTC), hours)
    second = plan.window(dt.datetime(2026, 3, 22, 13, 23, tzinfo=dt.UTC), hours)
    assert first[1] == second[0] and first[1] - first[0] == dt.timedelta(hours=3)


def test_the_alarm_request_is_the_alarm_the_program_declares() -> None:
    spec = plan.drift_alarm("p-drift", "p-endpoint", threshold=0.25, period_seconds=7200)
    declared, request = spec.metric_alarm_args(), spec.put_metric_alarm_request()
    assert request["AlarmName"] == declared["name"] and request["Threshold"] == declared["threshold"]
    assert request["Period"] == declared["period"] == 7200
    assert request["ComparisonOperator"] == declared["comparison_operator"]
    assert request["TreatMissingData"] == declared["treat_missing_data"]
    assert request["Dimensions"] == [{"Name": "Endpoint", "Value": "p-endpoint"}]
