"""A regression and a three-class use case made by `mlops init`, through the local lifecycle: train,
register, promote (champion against challenger on the same rows: a better retrained model goes in, a
worse one is refused), deploy and invoke. The kit is the same; only the use case differs."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, mean_squared_error

from mlops_kit import executor, local_platform, naming, project, settings
from mlops_kit.cli import main
from mlops_kit.monitoring import stats
from mlops_kit.registry import promotion
from mlops_kit.serving import local

ROOT = Path(__file__).resolve().parents[2]
# Settings that make a retrained model worse than the champion yet good enough for the absolute gates.
WEAKER = {
    "regression": "      max_iter: 10\n      learning_rate: 0.1\n",
    "multiclass": "      max_iter: 30\n      learning_rate: 0.01\n",
}
DRIFT = "2026-02-01"


def _make(folder: Path, task: str) -> Path:
    assert main(["init", str(folder), "--task", task, "--kit-path", str(ROOT)]) == 0
    # `make setup` would lock the project's dependencies (uv, online); the lifecycle needs only a lock
    # file for the image's tag to hash, so the kit's own lock stands in for it here.
    shutil.copy(ROOT / "uv.lock", folder / "uv.lock")
    return folder


def _upload(emulator, config: settings.Settings, frame: pd.DataFrame, part: str) -> None:
    platform = local_platform.ensure(config, emulator.client)
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    emulator.client("s3").put_object(
        Bucket=platform.buckets["raw"], Key=f"events/{part}.parquet", Body=buffer.getvalue()
    )


def _monitor_with_ground_truth(config, emulator, package_arn: str, labels: list, folder: Path):
    """The kit's monitor over the endpoint's capture, with ground truth written for each captured
    request (its eventId), one label per request row (a CSV line each), in the order the rows were sent."""
    import json as json_mod

    from mlops_kit.executor.jobs import download_prefix
    from mlops_kit.monitoring import capture, files
    from mlops_kit.monitoring import run as monitoring

    s3 = emulator.client("s3")
    platform = local_platform.ensure(config, emulator.client)
    case = project.use_case(config)
    described = emulator.client("sagemaker").describe_model_package(ModelPackageName=package_arn)
    statistics = described["ModelMetrics"]["ModelDataQuality"]["Statistics"]["S3Uri"]
    baseline = folder / "baseline"
    download_prefix(s3, statistics.rsplit("/", 1)[0] + "/", baseline)
    source = f"s3://{platform.buckets['capture']}/datacapture/{naming.endpoint(config)}/"
    features = stats.input_features(files.read_baseline(baseline)[0])
    window = capture.read(source, features, s3=s3)
    assert len(window.event_ids) == len(labels)
    truth: dict[str, list] = {}
    for event, label in zip(window.event_ids, labels, strict=True):
        truth.setdefault(event, []).append(label)
    ground_truth = folder / "ground-truth.jsonl"
    ground_truth.write_text(
        "".join(
            json_mod.dumps({"groundTruthData": {"data": "\n".join(map(str, v)), "encoding": "CSV"},
                            "eventMetadata": {"eventId": e}}) + "\n"
            for e, v in truth.items()
        )
    )  # fmt: skip
    return monitoring.run(
        baseline,
        source,
        folder / "monitor",
        endpoint=naming.endpoint(config),
        s3=s3,
        ground_truth=ground_truth,
        task=str(case.task),
        classes=list(case.classes) or None,
    )


def _edit_hyperparameters(config: settings.Settings, text: str) -> settings.Settings:
    path = config.file
    source = path.read_text()
    assert "      max_iter: 100\n      learning_rate: 0.1\n" in source
    path.write_text(source.replace("      max_iter: 100\n      learning_rate: 0.1\n", text))
    return settings.load(config.env, path.parent.parent)


@pytest.mark.parametrize("task", ["regression", "multiclass"])
def test_an_init_use_case_runs_the_local_lifecycle(
    task: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emulator
) -> None:
    folder = _make(tmp_path / f"shop-{task}", task)
    monkeypatch.setenv("MLOPS_PROJECT_DIR", str(folder))
    monkeypatch.chdir(folder)
    monkeypatch.syspath_prepend(str(folder))
    config = settings.load("local")
    case = project.use_case(config)
    assert case.task == task and case.name == f"shop-{task}"
    decider = case.decider
    frame = project.entry_point(config, "sample_data")(5000, seed=3, drift_from=DRIFT)
    before, after = frame[frame["event_time"] < DRIFT], frame[frame["event_time"] >= DRIFT]

    # Train and register on the data before the drift; promote through dev to staging (the local stage).
    _upload(emulator, config, before, "part-1")
    first = executor.run_pipeline(config, emulator)
    champion = first.artifacts["model_package"]
    assert set(first.metrics) >= set(case.metric_names)
    for stage in ("dev", "staging"):
        outcome = promotion.promote(
            config, emulator.client, stage=stage, package_arn=champion, approved_by="test"
        )
        assert outcome.decision.approved

    # Deploy the champion; the drifted window's requests go to it, captured in SageMaker's format.
    endpoint = local.deploy(config, emulator, champion, port=0)
    traffic = after.head(200)
    predictions: list = []
    try:
        requests = project.entry_point(config, "request_builder")(traffic, before)
        for start in range(0, len(requests), 20):
            body = requests.iloc[start : start + 20].to_csv(header=False, index=False)
            answer = endpoint.invoke(body, content_type="text/csv")
            predictions += answer["predictions"] if isinstance(answer, dict) else answer
    finally:
        local.stop(config)  # flushes the capture
    assert len(predictions) == len(traffic)
    if task == "multiclass":
        assert set(predictions) <= set(case.classes)  # class names, as the model answers them
    else:
        assert all(isinstance(p, float) for p in predictions)

    # Their labels arrive: the monitor measures the model's quality as the task defines it.
    outcome = _monitor_with_ground_truth(config, emulator, champion, traffic[case.label].tolist(), tmp_path)
    text = json.dumps(outcome.quality)
    if task == "regression":
        block = outcome.quality["regression_metrics"]
        expected = mean_squared_error(traffic[case.label], predictions) ** 0.5
        assert block["rmse"]["value"] == pytest.approx(expected) and "accuracy" not in text
    else:
        block = outcome.quality["multiclass_classification_metrics"]
        assert block["accuracy"]["value"] == pytest.approx(accuracy_score(traffic[case.label], predictions))

    # The drifted window's labels arrive; retraining on everything beats the champion on the new rows.
    _upload(emulator, config, after, "part-2")
    second = executor.run_pipeline(config, emulator)
    challenger = second.artifacts["model_package"]
    promoted = promotion.promote(
        config, emulator.client, stage="dev", package_arn=challenger, approved_by="test"
    )
    gain = next(c for c in promoted.decision.checks if c.name.startswith(f"gain in {decider.name}"))
    assert promoted.decision.basis == "same data" and gain.passed and gain.value > 0
    assert "on the same" in gain.note and second.execution_id in gain.note

    # A retrained model made worse by its settings passes the absolute gates but loses on the same rows.
    weaker = _edit_hyperparameters(config, WEAKER[task])
    third = executor.run_pipeline(weaker, emulator, use_cache=False)
    with pytest.raises(promotion.PromotionRefused) as refused:
        promotion.promote(weaker, emulator.client, stage="dev", package_arn=third.artifacts["model_package"])
    failed = [c.name for c in refused.value.decision.failures]
    assert failed == [gain.name] and refused.value.decision.basis == "same data"


def test_a_fresh_project_runs_its_pipeline_with_no_data_prepared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`mlops pipeline run --env local` on a fresh project: the use case's sample data is seeded where
    the pipeline reads, the run says so, and a model is registered."""
    folder = _make(tmp_path / "fresh", "binary")
    monkeypatch.setenv("MLOPS_PROJECT_DIR", str(folder))
    monkeypatch.chdir(folder)
    monkeypatch.syspath_prepend(str(folder))
    assert main(["pipeline", "run", "--env", "local"]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "no data under s3://fresh-local-raw-123456789012/events/: seeded 20,000 rows" in printed
    from mlops_kit import executor

    [run] = executor.list_runs()
    assert run.status == "Succeeded" and run.artifacts["model_package"].endswith(
        "model-package/fresh-local-models/1"
    )
