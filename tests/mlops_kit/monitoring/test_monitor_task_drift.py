"""Prediction drift and label drift for each task type, with the kit's drift measures."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from monitor_helpers import FEATURES, transactions, write_answers, write_ground_truth

from mlops_kit.monitoring import capture, checks, metrics, stats
from mlops_kit.monitoring import run as monitor

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
NAMES = ["low", "mid", "high"]


def tiers(frame: pd.DataFrame) -> np.ndarray:
    """A three-class stand-in: the amount's tier (a third of the training data each)."""
    amount = frame["amount"].to_numpy()
    return np.where(amount < 22, "low", np.where(amount < 45, "mid", "high"))


@pytest.fixture(scope="module")
def multiclass_baseline() -> tuple[dict, dict]:
    training = transactions(20_000, seed=11)
    training["predicted_tier"] = tiers(training)
    training["tier"] = tiers(training)
    return stats.baseline(
        training,
        features=FEATURES,
        prediction_column="predicted_tier",
        label_column="tier",
        psi_threshold=0.2,
    )


@pytest.fixture(scope="module")
def regression_baseline() -> tuple[dict, dict]:
    training = transactions(20_000, seed=11)
    training["estimate"] = training["amount"] * 1.1
    training["spend"] = training["amount"] * 1.2
    return stats.baseline(
        training, features=FEATURES, prediction_column="estimate", label_column="spend", psi_threshold=0.2
    )


def window(tmp_path, frame: pd.DataFrame, answers: list) -> capture.Window:
    path = write_answers(tmp_path / f"c{len(list(tmp_path.iterdir()))}.jsonl", frame, answers)
    return capture.read(path, FEATURES)


def drifted(outcome: monitor.Outcome) -> dict[str, str]:
    return {
        v["feature_name"]: v["description"]
        for v in outcome.violations
        if v["constraint_check_type"] == "baseline_drift_check"
    }


def feature(outcome: monitor.Outcome, name: str) -> dict:
    return next(f for f in outcome.statistics["features"] if f["name"] == name)


def test_the_label_is_no_request_column(multiclass_baseline):
    statistics, _ = multiclass_baseline
    assert stats.input_features(statistics) == FEATURES
    assert (
        stats.label_feature(statistics) == "tier" and stats.prediction_feature(statistics) == "predicted_tier"
    )


@pytest.mark.parametrize("seed_drifted", [(31, False), (32, True)])
def test_class_predictions_and_labels_drift_as_categories(tmp_path, multiclass_baseline, seed_drifted):
    seed, shifted = seed_drifted
    statistics, constraints = multiclass_baseline
    frame = transactions(3_000, seed=seed, drifted=shifted)
    classes = tiers(frame)
    labels = {f"e{i}": [classes[i]] for i in range(0, 3_000, 2)}  # half the labels have arrived
    outcome = monitor.evaluate(
        statistics, constraints, window(tmp_path, frame, list(classes)), labels=labels, task="multiclass"
    )
    prediction, label = feature(outcome, "predicted_tier"), feature(outcome, "tier")
    assert prediction["mlops_kit"]["drift"]["kind"] == label["mlops_kit"]["drift"]["kind"] == "categorical"
    assert label["string_statistics"]["common"]["num_present"] == 1_500
    found = drifted(outcome)
    summary = outcome.summary
    if shifted:
        assert "L-infinity" in found["predicted_tier"] and "L-infinity" in found["tier"]
        assert summary["prediction_psi"] > 0.2 and summary["label_psi"] > 0.2
    else:
        assert "predicted_tier" not in found and "tier" not in found
        assert summary["prediction_psi"] < 0.05 and summary["label_psi"] < 0.05
    # Half the labels missing is not a fault of the data, and the label is not a column of the requests.
    kinds = {(v["feature_name"], v["constraint_check_type"]) for v in outcome.violations}
    assert not {k for k in kinds if k[0] == "tier" and k[1] != "baseline_drift_check"}
    assert summary["label_psi"] == checks.drift_scores(outcome.statistics)["tier"]
    assert summary["drift_score"] == max(
        v for k, v in checks.drift_scores(outcome.statistics).items() if k in FEATURES
    )


