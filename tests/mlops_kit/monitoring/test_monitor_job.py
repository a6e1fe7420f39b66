"""The Processing job's entry point, its report and the `mlops monitor` commands."""

from __future__ import annotations

import json
import re

import boto3
import numpy as np
import pytest
from monitor_helpers import FEATURES, PREDICTION, transactions, write_answers, write_ground_truth
from moto import mock_aws

from mlops_kit.monitoring import files, job, quality, report, stats
from mlops_kit.monitoring import run as monitor


def test_the_job_defaults_are_the_processing_container_paths(monkeypatch):
    for name in ("BASELINE_DIR", "CAPTURE_PATH", "dataset_source", "OUTPUT_DIR", "output_path"):
        monkeypatch.delenv(name, raising=False)
    args = job.parser().parse_args([])
    assert (args.baseline, args.capture, args.output) == (
        "/opt/ml/processing/baseline",
        "/opt/ml/processing/input/capture",
        "/opt/ml/processing/output",
    )


def test_the_job_takes_its_settings_from_the_environment(monkeypatch):
    monkeypatch.setenv("ENDPOINT_NAME", "ep-from-env")
    monkeypatch.setenv("DRIFT_THRESHOLD", "0.3")
    monkeypatch.setenv("publish_cloudwatch_metrics", "Disabled")
    args = job.parser().parse_args([])
    assert (args.endpoint, args.drift_threshold, args.emit_metrics) == ("ep-from-env", 0.3, False)


@mock_aws
def test_the_job_monitors_emits_and_retrains(tmp_path, baseline_dir, capture_writer, capsys, monkeypatch):
    monkeypatch.delenv("ENDPOINT_NAME", raising=False)
    sagemaker = boto3.client("sagemaker", region_name="us-east-1")
    sagemaker.create_pipeline(
        PipelineName="kit-training",
        PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": []}),
        RoleArn="arn:aws:iam::123456789012:role/kit",
    )
    source = capture_writer("capture", transactions(2_000, seed=31, drifted=True))
    argv = ["--baseline", str(baseline_dir), "--capture", str(source), "--output", str(tmp_path / "out")]
    code = job.main(
        [*argv, "--endpoint", "ep", "--retrain-pipeline", "kit-training", "--region", "us-east-1"]
    )
    assert code == 0
    assert "retraining started" in capsys.readouterr().out
    assert (
        len(sagemaker.list_pipeline_executions(PipelineName="kit-training")["PipelineExecutionSummaries"])
        == 1
    )
    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
    assert cloudwatch.list_metrics(Namespace="mlops-kit/monitoring", MetricName="drift_score")["Metrics"]


def test_the_job_reports_an_empty_window_and_exits_zero(tmp_path, baseline_dir, capsys):
    (tmp_path / "capture").mkdir()
    argv = [
        "--baseline",
        str(baseline_dir),
        "--capture",
        str(tmp_path / "capture"),
        "--output",
        str(tmp_path / "o"),
    ]
    assert job.main([*argv, "--endpoint", "ep", "--no-emit-metrics"]) == 0
    assert capsys.readouterr().out.startswith("no data")


def test_the_job_reports_a_small_window_as_insufficient_and_exits_zero(
    tmp_path, baseline_dir, capture_writer, capsys, monkeypatch
):
    source = capture_writer("capture", transactions(30, seed=61, drifted=True))
    argv = [
        "--baseline",
        str(baseline_dir),
        "--capture",
        str(source),
        "--endpoint",
        "ep",
        "--no-emit-metrics",
    ]
    monkeypatch.setenv("MIN_WINDOW_ROWS", "31")
    assert job.main([*argv, "--output", str(tmp_path / "o")]) == 0
    assert capsys.readouterr().out.startswith("insufficient data: 30 items, fewer than the 31")
    assert files.read_json(tmp_path / "o" / "run.json")["drift_score"] is None
    assert job.main([*argv, "--output", str(tmp_path / "p"), "--min-window-rows", "30"]) == 0
    assert "drift score" in capsys.readouterr().out
    assert files.read_json(tmp_path / "p" / "run.json")["drifted"] is True


