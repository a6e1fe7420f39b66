"""statistics.json, constraints.json and constraint_violations.json carry Model Monitor's documented fields."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mlops_kit.monitoring import checks, files, stats

DOCUMENTED_CHECKS = {
    "data_type_check",
    "completeness_check",
    "baseline_drift_check",
    "missing_column_check",
    "extra_column_check",
    "categorical_values_check",
}


def small() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "amount": [1.5, 2.0, np.nan, 10.25, 3.0, 7.5],
            "count": [1, 2, 3, 4, 5, 6],
            "color": ["red", "blue", "red", None, "red", "green"],
        }
    )


def test_statistics_have_every_documented_field_with_the_right_values():
    statistics, _ = stats.baseline(small())
    assert statistics["version"] == 0
    assert statistics["dataset"] == {"item_count": 6}
    amount, count, color = statistics["features"]

    assert amount["name"] == "amount" and amount["inferred_type"] == "Fractional"
    num = amount["numerical_statistics"]
    assert num["common"] == {"num_present": 5, "num_missing": 1}
    present = np.array([1.5, 2.0, 10.25, 3.0, 7.5])
    assert num["mean"] == pytest.approx(present.mean())
    assert num["sum"] == pytest.approx(present.sum())
    assert num["std_dev"] == pytest.approx(present.std())
    assert (num["min"], num["max"]) == (1.5, 10.25)
    kll = num["distribution"]["kll"]
    assert len(kll["buckets"]) == 10
    assert all(set(b) == {"lower_bound", "upper_bound", "count"} for b in kll["buckets"])
    assert kll["buckets"][0]["lower_bound"] == 1.5 and kll["buckets"][-1]["upper_bound"] == 10.25
    assert sum(b["count"] for b in kll["buckets"]) == 5
    assert set(kll["sketch"]["parameters"]) == {"c", "k"}
    assert kll["sketch"]["data"][0][0] == 1.5 and kll["sketch"]["data"][0][-1] == 10.25

    assert count["inferred_type"] == "Integral"
    text = color["string_statistics"]
    assert color["inferred_type"] == "String"
    assert text["common"] == {"num_present": 5, "num_missing": 1}
    assert text["distinct_count"] == 3
    assert text["distribution"]["categorical"]["buckets"][0] == {"value": "red", "count": 3.0}


def test_constraints_have_completeness_non_negative_domains_and_monitoring_config():
    _, constraints = stats.baseline(small().assign(delta=[-1.0, 2, 3, 4, 5, 6]), psi_threshold=0.3)
    by_name = {f["name"]: f for f in constraints["features"]}
    assert constraints["version"] == 0
    assert by_name["amount"]["completeness"] == pytest.approx(5 / 6)
    assert by_name["amount"]["num_constraints"] == {"is_non_negative": True}
    assert by_name["delta"]["num_constraints"] == {"is_non_negative": False}
    assert by_name["color"]["string_constraints"]["domains"] == ["red", "blue", "green"]
    config = constraints["monitoring_config"]
    for key in (
        "evaluate_constraints",
        "emit_metrics",
        "datatype_check_threshold",
        "domain_content_threshold",
    ):
        assert key in config
    distribution = config["distribution_constraints"]
    assert distribution["perform_comparison"] == "Enabled"
    assert distribution["comparison_method"] in ("Simple", "Robust")
    assert distribution["categorical_drift_method"] in ("LInfinity", "ChiSquared")
    assert distribution["psi_threshold"] == 0.3


def test_violations_document_has_the_documented_fields(baseline_docs):
    statistics, constraints = baseline_docs
    window = pd.DataFrame({"amount": ["abc", "12.5", "x"], "unknown": [1, 2, 3]})
    violations = checks.check(statistics, constraints, stats.profile(window, statistics))
    document = checks.document(violations)
    assert document["violations"]
    for v in document["violations"]:
        assert set(v) == {"feature_name", "constraint_check_type", "description"}
        assert v["constraint_check_type"] in DOCUMENTED_CHECKS
        assert v["description"]


def test_documents_round_trip_through_files_as_strict_json(tmp_path, baseline_docs):
    statistics, constraints = baseline_docs
    files.write_baseline(tmp_path, statistics, constraints)
    text = (tmp_path / "statistics.json").read_text()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert files.read_baseline(tmp_path) == (statistics, constraints)
    assert not list(tmp_path.glob(".*tmp"))  # the atomic write left no temp file


def test_high_cardinality_text_keeps_the_top_values_and_no_domain():
    frame = pd.DataFrame({"id": [f"id{i % 500}" for i in range(2000)]})
    statistics, constraints = stats.baseline(frame)
    text = statistics["features"][0]["string_statistics"]
    assert text["distinct_count"] == 500
    assert len(text["distribution"]["categorical"]["buckets"]) == stats.CATEGORY_BUCKETS_MAX
    assert "string_constraints" not in constraints["features"][0]


def test_numbers_written_as_text_are_numeric_features():
    frame = pd.DataFrame({"n": ["1", "2", "3", None], "x": ["1.5", "a", "2", "3"]})
    statistics, _ = stats.baseline(frame)
    assert stats.feature_types(statistics) == {"n": "Integral", "x": "String"}


def test_baseline_refuses_bad_input_naming_what_is_wrong():
    with pytest.raises(ValueError, match="no rows"):
        stats.baseline(small().iloc[:0])
    with pytest.raises(ValueError, match="'nope'"):
        stats.baseline(small(), features=["amount", "nope"])
    with pytest.raises(ValueError, match="psi_threshold"):
        stats.baseline(small(), psi_threshold=0)


def test_reading_a_broken_baseline_names_the_file(tmp_path):
    (tmp_path / "statistics.json").write_text('{"dataset": {}}')
    (tmp_path / "constraints.json").write_text('{"features": []}')
    with pytest.raises(ValueError, match=r"statistics\.json: no 'features'"):
        files.read_baseline(tmp_path)
    (tmp_path / "statistics.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"statistics\.json: not valid JSON"):
        files.read_baseline(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such file"):
        files.read_baseline(tmp_path / "missing")
