"""The scheduled monitoring job's request is one its job can run: the environment it sets is the one the
job reads (a request whose variables the job ignored would exit at start, 'name the endpoint')."""

from __future__ import annotations

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
    assert args.capture == "s3://capture/datacapture/p-e-endpoint/" and args.window_hours == 6
    assert args.scheduled_time == "2026-03-22T18:59:43Z"


def test_every_variable_the_request_sets_is_one_the_job_reads() -> None:
    source = Path(job.__file__).read_text()
    for name in _request()["Environment"]:
        assert f'"{name}"' in source, f"the job never reads {name}"


def test_a_regression_use_case_gets_no_classes() -> None:
    environment = _request(task="regression", classes=())["Environment"]
    assert environment["TASK"] == "regression" and "CLASSES" not in environment