def test_without_ground_truth_the_label_is_neither_measured_nor_missing(tmp_path, multiclass_baseline):
    statistics, constraints = multiclass_baseline
    frame = transactions(1_000, seed=33)
    outcome = monitor.evaluate(
        statistics, constraints, window(tmp_path, frame, list(tiers(frame))), task="multiclass"
    )
    assert all(v["feature_name"] != "tier" for v in outcome.violations)
    assert outcome.summary["label_psi"] is None
    assert "tier" not in {f["name"] for f in outcome.statistics["features"]}


def test_probability_vectors_drift_by_the_class_they_name(tmp_path, multiclass_baseline):
    statistics, constraints = multiclass_baseline
    frame = transactions(2_000, seed=34, drifted=True)
    rng = np.random.default_rng(35)
    vectors = rng.dirichlet([1, 1, 3], 2_000)  # mostly "high": the drifted amounts' tier
    outcome = monitor.evaluate(
        statistics, constraints, window(tmp_path, frame, list(vectors)), task="multiclass", classes=NAMES
    )
    measured = feature(outcome, "predicted_tier")["mlops_kit"]["drift"]
    counts = dict(zip(measured["histogram"]["values"], measured["histogram"]["current"], strict=True))
    named = np.array(NAMES)[vectors.argmax(axis=1)]
    assert {c: counts[c] for c in NAMES} == {c: int(np.sum(named == c)) for c in NAMES}
    assert "predicted_tier" in drifted(outcome)


def test_binary_scores_drift_as_classes_against_a_baseline_of_classes(tmp_path):
    training = transactions(20_000, seed=11)
    training["decision"] = np.where(training["prediction"] >= 0.5, "fraud", "legit")
    statistics, constraints = stats.baseline(training, features=FEATURES, prediction_column="decision")
    frame = transactions(1_000, seed=36)
    scores = np.full(1_000, 0.5)
    scores[::2] = np.nextafter(0.5, 0.0)  # half at the threshold (fraud), half one ulp below (legit)
    outcome = monitor.evaluate(
        statistics,
        constraints,
        window(tmp_path, frame, list(scores)),
        task="binary",
        classes=["legit", "fraud"],
    )
    measured = feature(outcome, "decision")["mlops_kit"]["drift"]
    counts = dict(zip(measured["histogram"]["values"], measured["histogram"]["current"], strict=True))
    assert counts["fraud"] == counts["legit"] == 500


def test_regression_predictions_and_labels_drift_as_numbers(tmp_path, regression_baseline):
    statistics, constraints = regression_baseline
    frame = transactions(3_000, seed=37, drifted=True)
    estimates = frame["amount"].to_numpy() * 1.1
    labels = {f"e{i}": [float(frame["amount"].iloc[i] * 1.2)] for i in range(3_000)}
    answers = [f"{v:.6f}" for v in estimates]
    outcome = monitor.evaluate(
        statistics, constraints, window(tmp_path, frame, answers), labels=labels, task="regression"
    )
    assert feature(outcome, "estimate")["mlops_kit"]["drift"]["kind"] == "numeric"
    assert feature(outcome, "spend")["mlops_kit"]["drift"]["kind"] == "numeric"
    found = drifted(outcome)
    assert "KS distance" in found["estimate"] and "KS distance" in found["spend"]
    assert outcome.summary["prediction_psi"] > 0.2 and outcome.summary["label_psi"] > 0.2
    assert outcome.summary["quality"]["rmse"] == pytest.approx(
        np.sqrt(np.mean((np.round(estimates, 6) - frame["amount"].to_numpy() * 1.2) ** 2)), rel=1e-6
    )


