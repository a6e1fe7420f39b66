"""Constraint violations of a window against a baseline, in Model Monitor's `constraint_violations.json`.

Pure functions over the statistics and constraints documents: a baseline that does not match the
window's columns or types becomes violations (`missing_column_check`, `extra_column_check`,
`data_type_check`), never an exception.
"""

from __future__ import annotations

from typing import Any

from mlops_kit.monitoring import drift, stats

DATA_TYPE = "data_type_check"
COMPLETENESS = "completeness_check"
BASELINE_DRIFT = "baseline_drift_check"
MISSING_COLUMN = "missing_column_check"
EXTRA_COLUMN = "extra_column_check"
CATEGORICAL_VALUES = "categorical_values_check"
_DISTRIBUTION_KEYS = {
    "perform_comparison",
    "comparison_threshold",
    "comparison_method",
    "categorical_comparison_threshold",
    "categorical_drift_method",
    "psi_threshold",
}
CHECK_TYPES = (DATA_TYPE, COMPLETENESS, BASELINE_DRIFT, MISSING_COLUMN, EXTRA_COLUMN, CATEGORICAL_VALUES)


def violation(feature: str, check: str, description: str) -> dict[str, str]:
    return {"feature_name": feature, "constraint_check_type": check, "description": description}


def check(
    baseline_statistics: dict[str, Any], constraints: dict[str, Any], window: dict[str, Any]
) -> list[dict[str, str]]:
    """Every violation of `constraints` (and drift from `baseline_statistics`) by the window's statistics."""
    config = constraints.get("monitoring_config") or stats.DEFAULT_MONITORING_CONFIG
    if config.get("evaluate_constraints", "Enabled") != "Enabled":
        return []
    items = window["dataset"]["item_count"]
    if items == 0:
        return []
    current = {f["name"]: f for f in window["features"]}
    expected = {c["name"]: c for c in constraints["features"]}
    base = {f["name"]: f for f in baseline_statistics["features"]}
    out: list[dict[str, str]] = []
    for name in expected:
        if name not in current:
            out.append(
                violation(name, MISSING_COLUMN, f"the baseline's column {name!r} is not in the window")
            )
    for name in current:
        if name not in expected:
            out.append(
                violation(
                    name, EXTRA_COLUMN, f"the window has a column {name!r} that the baseline does not know"
                )
            )
    for name, constraint in expected.items():
        if name in current:
            rules = _merged_config(config, constraint.get("monitoringConfigOverrides") or {})
            out.extend(_feature_violations(constraint, base.get(name), current[name], items, rules))
    return out


def document(violations: list[dict[str, str]]) -> dict[str, Any]:
    """The `constraint_violations.json` document."""
    return {"violations": violations}