def test_the_job_fails_clearly_on_a_bad_baseline_or_no_endpoint(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("ENDPOINT_NAME", raising=False)
    monkeypatch.delenv("endpoint_name", raising=False)
    argv = ["--baseline", str(tmp_path / "none"), "--capture", str(tmp_path), "--output", str(tmp_path / "o")]
    assert job.main([*argv, "--no-emit-metrics"]) == 2
    assert "name the endpoint" in capsys.readouterr().err
    assert job.main([*argv, "--endpoint", "ep", "--no-emit-metrics"]) == 1
    assert "statistics.json: no such file" in capsys.readouterr().err


def test_binary_metrics_and_auc_match_hand_counts():
    labels = np.array([1, 1, 0, 0, 1, 0])
    scores = np.array([0.9, 0.4, 0.6, 0.1, 0.8, 0.3])
    metrics = quality.binary_metrics(labels, scores)["binary_classification_metrics"]
    assert metrics["confusion_matrix"] == {"0": {"0": 2, "1": 1}, "1": {"0": 1, "1": 2}}
    assert metrics["accuracy"]["value"] == pytest.approx(4 / 6)
    pairs = [(p, n) for p in scores[labels == 1] for n in scores[labels == 0]]
    assert metrics["auc"]["value"] == pytest.approx(np.mean([p > n for p, n in pairs]))
    with pytest.raises(ValueError, match="no labelled predictions"):
        quality.binary_metrics(np.array([np.nan]), np.array([0.5]))


def test_the_report_is_self_contained_and_shows_drift_over_time(tmp_path, baseline_dir, capture_writer):
    runs = tmp_path / "runs"
    for day, drifted in ((1, False), (2, True)):  # two runs, a day apart: the second lists the first
        frame = transactions(1_500, seed=50 + day, drifted=drifted)
        source = capture_writer(f"capture{day}", frame, start=f"2026-03-0{day}T10:00:00Z")
        monitor.run(baseline_dir, source, runs / f"2026-03-0{day}T10", endpoint="<ep>")
    path = report.write(runs / "2026-03-02T10", tmp_path / "report.html")
    page = path.read_text()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert not re.search(r"(src|href)\s*=\s*['\"]?https?:", page)  # nothing fetched from anywhere
    assert "<script" not in page
    assert "drift detected" in page and "&lt;ep&gt;" in page and "<ep>" not in page
    assert page.count("<svg") >= 2 + len(FEATURES)  # PSI chart, drift per day, a histogram per feature
    assert "Drift score per day of event time" in page and page.count("<circle") == 1  # its window's day
    assert "<h2>Earlier runs</h2>" in page and page.count("2026-03-01T10:00:00Z to 2026-03-01T10:24:59Z") == 1
    for name in [*FEATURES, PREDICTION]:
        assert name in page


def test_the_report_of_an_empty_run_says_no_data(tmp_path, baseline_dir):
    (tmp_path / "capture").mkdir()
    monitor.run(baseline_dir, tmp_path / "capture", tmp_path / "runs" / "r", endpoint="ep")
    page = report.write(tmp_path / "runs" / "r", tmp_path / "r.html").read_text()
    assert "no data in this window" in page


def test_the_report_needs_a_run(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"run\.json: no such file"):
        report.write(tmp_path, tmp_path / "r.html")


def test_mlops_monitor_commands_baseline_run_and_report(tmp_path, training, capture_writer):
    from mlops_kit.cli import main

    data = tmp_path / "train.parquet"
    training[[*FEATURES, PREDICTION, "is_fraud"]].to_parquet(data)
    features = ",".join(FEATURES)
    base = tmp_path / "base"
    argv = ["monitor", "baseline", "--data", str(data), "--out", str(base), "--features", features]
    assert main([*argv, "--prediction-column", PREDICTION]) == 0
    assert (
        files.read_baseline(base)[1]["monitoring_config"]["distribution_constraints"]["psi_threshold"] == 0.2
    )
    source = capture_writer("capture", transactions(1_000, seed=51, drifted=True))
    run_argv = [
        "monitor",
        "run",
        "--baseline",
        str(base),
        "--capture",
        str(source),
        "--out",
        str(tmp_path / "r"),
    ]
    assert main([*run_argv, "--no-emit-metrics", "--no-retrain"]) == 0
    assert files.read_json(tmp_path / "r" / "run.json")["drifted"] is True
    assert main(["monitor", "report", "--run", str(tmp_path / "r"), "--out", str(tmp_path / "r.html")]) == 0
    assert (tmp_path / "r.html").is_file()
    assert main(["monitor", "baseline", "--data", str(tmp_path / "nope.csv"), "--out", str(base)]) == 1


def regression_window(tmp_path, rows: int = 300, seed: int = 71):
    """A regression's capture (numbers) and its ground truth (numbers)."""
    rng = np.random.default_rng(seed)
    truth = rng.gamma(2.0, 50.0, rows)
    estimates = truth + rng.normal(0, 10, rows)
    frame = transactions(rows, seed=seed)
    source = write_answers(
        tmp_path / "capture" / "a.jsonl", frame, [f"{v:.4f}" for v in estimates], every_s=20
    )
    labels = write_ground_truth(tmp_path / "gt.jsonl", {f"e{i}": f"{truth[i]:.4f}" for i in range(rows)})
    return source, labels


def test_the_job_takes_the_task_and_classes_from_the_environment(monkeypatch):
    monkeypatch.setenv("TASK", "multiclass")
    monkeypatch.setenv("CLASSES", " low, mid ,high ")
    args = job.parser().parse_args([])
    assert args.task == "multiclass" and job.classes(args.classes) == ["low", "mid", "high"]
    monkeypatch.delenv("TASK")
    monkeypatch.delenv("CLASSES")
    args = job.parser().parse_args([])
    assert args.task == "binary" and job.classes(args.classes) is None  # existing schedules keep working
    assert job.TASKS == quality.TASKS


def test_the_job_refuses_an_unknown_task(tmp_path, baseline_dir, capsys, monkeypatch):
    monkeypatch.setenv("TASK", "ranking")
    argv = ["--baseline", str(baseline_dir), "--capture", str(tmp_path), "--output", str(tmp_path / "o")]
    assert job.main([*argv, "--endpoint", "ep", "--no-emit-metrics"]) == 2
    assert "unknown task 'ranking' (--task or TASK); expected one of binary, multiclass, regression" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "o").exists()