def test_label_drift_reaches_cloudwatch_as_its_own_metric():
    data = metrics.metric_data(
        "ep", NOW, items=10, malformed=0, violations=0, drift_score=0.1, feature_psi={"a": 0.1}, label_psi=0.3
    )
    assert [(d["MetricName"], d["Value"]) for d in data if d["MetricName"] == "label_psi"] == [
        ("label_psi", 0.3)
    ]
    quiet = metrics.metric_data(
        "ep", NOW, items=10, malformed=0, violations=0, drift_score=0.1, feature_psi={}
    )
    assert "label_psi" not in {d["MetricName"] for d in quiet}


def test_a_run_sends_label_psi_apart_from_the_features(tmp_path, multiclass_baseline, monkeypatch):
    from monitor_helpers import write_ground_truth

    from mlops_kit.monitoring import files

    sent: list[dict] = []

    class Recorder:
        def put_metric_data(self, Namespace, MetricData):  # noqa: N803 - boto3's names
            sent.extend(MetricData)

    baseline = files.write_baseline(tmp_path / "baseline", *multiclass_baseline)[0].parent
    frame = transactions(600, seed=38, drifted=True)
    classes = tiers(frame)
    source = write_answers(tmp_path / "capture" / "a.jsonl", frame, list(classes))
    truth = write_ground_truth(tmp_path / "gt.jsonl", {f"e{i}": classes[i] for i in range(600)})
    monitor.run(
        baseline,
        source,
        tmp_path / "out",
        endpoint="ep",
        cloudwatch=Recorder(),
        ground_truth=truth,
        task="multiclass",
        now=NOW,
    )
    features = {
        d["Value"]
        for m in sent
        if m["MetricName"] == "feature_psi"
        for d in m["Dimensions"]
        if d["Name"] == "Feature"
    }
    assert features == set(FEATURES)
    assert [m["MetricName"] for m in sent].count("label_psi") == 1
    assert [m["MetricName"] for m in sent].count("prediction_psi") == 1


def test_the_drift_score_leaves_the_label_out(tmp_path, multiclass_baseline):
    statistics, constraints = multiclass_baseline
    frame = transactions(2_000, seed=39)  # the training distribution
    labels = {f"e{i}": ["high"] for i in range(2_000)}  # but every label one class: label drift alone
    outcome = monitor.evaluate(
        statistics, constraints, window(tmp_path, frame, list(tiers(frame))), labels=labels, task="multiclass"
    )
    scores = checks.drift_scores(outcome.statistics)
    assert outcome.summary["label_psi"] == scores["tier"] > 1
    assert outcome.drift_score == max(scores[f] for f in FEATURES) < 1


def test_classes_that_read_as_numbers_match_a_baseline_of_text(tmp_path):
    """Ground truth "2" reads as the number 2.0, and a model may answer 2; against a baseline whose
    classes are text ("2", "10", "other") both must still be the class "2", not an unseen "2.0"."""
    training = transactions(6_000, seed=11)
    codes = np.array(["2", "10", "other"])[np.arange(6_000) % 3]
    training["code"], training["predicted_code"] = codes, codes
    statistics, constraints = stats.baseline(
        training, features=FEATURES, prediction_column="predicted_code", label_column="code"
    )
    assert stats.feature_types(statistics)["code"] == "String"
    frame = transactions(900, seed=40)
    mix = np.array([2, 10, "other"], dtype=object)[np.arange(900) % 3]
    labels = capture.read_ground_truth(
        write_ground_truth(tmp_path / "gt.jsonl", {f"e{i}": mix[i] for i in range(900)})
    )
    assert labels["e0"] == [2.0]
    outcome = monitor.evaluate(
        statistics, constraints, window(tmp_path, frame, list(mix)), labels=labels, task="multiclass"
    )
    for name in ("code", "predicted_code"):
        assert feature(outcome, name)["mlops_kit"]["drift"]["unseen"] == 0
    assert outcome.summary["label_psi"] == pytest.approx(0.0, abs=1e-9)
    assert outcome.summary["prediction_psi"] == pytest.approx(0.0, abs=1e-9)