def _merged_config(config: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = dict(config)
    distribution = dict(config.get("distribution_constraints") or {})
    for key, value in overrides.items():
        if key in _DISTRIBUTION_KEYS:
            distribution[key] = value
        else:
            merged[key] = value
    merged["distribution_constraints"] = distribution
    return merged


def _feature_violations(
    constraint: dict[str, Any],
    base: dict[str, Any] | None,
    window: dict[str, Any],
    items: int,
    config: dict[str, Any],
) -> list[dict[str, str]]:
    name = constraint["name"]
    kind = constraint["inferred_type"]
    kit = window.get(stats.KIT) or {}
    block = window.get("numerical_statistics") or window.get("string_statistics")
    present = block["common"]["num_present"]
    non_numeric = kit.get("non_numeric", 0)
    out = []

    completeness = (present + non_numeric) / items
    required = constraint.get("completeness")
    if required is not None and completeness < required:
        out.append(
            violation(
                name,
                COMPLETENESS,
                f"completeness {completeness:.2%} is below the baseline's {required:.2%} "
                f"({items - present - non_numeric} of {items} values missing)",
            )
        )

    if kind in stats.NUMERIC_TYPES:
        out.extend(_type_violations(name, kind, window, present, non_numeric, config))
        non_negative = (constraint.get("num_constraints") or {}).get("is_non_negative")
        low = block.get("min")
        if non_negative and low is not None and low < 0:
            out.append(
                violation(
                    name,
                    DATA_TYPE,
                    f"the baseline's values are non-negative (num_constraints.is_non_negative) "
                    f"but the window's minimum is {low:g}",
                )
            )

    domains = (constraint.get("string_constraints") or {}).get("domains")
    window_drift = kit.get("drift")
    if domains is not None and window_drift and window_drift.get("kind") == "categorical" and present:
        unseen_share = window_drift["unseen"] / present
        threshold = config.get("domain_content_threshold", 0.1)
        if unseen_share > threshold:
            out.append(
                violation(
                    name,
                    CATEGORICAL_VALUES,
                    f"{unseen_share:.2%} of values are outside the baseline's domain "
                    f"(threshold {threshold:.2%}); known values: {', '.join(domains[:10])}"
                    + (", ..." if len(domains) > 10 else ""),
                )
            )

    if window_drift and base is not None:
        drifted = drift_violation(name, window_drift, config.get("distribution_constraints") or {})
        if drifted is not None:
            out.append(drifted)
    return out


def _type_violations(
    name: str, kind: str, window: dict[str, Any], present: int, non_numeric: int, config: dict[str, Any]
) -> list[dict[str, str]]:
    total = present + non_numeric
    if total == 0:
        return []
    fractional = (window.get(stats.KIT) or {}).get("fractional", 0)
    wrong = non_numeric + (fractional if kind == stats.INTEGRAL else 0)
    share = wrong / total
    threshold = config.get("datatype_check_threshold", 0.1)
    if share <= threshold:
        return []
    what = "not numbers" if kind == stats.FRACTIONAL else "not whole numbers"
    return [
        violation(
            name,
            DATA_TYPE,
            f"expected {kind}: {wrong} of {total} values ({share:.2%}) are {what}, "
            f"above datatype_check_threshold {threshold:.2%}",
        )
    ]


def drift_violation(
    name: str, measured: dict[str, Any], distribution: dict[str, Any]
) -> dict[str, str] | None:
    """A `baseline_drift_check` violation when a distance passes its threshold, else None."""
    if distribution.get("perform_comparison", "Enabled") != "Enabled":
        return None
    reasons = []
    psi_threshold = distribution.get("psi_threshold", stats.DEFAULT_PSI_THRESHOLD)
    if measured["psi"] > psi_threshold:
        reasons.append(f"PSI {measured['psi']:.4f} > {psi_threshold:g}")
    if measured["kind"] == "numeric":
        threshold = distribution.get("comparison_threshold", 0.1)
        method = distribution.get("comparison_method", "Robust")
        if drift.ks_exceeds(measured["ks"], measured["baseline_count"], measured["count"], threshold, method):
            reasons.append(f"KS distance {measured['ks']:.4f} > {threshold:g} ({method})")
    else:
        threshold = distribution.get("categorical_comparison_threshold", 0.1)
        method = distribution.get("categorical_drift_method", "LInfinity")
        if method == "LInfinity" and measured["linf"] > threshold:
            reasons.append(f"L-infinity distance {measured['linf']:.4f} > {threshold:g}")
        elif method == "ChiSquared" and measured["chi_square_p"] < threshold:
            reasons.append(f"chi-square p-value {measured['chi_square_p']:.3g} < {threshold:g}")
        elif method not in ("LInfinity", "ChiSquared"):
            raise ValueError(f"unknown categorical_drift_method {method!r}; expected LInfinity or ChiSquared")
    if not reasons:
        return None
    return violation(name, BASELINE_DRIFT, "distribution drifted from the baseline: " + "; ".join(reasons))


def drift_scores(window: dict[str, Any]) -> dict[str, float]:
    """PSI per feature that could be compared with the baseline (the prediction included)."""
    out = {}
    for feature in window["features"]:
        measured = (feature.get(stats.KIT) or {}).get("drift")
        if measured:
            out[feature["name"]] = float(measured["psi"])
    return out


def drift_score(window: dict[str, Any]) -> float | None:
    """The overall drift: the largest PSI over the input features (the prediction and the label are
    reported apart)."""
    outputs = {stats.prediction_feature(window), stats.label_feature(window)}
    scores = [v for k, v in drift_scores(window).items() if k not in outputs]
    return max(scores) if scores else None
