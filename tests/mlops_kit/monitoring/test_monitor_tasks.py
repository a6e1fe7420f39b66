"""A monitoring run for each task type, from capture files and ground truth to model_quality.json and
run.json."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
from monitor_helpers import transactions, write_answers, write_ground_truth
from sklearn import metrics as sk

from mlops_kit.monitoring import files
from mlops_kit.monitoring import run as monitor

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
TOL = 1e-9


def keys(document) -> set[str]:
    """Every key anywhere in a JSON document."""
    if isinstance(document, dict):
        return set(document) | {k for v in document.values() for k in keys(v)}
    if isinstance(document, list):
        return {k for v in document for k in keys(v)}
    return set()


def monitored(tmp_path, baseline_dir, answers, labels: dict, **kwargs):
    frame = transactions(len(answers), seed=61)
    capture = write_answers(tmp_path / "capture" / "part.jsonl", frame, answers, every_s=15)
    truth = write_ground_truth(tmp_path / "gt.jsonl", labels)
    out = tmp_path / "out"
    outcome = monitor.run(baseline_dir, capture, out, endpoint="ep", ground_truth=truth, now=NOW, **kwargs)
    return outcome, files.read_json(out / "model_quality.json"), files.read_json(out / "run.json")


def test_string_class_labels_end_to_end(tmp_path, baseline_dir):
    rng = np.random.default_rng(62)
    truth = rng.choice(["bronze", "silver", "gold"], 600)
    answers = np.where(rng.random(600) < 0.75, truth, "bronze")
    labelled = {f"e{i}": truth[i] for i in range(0, 600, 2)}  # half the labels have arrived
    _, document, summary = monitored(tmp_path, baseline_dir, list(answers), labelled, task="multiclass")
    kept = np.arange(0, 600, 2)
    block = document["multiclass_classification_metrics"]
    assert document["dataset"]["item_count"] == 300
    assert block["accuracy"]["value"] == pytest.approx(sk.accuracy_score(truth[kept], answers[kept]), abs=TOL)
    assert block["macro_f1"]["value"] == pytest.approx(
        sk.f1_score(truth[kept], answers[kept], average="macro"), abs=TOL
    )
    assert set(block["confusion_matrix"]) == {"bronze", "gold", "silver"}
    quality = summary["quality"]
    assert quality["task"] == "multiclass" and quality["labelled"] == 300
    assert quality["accuracy"] == block["accuracy"]["value"]
    recall = sk.recall_score(truth[kept], answers[kept], labels=["bronze", "gold", "silver"], average=None)
    assert [quality["recall_by_class"][c] for c in ("bronze", "gold", "silver")] == pytest.approx(
        recall, abs=TOL
    )
    assert quality["by_hour"] and all(set(h) == {"start", "count", "accuracy"} for h in quality["by_hour"])
    assert summary["task"] == "multiclass" and document["mlops_kit"]["unlabelled"] == 300


def test_probability_vector_answers_end_to_end(tmp_path, baseline_dir):
    rng = np.random.default_rng(63)
    names = np.array(["low", "mid", "high"])
    vectors = rng.dirichlet([2, 2, 2], 400)
    truth = np.where(rng.random(400) < 0.7, vectors.argmax(axis=1), rng.integers(0, 3, 400))
    labels = {f"e{i}": names[truth[i]] for i in range(400)}
    _, document, summary = monitored(
        tmp_path, baseline_dir, list(vectors), labels, task="multiclass", classes=list(names)
    )
    accuracy = sk.accuracy_score(truth, vectors.argmax(axis=1))
    assert document["multiclass_classification_metrics"]["accuracy"]["value"] == pytest.approx(
        accuracy, abs=TOL
    )
    assert document["mlops_kit"]["classes"] == ["low", "mid", "high"]
    assert summary["quality"]["accuracy"] == pytest.approx(accuracy, abs=TOL)


def test_binary_probability_pairs_end_to_end(tmp_path, baseline_dir):
    rng = np.random.default_rng(64)
    truth = rng.integers(0, 2, 400)
    positive = np.clip(0.3 * truth + 0.7 * rng.random(400), 0, 1)
    pairs = np.column_stack([1 - positive, positive])
    _, document, summary = monitored(
        tmp_path, baseline_dir, list(pairs), {f"e{i}": int(truth[i]) for i in range(400)}
    )
    block = document["binary_classification_metrics"]
    assert block["auc"]["value"] == pytest.approx(sk.roc_auc_score(truth, positive), abs=TOL)
    assert block["au_prc"]["value"] == pytest.approx(sk.average_precision_score(truth, positive), abs=TOL)
    assert summary["quality"]["task"] == "binary" and summary["quality"]["auc"] == block["auc"]["value"]


def test_a_regression_capture_never_reports_accuracy(tmp_path, baseline_dir):
    rng = np.random.default_rng(65)
    truth = rng.gamma(2.0, 50.0, 300)
    estimates = truth + rng.normal(0, 10, 300)
    answers = [f"{v:.6f}" for v in estimates]  # CSV numbers
    labels = {f"e{i}": f"{truth[i]:.6f}" for i in range(300)}
    _, document, summary = monitored(tmp_path, baseline_dir, answers, labels, task="regression")
    y, p = np.round(truth, 6), np.round(estimates, 6)
    block = document["regression_metrics"]
    assert block["rmse"]["value"] == pytest.approx(math.sqrt(sk.mean_squared_error(y, p)), abs=1e-6)
    assert block["r2"]["value"] == pytest.approx(sk.r2_score(y, p), abs=1e-9)
    quality = summary["quality"]
    assert set(quality) == {"task", "labelled", "rmse", "mae", "r2", "mse", "by_hour"}
    assert not any("accuracy" in k or "auc" in k for k in keys(summary) | keys(document))


def test_a_task_that_does_not_fit_fails_the_run_after_writing_it(tmp_path, baseline_dir):
    rng = np.random.default_rng(66)
    truth = rng.gamma(2.0, 50.0, 50)
    answers = [f"{v:.3f}" for v in truth]
    labels = {f"e{i}": f"{truth[i]:.3f}" for i in range(50)}
    with pytest.raises(
        ValueError, match=r"^model quality not measured: binary: label .* is neither of the classes"
    ):
        monitored(tmp_path, baseline_dir, answers, labels)  # a regression, monitored as the default task
    summary = files.read_json(tmp_path / "out" / "run.json")
    assert summary["quality"]["task"] == "binary"
    assert "is neither of the classes [0, 1]" in summary["quality"]["error"]
    assert not (tmp_path / "out" / "model_quality.json").exists()
    assert (tmp_path / "out" / "statistics.json").exists()


def test_an_unknown_task_is_refused(tmp_path, baseline_dir):
    with pytest.raises(
        ValueError, match="unknown task 'ranking'; expected one of binary, multiclass, regression"
    ):
        monitored(tmp_path, baseline_dir, ["0.5"], {"e0": "1"}, task="ranking")
    assert not (tmp_path / "out").exists()


def test_an_answer_with_a_label_and_scores_is_read_by_the_task(tmp_path, baseline_dir):
    """Linear Learner answers `{"predicted_label": ..., "score": ...}`: a binary model is measured on its
    score (AUC needs one), a multiclass model on the class it answered, even where that is not the
    argmax of its scores (a model may weigh classes by cost)."""
    rng = np.random.default_rng(67)
    truth = rng.integers(0, 2, 300)
    score = np.clip(0.3 * truth + 0.7 * rng.random(300), 0, 1)
    answers = [{"predicted_label": int(s >= 0.9), "score": float(s)} for s in score]
    _, document, _ = monitored(
        tmp_path / "b", baseline_dir, answers, {f"e{i}": int(truth[i]) for i in range(300)}
    )
    assert document["binary_classification_metrics"]["auc"]["value"] == pytest.approx(
        sk.roc_auc_score(truth, score), abs=TOL
    )

    vectors = rng.dirichlet([1, 1, 1], 300)
    decided = np.where(rng.random(300) < 0.3, 2, vectors.argmax(axis=1))
    truth = np.where(rng.random(300) < 0.7, decided, rng.integers(0, 3, 300))
    answers = [
        {"predicted_label": int(d), "score": v.tolist()} for d, v in zip(decided, vectors, strict=True)
    ]
    labels = {f"e{i}": int(truth[i]) for i in range(300)}
    _, document, _ = monitored(tmp_path / "m", baseline_dir, answers, labels, task="multiclass")
    accuracy = document["multiclass_classification_metrics"]["accuracy"]["value"]
    assert accuracy == pytest.approx(sk.accuracy_score(truth, decided), abs=TOL)
    assert accuracy != pytest.approx(sk.accuracy_score(truth, vectors.argmax(axis=1)), abs=1e-3)
