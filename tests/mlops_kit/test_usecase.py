"""The use-case contract: what a use case declares, every refusal with its field, and the settings checked
against it before any job runs."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pandas as pd
import pytest

from mlops_kit import project, settings, usecase
from mlops_kit.settings import SettingsError
from mlops_kit.usecase import Direction, Metric, UseCaseError
from tests.mlops_kit.registry.toy_use_case import USE_CASE as TOY

PROJECT = Path(__file__).resolve().parents[1] / "project"  # the kit's test project
WHERE = "tests:USE_CASE"


def test_a_well_formed_use_case_is_accepted() -> None:
    assert usecase.validate(TOY, WHERE) is TOY
    assert TOY.decider == Metric("roc_auc", Direction.HIGHER)
    assert TOY.metric("segment_gap").gain(0.1, 0.3) == pytest.approx(0.2)  # lower is better
    assert TOY.metric("roc_auc").gain(0.8, 0.7) == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"task": "ranking"}, "task", "'ranking'; expected one of binary, multiclass, regression"),
        ({"label_type": "date"}, "label_type", "expected one of int, float, string"),
        ({"label": ""}, "label", "is not a column name"),
        ({"label": "id"}, "label", "also the entity or event-time column"),
        ({"deciding_metric": "f1"}, "deciding_metric", "'f1' is not a declared metric"),
        ({"metrics": ()}, "metrics", "declare at least the deciding metric"),
        (
            {"metrics": (Metric("roc_auc", "up"),)},
            "metrics[0].direction",
            "roc_auc: 'up'; expected one of higher, lower",
        ),
        ({"metrics": (Metric("roc_auc", Direction.HIGHER),) * 2}, "metrics[1].name", "declared twice"),
        ({"task": "regression", "label_type": "string"}, "label_type", "a regression's label is a number"),
        ({"classes": (0, 1, 2)}, "classes", "a binary task has two classes"),
        ({"feature_groups": "not a reference"}, "feature_groups", "not a package.module:ATTRIBUTE reference"),
    ],
)
def test_each_malformed_declaration_is_refused_naming_its_field(change: dict, field: str, says: str) -> None:
    with pytest.raises(UseCaseError) as refused:
        usecase.validate(dataclasses.replace(TOY, **change), WHERE)
    assert refused.value.field == field and says in str(refused.value)
    assert str(refused.value).startswith(f"{WHERE}: {field}: ") and "\n" not in str(refused.value)


@pytest.mark.parametrize(
    ("entry", "value", "says"),
    [
        ("evaluate", "no_function_here", "not a package.module:function reference"),
        ("train", "has spaces", "not a module name"),
        ("inference", "inference.txt", "a .py file"),
    ],
)
def test_bad_entry_points_are_refused(entry: str, value: str, says: str) -> None:
    bad = dataclasses.replace(TOY, entry_points=dataclasses.replace(TOY.entry_points, **{entry: value}))
    with pytest.raises(UseCaseError, match=f"entry_points.{entry}: .*{says}"):
        usecase.validate(bad, WHERE)


def test_an_object_that_is_not_a_use_case_is_refused() -> None:
    with pytest.raises(UseCaseError, match=r"\(object\): expected a mlops_kit.usecase.UseCase, got dict"):
        usecase.validate({"task": "binary"}, WHERE)


def test_an_evaluation_must_report_every_declared_metric() -> None:
    reported = {"roc_auc": 0.9, "pr_auc": 0.5, "precision": 0.4, "recall": 0.3, "segment_gap": 0.0}
    with pytest.raises(UseCaseError, match="toy declares mean_score but the evaluation reports none of it"):
        usecase.check_metrics(TOY, reported, "evaluation.json")
    assert usecase.check_metrics(TOY, {**reported, "mean_score": "0.5", "extra": 1}, "e")["mean_score"] == 0.5


def test_raw_events_must_carry_the_label_entity_and_time() -> None:
    with pytest.raises(UseCaseError, match=r"sample: columns: 3 rows without label, time"):
        usecase.check_frame(TOY, pd.DataFrame({"id": [1, 2, 3]}), "sample")
    usecase.check_frame(TOY, pd.DataFrame({"id": [1], "time": [0], "label": [0]}), "sample")


# --- the settings name the use case; gates are checked against it ---------------------------------------


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    shutil.copy(PROJECT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copytree(PROJECT / "environments", tmp_path / "environments")
    return tmp_path


def _edit(root: Path, old: str, new: str, env: str = "dev") -> Path:
    path = root / "environments" / f"Pulumi.{env}.yaml"
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new))
    return path


def test_the_use_case_is_what_the_settings_name() -> None:
    from kit_fixture import USE_CASE

    assert project.use_case(settings.load("dev")) is USE_CASE
    assert [g.name for g in project.feature_groups(settings.load("dev"))] == [
        "entity-profile",
        "entity-activity",
    ]


def test_a_gate_on_a_metric_the_use_case_does_not_report_is_refused(copy: Path) -> None:
    _edit(copy, "roc_auc: {min: 0.75}", "rmse: {max: 40}")
    with pytest.raises(
        SettingsError, match=r"mlops:promotion.gates.rmse: kit-fixture reports no metric 'rmse'"
    ):
        project.use_case(settings.load("dev", copy))


def test_the_cli_refuses_a_bad_gate_before_any_job_runs(copy: Path, monkeypatch, capsys) -> None:
    from mlops_kit.cli import main

    _edit(copy, "roc_auc: {min: 0.75}", "rmse: {max: 40}")
    monkeypatch.setenv("MLOPS_PROJECT_DIR", str(copy))
    assert main(["pipeline", "definition", "--env", "dev", "--account-id", "123456789012"]) == 1
    err = capsys.readouterr().err.strip()
    assert (
        "mlops:promotion.gates.rmse: kit-fixture reports no metric 'rmse'" in err
        and len(err.splitlines()) == 1
    )


@pytest.mark.parametrize(
    ("gate", "says"),
    [("{}", "a gate needs min, max or both"), ("{min: 0.9, max: 0.8}", "min 0.9 is above max 0.8")],
)
def test_a_gate_without_bounds_or_with_crossed_bounds_is_refused(copy: Path, gate: str, says: str) -> None:
    _edit(copy, "roc_auc: {min: 0.75}", f"roc_auc: {gate}")
    with pytest.raises(SettingsError, match=f"mlops:promotion.gates.roc_auc: {says}"):
        settings.load("dev", copy)


def test_a_use_case_reference_that_does_not_resolve_names_the_key(copy: Path) -> None:
    _edit(copy, "mlops:use_case: kit_fixture:USE_CASE", "mlops:use_case: kit_fixture:NOTHING")
    with pytest.raises(SettingsError, match=r"mlops:use_case: 'kit_fixture' has no 'NOTHING'"):
        project.use_case(settings.load("dev", copy))


def test_a_malformed_use_case_is_refused_through_the_settings(copy: Path) -> None:
    _edit(copy, "mlops:use_case: kit_fixture:USE_CASE", "mlops:use_case: kit_fixture.features:FEATURES")
    with pytest.raises(
        SettingsError, match=r"mlops:use_case: kit_fixture.features:FEATURES: \(object\): expected"
    ):
        project.use_case(settings.load("dev", copy))


def test_the_demo_refuses_a_use_case_that_does_not_fit_the_gates_before_starting(capsys) -> None:
    from mlops_kit.cli import main

    toy_without_auc = "tests.mlops_kit.test_usecase:NO_AUC"
    assert main(["demo", "--use-case", toy_without_auc]) == 1
    err = capsys.readouterr().err
    assert "mlops:promotion.gates.roc_auc: toy reports no metric 'roc_auc'" in " ".join(err.split())
    assert main(["demo", "--use-case", "tests.mlops_kit.test_usecase:NOTHING"]) == 1
    assert "mlops:use_case" in capsys.readouterr().err


NO_AUC = dataclasses.replace(
    TOY, metrics=tuple(m for m in TOY.metrics if m.name != "roc_auc"), deciding_metric="pr_auc"
)