def test_the_job_measures_a_regression_as_one(tmp_path, baseline_dir, capsys):
    source, labels = regression_window(tmp_path)
    argv = ["--baseline", str(baseline_dir), "--capture", str(source), "--ground-truth", str(labels)]
    out = tmp_path / "out"
    assert (
        job.main(
            [*argv, "--output", str(out), "--endpoint", "ep", "--no-emit-metrics", "--task", "regression"]
        )
        == 0
    )
    line = capsys.readouterr().out
    assert "model quality (regression, 300 labelled): rmse " in line and "accuracy" not in line
    assert files.read_json(out / "model_quality.json")["regression_metrics"]["rmse"]["value"] > 0
    # The same window under the default task: refused, loudly, after the run's files are written.
    assert (
        job.main([*argv, "--output", str(tmp_path / "again"), "--endpoint", "ep", "--no-emit-metrics"]) == 1
    )
    assert "error: model quality not measured: binary: label " in capsys.readouterr().err
    assert files.read_json(tmp_path / "again" / "run.json")["quality"]["task"] == "binary"


def test_the_report_shows_each_task_its_own_metrics(tmp_path, baseline_dir):
    source, labels = regression_window(tmp_path)
    monitor.run(
        baseline_dir, source, tmp_path / "runs" / "r", endpoint="ep", ground_truth=labels, task="regression"
    )
    page = report.write(tmp_path / "runs" / "r", tmp_path / "r.html").read_text()
    assert "Model quality (regression)" in page and "<th>rmse</th>" in page and "<th>r2</th>" in page
    assert "accuracy" not in page and "rmse by hour" in page

    rng = np.random.default_rng(72)
    truth = rng.choice(["low", "mid", "high"], 200)
    frame = transactions(200, seed=72)
    source = write_answers(tmp_path / "c2" / "a.jsonl", frame, list(truth))
    labels = write_ground_truth(tmp_path / "gt2.jsonl", {f"e{i}": truth[i] for i in range(200)})
    monitor.run(
        baseline_dir, source, tmp_path / "runs" / "m", endpoint="ep", ground_truth=labels, task="multiclass"
    )
    page = report.write(tmp_path / "runs" / "m", tmp_path / "m.html").read_text()
    assert "Model quality (multiclass)" in page and "<th>macro_f1</th>" in page
    assert "<th>recall of low</th>" in page and "accuracy by hour" in page and "<th>auc</th>" not in page


def test_the_report_says_why_quality_was_not_measured():
    summary = {
        "threshold": 0.2,
        "status": "ok",
        "items": 1,
        "violations": 0,
        "malformed": {"count": 0, "examples": []},
        "run_id": "r",
        "created": "2026-03-01T10:00:00Z",
        "features": [],
        "quality": {
            "task": "binary",
            "error": "binary: label 23.4 (item 0) is neither of the classes [0, 1]",
        },
    }
    page = report.render(summary, [], [])
    assert "Model quality (binary)" in page and "Not measured: binary: label 23.4 (item 0)" in page


