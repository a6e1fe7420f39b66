"""Drift is found on the generator's injected drift, and not on a fresh sample of the same distribution."""

from __future__ import annotations

from monitor_helpers import FEATURES, PREDICTION, transactions

from mlops_kit.monitoring import checks, stats


def test_a_fresh_sample_of_the_same_distribution_raises_nothing(baseline_docs):
    statistics, constraints = baseline_docs
    window = stats.profile(transactions(5_000, seed=12)[FEATURES + [PREDICTION]], statistics)
    assert checks.check(statistics, constraints, window) == []
    assert checks.drift_score(window) < 0.2


def test_the_injected_drift_is_found_on_amount_category_and_prediction(baseline_docs):
    statistics, constraints = baseline_docs
    window = stats.profile(transactions(5_000, seed=13, drifted=True)[FEATURES + [PREDICTION]], statistics)
    violations = checks.check(statistics, constraints, window)
    drifted = {v["feature_name"] for v in violations if v["constraint_check_type"] == "baseline_drift_check"}
    assert {"amount", "merchant_category", PREDICTION} <= drifted
    assert "hour" not in drifted
    scores = checks.drift_scores(window)
    assert checks.drift_score(window) == max(v for k, v in scores.items() if k != PREDICTION) > 0.2
    assert scores[PREDICTION] > 0.2  # prediction drift: the scores follow the amounts


def test_the_drift_score_leaves_the_prediction_out(baseline_docs):
    statistics, _ = baseline_docs
    frame = transactions(3_000, seed=14)[FEATURES + [PREDICTION]]
    frame[PREDICTION] = 0.99  # every score at the top: prediction drift alone
    window = stats.profile(frame, statistics)
    assert checks.drift_scores(window)[PREDICTION] > 1
    assert checks.drift_score(window) < 0.2


def test_chi_squared_method_flags_a_category_shift(baseline_docs):
    statistics, constraints = baseline_docs
    config = constraints["monitoring_config"]["distribution_constraints"]
    custom = dict(constraints, monitoring_config=dict(constraints["monitoring_config"]))
    custom["monitoring_config"]["distribution_constraints"] = dict(
        config, categorical_drift_method="ChiSquared", categorical_comparison_threshold=0.01, psi_threshold=10
    )
    window = stats.profile(transactions(5_000, seed=15, drifted=True)[FEATURES], statistics)
    violations = checks.check(statistics, custom, window)
    by_feature = {v["feature_name"]: v["description"] for v in violations}
    assert "chi-square p-value" in by_feature["merchant_category"]


def test_a_feature_override_can_switch_its_comparison_off(baseline_docs):
    statistics, constraints = baseline_docs
    custom = dict(constraints, features=[dict(f) for f in constraints["features"]])
    for feature in custom["features"]:
        if feature["name"] == "amount":
            feature["monitoringConfigOverrides"] = {"perform_comparison": "Disabled"}
    window = stats.profile(transactions(5_000, seed=16, drifted=True)[FEATURES], statistics)
    drifted = {
        v["feature_name"]
        for v in checks.check(statistics, custom, window)
        if v["constraint_check_type"] == "baseline_drift_check"
    }
    assert "amount" not in drifted and "merchant_category" in drifted
