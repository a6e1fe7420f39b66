"""The stage order, defined once in Pulumi.yaml, and each environment's stage checked against it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mlops_kit import settings
from mlops_kit.settings import SettingsError

PROJECT = Path(__file__).resolve().parents[2] / "project"  # the kit's test project


def _project(tmp_path: Path, project_config: str, env: str = "dev") -> Path:
    (tmp_path / "environments").mkdir(parents=True)
    shutil.copy(PROJECT / "environments" / f"Pulumi.{env}.yaml", tmp_path / "environments")
    (tmp_path / "Pulumi.yaml").write_text("name: kit-fixture\nruntime: python\n" + project_config)
    return tmp_path / "environments" / f"Pulumi.{env}.yaml"


def test_the_shipped_stages_come_from_the_project_file() -> None:
    for env in settings.environments():
        loaded = settings.load(env)
        assert loaded.stages == ("dev", "staging", "prod")
        assert loaded.promotion.stage in loaded.stages
    assert settings.load("local").promotion.stage == "staging"


def test_a_settings_file_alone_has_no_stages(tmp_path: Path) -> None:
    shutil.copy(PROJECT / "environments" / "Pulumi.prod.yaml", tmp_path)
    assert settings.load_file(tmp_path / "Pulumi.prod.yaml").stages == ()


def test_plain_values_are_accepted_and_the_stack_wins(tmp_path: Path) -> None:
    path = _project(tmp_path, "config:\n  mlops:stages: [dev, prod]\n  aws:region:\n    value: eu-west-1\n")
    assert settings.load_file(path).stages == ("dev", "prod")
    path.write_text(path.read_text() + "  mlops:stages: [dev, qa]\n")
    assert settings.load_file(path).stages == ("dev", "qa")


def test_an_unknown_project_key_names_the_project_file(tmp_path: Path) -> None:
    path = _project(tmp_path, "config:\n  mlops:stagse:\n    value: [dev]\n")
    with pytest.raises(SettingsError) as caught:
        settings.load_file(path)
    assert caught.value.file.endswith("Pulumi.yaml") and caught.value.key == "mlops:stagse"
    assert "unknown key" in caught.value.problem and "stages" in caught.value.problem


def test_a_wrongly_typed_project_value_names_the_project_file(tmp_path: Path) -> None:
    path = _project(tmp_path, "config:\n  mlops:stages:\n    value: dev\n")
    with pytest.raises(SettingsError, match=r"Pulumi.yaml: mlops:stages: expected a list"):
        settings.load_file(path)
    path = _project(tmp_path / "b", "config:\n  mlops:stages:\n    type: array\n")
    with pytest.raises(SettingsError, match="needs `value:`"):
        settings.load_file(path)


def test_an_environment_stage_outside_the_order_is_an_error(tmp_path: Path) -> None:
    path = _project(tmp_path, "config:\n  mlops:stages:\n    value: [staging, prod]\n")
    with pytest.raises(SettingsError) as caught:
        settings.load_file(path)
    assert caught.value.key == "mlops:promotion.stage" and caught.value.file.endswith("Pulumi.dev.yaml")
    assert "'dev' is not a stage; the stages are staging, prod" in caught.value.problem


def test_a_stage_listed_twice_is_an_error(tmp_path: Path) -> None:
    path = _project(tmp_path, "config:\n  mlops:stages:\n    value: [dev, dev]\n")
    with pytest.raises(SettingsError, match="listed twice"):
        settings.load_file(path)
