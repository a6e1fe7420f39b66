"""A monitoring run end to end: its files, CloudWatch metrics and alarm, and retraining, under moto."""

from __future__ import annotations

import datetime as dt
import json
import sys
import types

import boto3
import pytest
from monitor_helpers import transactions
from moto import mock_aws

from mlops_kit import settings as settings_mod
from mlops_kit.monitoring import files, metrics, retrain
from mlops_kit.monitoring import run as monitor

NOW = dt.datetime(2026, 3, 1, 11, 0, tzinfo=dt.UTC)


@pytest.fixture
def aws(monkeypatch):
    with mock_aws():
        yield {
            "cloudwatch": boto3.client("cloudwatch", region_name="us-east-1"),
            "sagemaker": boto3.client("sagemaker", region_name="us-east-1"),
        }


def make_pipeline(sagemaker, name: str) -> None:
    sagemaker.create_pipeline(
        PipelineName=name,
        PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": []}),
        RoleArn="arn:aws:iam::123456789012:role/mlops-kit-dev-sagemaker",
    )


def executions(sagemaker, name: str) -> list[dict]:
    return sagemaker.list_pipeline_executions(PipelineName=name)["PipelineExecutionSummaries"]


def test_a_run_writes_model_monitor_files_and_a_summary(tmp_path, baseline_dir, capture_writer):
    source = capture_writer("capture", transactions(2_000, seed=21, drifted=True))
    outcome = monitor.run(baseline_dir, source, tmp_path / "out", endpoint="ep", now=NOW)
    written = {p.name for p in (tmp_path / "out").iterdir()}
    assert written == {"statistics.json", "constraint_violations.json", "run.json"}
    summary = files.read_json(tmp_path / "out" / "run.json")
    assert summary["status"] == "ok" and summary["items"] == 2_000 and summary["drifted"] is True
    assert summary["drift_score"] == outcome.drift_score > 0.2
    violations = files.read_json(tmp_path / "out" / "constraint_violations.json")["violations"]
    assert summary["violations"] == len(violations) > 0


def test_an_empty_window_writes_a_no_data_result(tmp_path, baseline_dir, aws):
    (tmp_path / "capture").mkdir()
    outcome = monitor.run(
        baseline_dir,
        tmp_path / "capture",
        tmp_path / "out",
        endpoint="ep",
        cloudwatch=aws["cloudwatch"],
        now=NOW,
    )
    assert outcome.status == "no_data" and outcome.drift_score is None and outcome.violations == []
    assert files.read_json(tmp_path / "out" / "statistics.json")["dataset"]["item_count"] == 0
    names = {m["MetricName"] for m in aws["cloudwatch"].list_metrics(Namespace=metrics.NAMESPACE)["Metrics"]}
    assert names == {"items", "malformed_lines"}  # no drift_score: the alarm sees missing data, not zero


def test_metrics_carry_the_endpoint_and_feature_dimensions(tmp_path, baseline_dir, capture_writer, aws):
    cloudwatch = aws["cloudwatch"]
    source = capture_writer("capture", transactions(2_000, seed=22, drifted=True))
    outcome = monitor.run(
        baseline_dir, source, tmp_path / "out", endpoint="ep", cloudwatch=cloudwatch, now=NOW
    )
    points = cloudwatch.get_metric_statistics(
        Namespace="mlops-kit/monitoring",
        MetricName="drift_score",
        Dimensions=[{"Name": "Endpoint", "Value": "ep"}],
        StartTime=NOW - dt.timedelta(hours=1),
        EndTime=NOW + dt.timedelta(minutes=1),
        Period=3600,
        Statistics=["Maximum"],
    )["Datapoints"]
    assert [p["Maximum"] for p in points] == [pytest.approx(outcome.drift_score)]
    listed = cloudwatch.list_metrics(Namespace="mlops-kit/monitoring", MetricName="feature_psi")["Metrics"]
    features = {d["Value"] for m in listed for d in m["Dimensions"] if d["Name"] == "Feature"}
    assert features == {"amount", "merchant_category", "channel", "hour", "customer_tenure_days"}
    assert outcome.summary["metrics_emitted"] > 0


@pytest.mark.parametrize(("drifted", "state"), [(True, "ALARM"), (False, "OK")])
def test_the_drift_alarm_goes_off_on_drift_only(tmp_path, baseline_dir, capture_writer, aws, drifted, state):
    cloudwatch = aws["cloudwatch"]
    cloudwatch.put_metric_alarm(**metrics.drift_alarm("kit-dev-drift", "ep", threshold=0.2))
    source = capture_writer("capture", transactions(2_000, seed=23, drifted=drifted))
    monitor.run(baseline_dir, source, tmp_path / "out", endpoint="ep", cloudwatch=cloudwatch, now=NOW)
    assert metrics.evaluate_alarms(cloudwatch, prefix="kit-dev", now=NOW + dt.timedelta(minutes=1)) == {
        "kit-dev-drift": state
    }
    alarm = cloudwatch.describe_alarms(AlarmNames=["kit-dev-drift"])["MetricAlarms"][0]
    assert alarm["StateValue"] == state


