"""Model quality for binary, multiclass and regression models, against scikit-learn's own metrics."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as sk

from mlops_kit.monitoring import quality

TOL = 1e-9


def value(block: dict, name: str) -> float | None:
    return block[name]["value"]


# --- binary -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def binary_sample() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(101)
    labels = rng.integers(0, 2, 3_000)
    # Scores with signal, rounded so that many share a value: ties are where ranks and curves go wrong.
    scores = np.round(np.clip(0.35 * labels + rng.beta(2, 3, 3_000), 0, 1), 2)
    return labels, scores


def test_binary_quality_matches_scikit_learn(binary_sample):
    labels, scores = binary_sample
    document = quality.model_quality("binary", labels, scores)
    block = document["binary_classification_metrics"]
    predicted = (scores >= 0.5).astype(int)
    (tn, fp), (fn, tp) = sk.confusion_matrix(labels, predicted)
    assert block["confusion_matrix"] == {"0": {"0": tn, "1": fp}, "1": {"0": fn, "1": tp}}
    expected = {
        "accuracy": sk.accuracy_score(labels, predicted),
        "precision": sk.precision_score(labels, predicted),
        "recall": sk.recall_score(labels, predicted),
        "true_negative_rate": tn / (tn + fp),
        "false_positive_rate": fp / (tn + fp),
        "false_negative_rate": fn / (fn + tp),
        "f0_5": sk.fbeta_score(labels, predicted, beta=0.5),
        "f1": sk.f1_score(labels, predicted),
        "f2": sk.fbeta_score(labels, predicted, beta=2),
        "auc": sk.roc_auc_score(labels, scores),
        "au_prc": sk.average_precision_score(labels, scores),
        "brier_score": sk.brier_score_loss(labels, scores),
    }
    for name, want in expected.items():
        assert value(block, name) == pytest.approx(want, abs=TOL), name
    assert document["dataset"] == {"item_count": 3_000}
    n = len(labels)
    accuracy = expected["accuracy"]
    assert block["accuracy"]["standard_deviation"] == pytest.approx(math.sqrt(accuracy * (1 - accuracy) / n))
    assert document["mlops_kit"] == {"task": "binary", "threshold": 0.5, "classes": ["0", "1"]}


def test_binary_reads_probability_pairs_and_named_classes(binary_sample):
    labels, scores = binary_sample
    pairs = np.column_stack([1 - scores, scores])
    named = np.where(labels == 1, "fraud", "legit")
    from_pairs = quality.model_quality("binary", named, pairs, classes=["legit", "fraud"])
    from_scores = quality.model_quality("binary", labels, scores)
    assert from_pairs["binary_classification_metrics"] == from_scores["binary_classification_metrics"]
    # A class answer reads as score 1 (positive) or 0.
    answered = np.where(scores >= 0.5, "fraud", "legit")
    block = quality.model_quality("binary", named, answered, classes=["legit", "fraud"])[
        "binary_classification_metrics"
    ]
    assert value(block, "accuracy") == pytest.approx(sk.accuracy_score(labels, scores >= 0.5), abs=TOL)


@pytest.mark.parametrize("threshold", [0.5, 0.3])
def test_a_score_equal_to_the_threshold_is_positive_one_ulp_below_is_not(threshold):
    at, below = threshold, np.nextafter(threshold, 0.0)
    block = quality.model_quality("binary", [1, 0], [at, below], threshold=threshold)[
        "binary_classification_metrics"
    ]
    assert block["confusion_matrix"] == {"0": {"0": 1, "1": 0}, "1": {"0": 0, "1": 1}}
    block = quality.model_quality("binary", [0, 1], [at, below], threshold=threshold)[
        "binary_classification_metrics"
    ]
    assert block["confusion_matrix"] == {"0": {"0": 0, "1": 1}, "1": {"0": 1, "1": 0}}
    times = pd.Series(pd.to_datetime(["2026-03-01T10:00:00Z", "2026-03-01T10:00:01Z"]))
    hourly = quality.by_hour("binary", [1, 0], [at, below], times, threshold=threshold)
    assert hourly[0]["accuracy"] == 1.0


def test_binary_scores_must_lie_in_zero_to_one_inclusive():
    for edge in (0.0, 1.0):
        assert quality.model_quality("binary", [1], [edge])["dataset"]["item_count"] == 1
    for outside in (np.nextafter(1.0, 2.0), np.nextafter(0.0, -1.0)):
        with pytest.raises(ValueError, match=r"^binary: prediction .* is not a probability in \[0, 1\]"):
            quality.model_quality("binary", [1], [outside])


# --- multiclass -------------------------------------------------------------------------------------


def test_multiclass_quality_matches_scikit_learn():
    rng = np.random.default_rng(202)
    labels = rng.choice(["ant", "bee", "cat", "dog"], 4_000, p=[0.4, 0.3, 0.2, 0.1])
    wrong = rng.choice(["ant", "bee", "cat", "eel"], 4_000)  # "eel" is only ever predicted
    predicted = np.where(rng.random(4_000) < 0.7, labels, wrong)
    document = quality.model_quality("multiclass", labels, predicted)
    block = document["multiclass_classification_metrics"]
    order = ["ant", "bee", "cat", "dog", "eel"]
    assert document["mlops_kit"]["classes"] == order
    expected = {
        "accuracy": sk.accuracy_score(labels, predicted),
        "weighted_recall": sk.recall_score(labels, predicted, average="weighted", zero_division=0),
        "weighted_precision": sk.precision_score(labels, predicted, average="weighted", zero_division=0),
        "weighted_f0_5": sk.fbeta_score(labels, predicted, beta=0.5, average="weighted", zero_division=0),
        "weighted_f1": sk.f1_score(labels, predicted, average="weighted", zero_division=0),
        "weighted_f2": sk.fbeta_score(labels, predicted, beta=2, average="weighted", zero_division=0),
        "macro_precision": sk.precision_score(labels, predicted, average="macro", zero_division=0),
        "macro_recall": sk.recall_score(labels, predicted, average="macro", zero_division=0),
        "macro_f1": sk.f1_score(labels, predicted, average="macro", zero_division=0),
    }
    for name, want in expected.items():
        assert value(block, name) == pytest.approx(want, abs=TOL), name
    matrix = sk.confusion_matrix(labels, predicted, labels=order)
    assert block["confusion_matrix"] == {
        a: {p: int(matrix[i, j]) for j, p in enumerate(order)} for i, a in enumerate(order)
    }
    per_class = document["mlops_kit"]["per_class"]
    recall = sk.recall_score(labels, predicted, labels=order, average=None, zero_division=0)
    precision = sk.precision_score(labels, predicted, labels=order, average=None, zero_division=0)
    for i, name in enumerate(order[:4]):
        assert per_class[name]["recall"] == pytest.approx(recall[i], abs=TOL)
        assert per_class[name]["precision"] == pytest.approx(precision[i], abs=TOL)
    assert per_class["eel"]["recall"] is None  # never a label: its recall is undefined, not 0
    assert per_class["eel"]["support"] == 0 and per_class["eel"]["predicted"] > 0


def test_multiclass_reads_probability_vectors_by_argmax_in_the_class_order():
    rng = np.random.default_rng(303)
    vectors = rng.dirichlet([1, 1, 1], 2_000)
    positions = rng.integers(0, 3, 2_000)
    labels = np.where(rng.random(2_000) < 0.6, vectors.argmax(axis=1), positions)
    by_position = quality.model_quality("multiclass", labels, vectors)["multiclass_classification_metrics"]
    assert value(by_position, "accuracy") == pytest.approx(
        sk.accuracy_score(labels, vectors.argmax(axis=1)), abs=TOL
    )
    names = np.array(["low", "mid", "high"])
    by_name = quality.model_quality("multiclass", names[labels], vectors, classes=list(names))
    assert by_name["multiclass_classification_metrics"]["accuracy"] == by_position["accuracy"]
    assert by_name["mlops_kit"]["classes"] == ["low", "mid", "high"]  # the given order, not sorted


def test_the_three_class_case_from_the_report():
    """936 of 1,000 right: the true accuracy. Reading each answer's last probability as a binary score
    (what the monitor did) said 0.964, because 28 of the 64 mistakes confuse classes 0 and 1 only."""
    first, second, third = [0.6, 0.3, 0.1], [0.3, 0.6, 0.1], [0.2, 0.2, 0.6]
    rows = (
        [(0, first)] * 312 + [(1, second)] * 312 + [(2, third)] * 312  # right
        + [(0, second)] * 14 + [(1, first)] * 14  # wrong between 0 and 1
        + [(2, first)] * 12 + [(2, second)] * 6 + [(0, third)] * 9 + [(1, third)] * 9  # wrong about 2
    )  # fmt: skip
    order = np.random.default_rng(7).permutation(len(rows))
    labels = np.array([rows[i][0] for i in order])
    vectors = np.array([rows[i][1] for i in order])
    block = quality.model_quality("multiclass", labels, vectors)["multiclass_classification_metrics"]
    assert value(block, "accuracy") == pytest.approx(0.936, abs=TOL)
    assert value(block, "accuracy") == pytest.approx(
        sk.accuracy_score(labels, vectors.argmax(axis=1)), abs=TOL
    )
    one_vs_rest = quality.binary_metrics(labels == 2, vectors[:, -1])["binary_classification_metrics"]
    assert value(one_vs_rest, "accuracy") == pytest.approx(0.964, abs=TOL)


def test_class_labels_have_one_spelling():
    for same in (2, 2.0, "2", " 2.0 ", np.int64(2), np.float32(2.0)):
        assert quality.class_label(same) == "2"
    assert quality.class_label(True) == "1" and quality.class_label(np.bool_(False)) == "0"
    assert quality.class_label(" cat ") == "cat" and quality.class_label(0.5) == "0.5"
    for missing in (None, float("nan"), "", "  ", "nan"):
        assert quality.class_label(missing) is None
    block = quality.model_quality("multiclass", ["2", 1, "0"], [2.0, "1", 0])[
        "multiclass_classification_metrics"
    ]
    assert value(block, "accuracy") == 1.0


# --- regression -------------------------------------------------------------------------------------


def test_regression_quality_matches_scikit_learn():
    rng = np.random.default_rng(404)
    labels = rng.gamma(3.0, 20.0, 2_500)
    predictions = labels + rng.normal(0, 8.0, 2_500)
    document = quality.model_quality("regression", labels, predictions)
    block = document["regression_metrics"]
    assert set(block) == {"mae", "mse", "rmse", "r2"}
    assert value(block, "mse") == pytest.approx(sk.mean_squared_error(labels, predictions), abs=TOL)
    assert value(block, "rmse") == pytest.approx(
        math.sqrt(sk.mean_squared_error(labels, predictions)), abs=TOL
    )
    assert value(block, "mae") == pytest.approx(sk.mean_absolute_error(labels, predictions), abs=TOL)
    assert value(block, "r2") == pytest.approx(sk.r2_score(labels, predictions), abs=TOL)
    assert document["mlops_kit"] == {"task": "regression"}


def test_regression_standard_deviations_have_closed_forms():
    block = quality.model_quality("regression", [0.0, 0.0, 0.0], [1.0, -1.0, 3.0])["regression_metrics"]
    # |e| = 1, 1, 3 and e² = 1, 1, 9: standard errors of their means, sample deviations over √3.
    assert block["mae"] == {"value": pytest.approx(5 / 3), "standard_deviation": pytest.approx(2 / 3)}
    assert block["mse"] == {"value": pytest.approx(11 / 3), "standard_deviation": pytest.approx(8 / 3)}
    rmse = math.sqrt(11 / 3)
    assert block["rmse"]["standard_deviation"] == pytest.approx((8 / 3) / (2 * rmse))
    assert block["r2"] == {"value": None, "standard_deviation": None}  # every label the same
    one = quality.model_quality("regression", [1.0], [2.0])["regression_metrics"]
    assert one["mae"]["standard_deviation"] is None  # one error has no spread


# --- by hour ----------------------------------------------------------------------------------------


def test_quality_by_hour_follows_the_task():
    times = pd.Series(pd.date_range("2026-03-01T10:30:00Z", periods=120, freq="1min"))  # 10:30 to 12:29
    rng = np.random.default_rng(505)
    hours = times.dt.floor("h")
    split = [hours == h for h in sorted(hours.unique())]

    labels = rng.integers(0, 2, 120)
    scores = np.clip(0.4 * labels + rng.random(120) * 0.6, 0, 1)
    binary = quality.by_hour("binary", labels, scores, times)
    assert [h["start"] for h in binary] == [
        "2026-03-01T10:00:00Z",
        "2026-03-01T11:00:00Z",
        "2026-03-01T12:00:00Z",
    ]
    assert [h["count"] for h in binary] == [30, 60, 30]
    for entry, rows in zip(binary, split, strict=True):
        assert set(entry) == {"start", "count", "accuracy", "auc"}
        assert entry["accuracy"] == pytest.approx(
            sk.accuracy_score(labels[rows], scores[rows] >= 0.5), abs=TOL
        )
        assert entry["auc"] == pytest.approx(sk.roc_auc_score(labels[rows], scores[rows]), abs=TOL)

    classes = rng.choice(["a", "b", "c"], 120)
    guesses = np.where(rng.random(120) < 0.5, classes, "a")
    for entry, rows in zip(quality.by_hour("multiclass", classes, guesses, times), split, strict=True):
        assert set(entry) == {"start", "count", "accuracy"}
        assert entry["accuracy"] == pytest.approx(sk.accuracy_score(classes[rows], guesses[rows]), abs=TOL)

    values = rng.normal(size=120)
    estimates = values + rng.normal(size=120)
    for entry, rows in zip(quality.by_hour("regression", values, estimates, times), split, strict=True):
        assert set(entry) == {"start", "count", "rmse"}
        assert entry["rmse"] == pytest.approx(
            math.sqrt(sk.mean_squared_error(values[rows], estimates[rows])), abs=TOL
        )


# --- refusals ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("task", "labels", "predictions", "classes", "message"),
    [
        ("ranking", [1], [1], None, "unknown task 'ranking'; expected one of binary, multiclass, regression"),
        (
            "regression",
            [1.5],
            ["cat"],
            None,
            "regression: prediction 'cat' (item 0) is a class label, not a number; use task 'multiclass'",
        ),
        (
            "regression",
            [1.5, 2.0],
            [2.0, [0.2, 0.8]],
            None,
            "regression: prediction [0.2, 0.8] (2 values) (item 1) is a vector, not a number; "
            "probability vectors need task 'binary' or 'multiclass'",
        ),
        (
            "regression",
            ["cat"],
            [1.0],
            None,
            "regression: label 'cat' (item 0) is not a number; class labels need task 'binary' or 'multiclass'",
        ),
        (
            "regression",
            [1.0],
            [1.0],
            ["a", "b"],
            "regression: a regression has no classes; leave classes out",
        ),
        (
            "binary",
            [1],
            [23.4],
            None,
            "binary: prediction 23.4 (item 0) is not a probability in [0, 1]; "
            "a number to compare with a numeric label needs task 'regression'",
        ),
        (
            "binary",
            [2],
            [0.5],
            None,
            "binary: label 2 (item 0) is neither of the classes [0, 1]; "
            "pass classes=[negative, positive], or use task 'multiclass' for more classes",
        ),
        (
            "binary",
            [1],
            [[0.1, 0.2, 0.7]],
            None,
            "binary: prediction [0.1, 0.2, 0.7] (3 values) (item 0) is not one score or two probabilities "
            "[p_0, p_1]; use task 'multiclass' for 3 classes",
        ),
        (
            "binary",
            ["fraud"],
            ["maybe"],
            ["legit", "fraud"],
            "binary: prediction 'maybe' (item 0) is neither of the classes [legit, fraud]; "
            "pass classes=[negative, positive], or use task 'multiclass'",
        ),
        ("binary", [1], [0.5], ["a", "b", "c"], "binary: classes must be [negative, positive], got 3"),
        (
            "multiclass",
            [1],
            [0.73],
            None,
            "multiclass: prediction 0.73 (item 0) is a fractional number, not a class; "
            "a score needs task 'binary', a value task 'regression'",
        ),
        (
            "multiclass",
            [20.5],
            ["a"],
            None,
            "multiclass: label 20.5 (item 0) is a fractional number, not a class",
        ),
        (
            "multiclass",
            ["cat", "dog"],
            [[0.9, 0.1], [0.2, 0.8]],
            None,
            "multiclass: probability vectors need the class order: label 'cat' is not a position 0..1; "
            "pass classes=[...] in the model's order",
        ),
        (
            "multiclass",
            ["cat"],
            [[0.2, 0.3, 0.5]],
            ["cat", "dog"],
            "multiclass: prediction [0.2, 0.3, 0.5] (3 values) (item 0) has 3 probabilities but 2 classes "
            "were given (cat, dog)",
        ),
        (
            "multiclass",
            [0, 1],
            [[0.9, 0.1], [0.2, 0.3, 0.5]],
            None,
            "multiclass: probability vectors of 2 and of 3 values (item 1)",
        ),
        ("multiclass", [0], [0], ["a", "a"], "multiclass: classes ['a', 'a'] names a class twice"),
        ("binary", [1, 0], [0.5], None, "binary: 2 labels but 1 predictions"),
        ("binary", [None, 1], [0.5, None], None, "binary: no labelled predictions to measure"),
    ],
)
def test_what_does_not_fit_the_task_is_refused_with_its_reason(task, labels, predictions, classes, message):
    with pytest.raises(ValueError) as refused:
        quality.model_quality(task, labels, predictions, classes=classes)
    assert str(refused.value).startswith(message)
    assert "\n" not in str(refused.value)


def test_the_nearest_answers_that_fit_are_accepted():
    assert quality.model_quality("multiclass", [2], [2.0])["dataset"]["item_count"] == 1  # a whole number
    assert (
        quality.model_quality("multiclass", ["0.73"], [0.73], classes=["0.73"])["dataset"]["item_count"] == 1
    )
    assert quality.model_quality("multiclass", [1], [[0.2, 0.8]])["dataset"]["item_count"] == 1  # position 1
    assert (
        quality.model_quality("regression", ["2.5"], ["3"])["dataset"]["item_count"] == 1
    )  # numbers as text
    assert quality.model_quality("binary", [True], [[0.3, 0.7]])["dataset"]["item_count"] == 1


def test_a_given_class_that_never_occurs_is_shown_but_not_averaged():
    rng = np.random.default_rng(606)
    labels = rng.choice(["a", "b", "c"], 500)
    predicted = np.where(rng.random(500) < 0.6, labels, rng.choice(["a", "b", "c"], 500))
    document = quality.model_quality("multiclass", labels, predicted, classes=["c", "zebra", "a", "b"])
    block = document["multiclass_classification_metrics"]
    assert document["mlops_kit"]["classes"] == ["c", "zebra", "a", "b"]
    assert block["confusion_matrix"]["zebra"] == {"c": 0, "zebra": 0, "a": 0, "b": 0}
    for name, average in (("macro_f1", "macro"), ("weighted_f1", "weighted")):
        assert block[name]["value"] == pytest.approx(sk.f1_score(labels, predicted, average=average), abs=TOL)
    assert block["macro_precision"]["value"] == pytest.approx(
        sk.precision_score(labels, predicted, average="macro"), abs=TOL
    )
    assert block["macro_recall"]["value"] == pytest.approx(
        sk.recall_score(labels, predicted, average="macro"), abs=TOL
    )