def test_mlops_monitor_commands_take_the_task_classes_and_label(tmp_path, training):
    from mlops_kit.cli import main

    data = tmp_path / "train.parquet"
    frame = training[[*FEATURES, "is_fraud"]].assign(tier=np.where(training["amount"] < 30, "low", "high"))
    frame.to_parquet(data)
    base = tmp_path / "base"
    argv = ["monitor", "baseline", "--data", str(data), "--out", str(base), "--features", ",".join(FEATURES)]
    assert main([*argv, "--label-column", "tier"]) == 0
    statistics, _ = files.read_baseline(base)
    assert statistics["mlops_kit"]["label_feature"] == "tier" and stats.input_features(statistics) == FEATURES

    rng = np.random.default_rng(73)
    vectors = rng.dirichlet([1, 1], 300)
    names = np.array(["low", "high"])
    source = write_answers(tmp_path / "c" / "a.jsonl", transactions(300, seed=73), list(vectors))
    truth = write_ground_truth(tmp_path / "gt.jsonl", {f"e{i}": names[i % 2] for i in range(300)})
    run_argv = [
        "monitor",
        "run",
        "--baseline",
        str(base),
        "--capture",
        str(source),
        "--out",
        str(tmp_path / "r"),
    ]
    run_argv += ["--ground-truth", str(truth), "--no-emit-metrics", "--no-retrain"]
    assert main([*run_argv, "--task", "multiclass", "--classes", "low,high"]) == 0
    summary = files.read_json(tmp_path / "r" / "run.json")
    assert summary["task"] == "multiclass" and summary["quality"]["labelled"] == 300
    expected = np.mean(names[vectors.argmax(axis=1)] == names[np.arange(300) % 2])
    assert summary["quality"]["accuracy"] == pytest.approx(expected)
    assert summary["label_psi"] is not None
    assert main([*run_argv, "--task", "ranking"]) == 2


def test_the_log_line_names_quality_or_why_it_is_missing():
    summary = {
        "status": "ok",
        "items": 10,
        "violations": 0,
        "drift_score": 0.01,
        "threshold": 0.2,
        "malformed": {"count": 0, "examples": []},
        "quality": {
            "task": "multiclass",
            "labelled": 8,
            "accuracy": 0.875,
            "macro_f1": 0.5,
            "weighted_f1": None,
        },
    }
    assert job.describe(summary).endswith(
        "; model quality (multiclass, 8 labelled): accuracy 0.875, macro_f1 0.5"
    )
    summary["quality"] = {"task": "regression", "error": "regression: label 'cat' (item 0) is not a number"}
    assert job.describe(summary).endswith(
        "; model quality not measured: regression: label 'cat' (item 0) is not a number"
    )


def test_fail_on_drift_exits_4_after_writing_the_run(
    tmp_path, baseline_dir, capture_writer, training
) -> None:
    """A drifted window: the files are written, then the documented code 4 (0 without the flag)."""
    from mlops_kit.cli import exit_codes, main

    capture = capture_writer("drifted", transactions(1_000, seed=51, drifted=True))
    common = ["monitor", "run", "--baseline", str(baseline_dir), "--capture", str(capture)]
    common += ["--no-emit-metrics", "--no-retrain", "--task", "binary"]
    assert main([*common, "--out", str(tmp_path / "a")]) == 0
    assert main([*common, "--out", str(tmp_path / "b"), "--fail-on-drift"]) == exit_codes.DRIFT
    assert json.loads((tmp_path / "b" / "run.json").read_text())["drifted"] is True
    calm = capture_writer("calm", training.sample(2_000, random_state=0))  # the baseline's own data
    quiet = ["monitor", "run", "--baseline", str(baseline_dir), "--capture", str(calm), "--no-emit-metrics"]
    assert (
        main([*quiet, "--no-retrain", "--task", "binary", "--out", str(tmp_path / "c"), "--fail-on-drift"])
        == 0
    )


def test_a_scheduled_run_reads_its_hours_and_writes_under_its_own(
    tmp_path, baseline_dir, capture_writer, capsys
):
    source = capture_writer("capture", transactions(500, seed=41))  # the hour 2026-03-01 10:00
    argv = ["--baseline", str(baseline_dir), "--capture", str(source), "--output", str(tmp_path / "out")]
    argv += ["--endpoint", "ep", "--no-emit-metrics", "--window-hours", "1"]
    assert job.main([*argv, "--scheduled-time", "2026-03-01T11:05:00Z"]) == 0
    within = json.loads((tmp_path / "out" / "2026" / "03" / "01" / "11" / "run.json").read_text())
    assert within["items"] == 500
    assert within["window"]["partitions"] == {"start": "2026-03-01T10:00:00Z", "end": "2026-03-01T11:00:00Z"}
    # an hour later the window is [11:00, 12:00): nothing of 10:00 is read, and the first run stays
    assert job.main([*argv, "--scheduled-time", "2026-03-01T12:05:00Z"]) == 0
    later = json.loads((tmp_path / "out" / "2026" / "03" / "01" / "12" / "run.json").read_text())
    assert (later["status"], later["files"]) == ("no_data", 0)
    assert (
        json.loads((tmp_path / "out" / "2026" / "03" / "01" / "11" / "run.json").read_text())["items"] == 500
    )
    assert job.main([*argv, "--scheduled-time", "at noon"]) == 2
    assert "SCHEDULED_TIME" in capsys.readouterr().err