def test_alarm_state_follows_cloudwatch_rules():
    rule = {"comparison": "GreaterThanThreshold", "threshold": 0.2, "datapoints_to_alarm": 2}
    assert metrics.alarm_state([0.1, 0.3, 0.5], **rule) == "ALARM"
    assert metrics.alarm_state([0.1, 0.3, None], **rule) == "OK"
    assert metrics.alarm_state([None, None, None], **rule) == "INSUFFICIENT_DATA"
    assert metrics.alarm_state([None, None, 0.3], **rule, treat_missing="breaching") == "ALARM"
    with pytest.raises(ValueError, match="ComparisonOperator"):
        metrics.alarm_state([1.0], comparison="Sideways", threshold=0, datapoints_to_alarm=1)


def test_metrics_need_an_endpoint_name():
    with pytest.raises(ValueError, match="endpoint"):
        metrics.metric_data("", NOW, items=1, malformed=0, violations=0, drift_score=0.1, feature_psi={})


def test_drift_starts_the_training_pipeline_in_sagemaker(tmp_path, baseline_dir, capture_writer, aws):
    sagemaker = aws["sagemaker"]
    make_pipeline(sagemaker, "mlops-kit-dev-training")
    trigger = retrain.sagemaker_trigger(sagemaker, "mlops-kit-dev-training", run_id="job-1")
    source = capture_writer("capture", transactions(2_000, seed=24, drifted=True))
    outcome = monitor.run(
        baseline_dir, source, tmp_path / "out", endpoint="ep", retrain_on_drift=True, trigger=trigger, now=NOW
    )
    started = executions(sagemaker, "mlops-kit-dev-training")
    assert len(started) == 1
    assert outcome.summary["retraining"]["started"] is True
    assert outcome.summary["retraining"]["execution"] == started[0]["PipelineExecutionArn"]


@pytest.mark.parametrize(("drifted", "enabled"), [(False, True), (True, False)])
def test_no_retraining_without_drift_or_when_switched_off(
    tmp_path, baseline_dir, capture_writer, aws, drifted, enabled
):
    sagemaker = aws["sagemaker"]
    make_pipeline(sagemaker, "p")
    trigger = retrain.sagemaker_trigger(sagemaker, "p")
    source = capture_writer("capture", transactions(2_000, seed=25, drifted=drifted))
    outcome = monitor.run(
        baseline_dir,
        source,
        tmp_path / "out",
        endpoint="ep",
        retrain_on_drift=enabled,
        trigger=trigger,
        now=NOW,
    )
    assert executions(sagemaker, "p") == []
    assert outcome.summary["retraining"] is None


def test_a_failed_retraining_start_is_written_down_then_raised(tmp_path, baseline_dir, capture_writer, aws):
    trigger = retrain.sagemaker_trigger(aws["sagemaker"], "no-such-pipeline")
    source = capture_writer("capture", transactions(2_000, seed=26, drifted=True))
    with pytest.raises(RuntimeError, match="retraining failed to start"):
        monitor.run(
            baseline_dir, source, tmp_path / "out", endpoint="ep", retrain_on_drift=True, trigger=trigger
        )
    summary = files.read_json(tmp_path / "out" / "run.json")
    assert summary["retraining"]["started"] is False and "no-such-pipeline" in summary["retraining"]["error"]


def test_the_retraining_decision():
    assert retrain.should_retrain(0.3, 0.2, True)
    assert not retrain.should_retrain(0.2, 0.2, True)
    assert not retrain.should_retrain(0.3, 0.2, False)
    assert not retrain.should_retrain(None, 0.2, True)


def test_each_environment_gets_its_trigger(monkeypatch, aws):
    calls = []
    fake = types.ModuleType("mlops_kit.executor")
    fake.run_pipeline = lambda settings, emulator, parameters: (
        calls.append((settings.env, emulator, parameters)) or "local-1"
    )
    monkeypatch.setitem(sys.modules, "mlops_kit.executor", fake)
    local = settings_mod.load("local")
    assert retrain.for_settings(local, emulator="the-emulator")({"Reason": "drift"}) == "local-1"
    assert calls == [("local", "the-emulator", {"Reason": "drift"})]
    with pytest.raises(ValueError, match="emulator"):
        retrain.for_settings(local)

    dev = settings_mod.load("dev")
    make_pipeline(aws["sagemaker"], "mlops-kit-dev-training")
    arn = retrain.for_settings(dev, sagemaker=aws["sagemaker"])(None)
    assert (
        arn.startswith("arn:aws:sagemaker:")
        and len(executions(aws["sagemaker"], "mlops-kit-dev-training")) == 1
    )


def test_ground_truth_adds_model_quality(tmp_path, baseline_dir, capture_writer):
    frame = transactions(3_000, seed=27)
    source = capture_writer("capture", frame)
    truth = tmp_path / "gt.jsonl"
    truth.write_text(
        "\n".join(
            json.dumps(
                {
                    "groundTruthData": {"data": str(int(y)), "encoding": "CSV"},
                    "eventMetadata": {"eventId": f"e{i}"},
                }
            )
            for i, y in enumerate(frame["is_fraud"])
            if i % 2 == 0  # half the labels have arrived
        )
    )
    outcome = monitor.run(baseline_dir, source, tmp_path / "out", endpoint="ep", ground_truth=truth, now=NOW)
    document = files.read_json(tmp_path / "out" / "model_quality.json")
    metrics_block = document["binary_classification_metrics"]
    assert document["dataset"]["item_count"] == 1_500
    assert metrics_block["auc"]["value"] > 0.6  # the stand-in score carries real signal
    assert outcome.summary["quality"]["labelled"] == 1_500 and outcome.summary["quality"]["by_hour"]
