"""Accounts and the promotion chain as data: `aws:allowedAccountIds` and `mlops:promotion.source`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from mlops_kit import settings
from mlops_kit.settings import SettingsError

PROJECT = Path(__file__).resolve().parents[1] / "project"  # the kit's test project


@pytest.fixture
def root(tmp_path: Path) -> Path:
    shutil.copy(PROJECT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copytree(PROJECT / "environments", tmp_path / "environments")
    return tmp_path


def _edit(root: Path, env: str, change) -> Path:
    path = root / "environments" / f"Pulumi.{env}.yaml"
    document = yaml.safe_load(path.read_text())
    change(document["config"])
    path.write_text(yaml.safe_dump(document))
    return path


def test_each_shipped_stage_names_its_own_account_and_its_source() -> None:
    loaded = {env: settings.load(env) for env in ("dev", "staging", "prod", "local")}
    assert {env: s.account_id for env, s in loaded.items()} == {
        "dev": "111111111111",
        "staging": "222222222222",
        "prod": "333333333333",
        "local": settings.EMULATOR_ACCOUNT,  # embedded, no account named: the emulator's default
    }
    assert {env: s.promotion.source for env, s in loaded.items()} == {
        "dev": "",
        "staging": "dev",
        "prod": "staging",
        "local": "",
    }


def test_the_account_is_the_first_allowed_one_in_either_of_pulumis_spellings(root: Path) -> None:
    _edit(root, "dev", lambda c: c.update({"aws:allowedAccountIds": ["444444444444", "555555555555"]}))
    assert settings.load("dev", root).account_id == "444444444444"
    _edit(root, "dev", lambda c: c.update({"aws:allowedAccountIds": '["666666666666"]'}))  # CLI-stored JSON
    assert settings.load("dev", root).account_id == "666666666666"


def test_an_aws_environment_without_an_account_is_not_pinned(root: Path) -> None:
    _edit(root, "dev", lambda c: c.pop("aws:allowedAccountIds"))
    assert settings.load("dev", root).account_id == ""


@pytest.mark.parametrize(
    ("value", "key", "words"),
    [
        ([111111111111], "aws:allowedAccountIds[0]", "is not a 12-digit AWS account id (quote it)"),
        (["1234"], "aws:allowedAccountIds[0]", "'1234' is not a 12-digit AWS account id"),
        ([], "aws:allowedAccountIds", "expected a list of AWS account ids"),
        ({"a": 1}, "aws:allowedAccountIds", "expected a list of AWS account ids, got a mapping"),
    ],
)
def test_a_bad_account_is_refused_naming_the_key(root: Path, value, key: str, words: str) -> None:
    _edit(root, "dev", lambda c: c.update({"aws:allowedAccountIds": value}))
    with pytest.raises(SettingsError) as caught:
        settings.load("dev", root)
    assert caught.value.key == key and words in caught.value.problem
    assert caught.value.file.endswith("Pulumi.dev.yaml")


def test_a_cycle_in_the_promotion_sources_is_refused_naming_file_and_key(root: Path) -> None:
    _edit(root, "dev", lambda c: c["mlops:promotion"].update(source="prod"))
    _edit(root, "dev", lambda c: c["mlops:training"].update(retrain_schedule=""))
    _edit(root, "dev", lambda c: c["mlops:monitoring"].update(retrain_on_drift=False))
    with pytest.raises(SettingsError) as caught:
        settings.load("staging", root)
    assert caught.value.key == "mlops:promotion.source"
    assert "cycle: staging -> dev -> prod -> staging" in caught.value.problem
    assert caught.value.file.endswith("Pulumi.prod.yaml")  # the file whose source closes the loop


def test_an_environment_that_is_its_own_source_is_refused(root: Path) -> None:
    _edit(root, "staging", lambda c: c["mlops:promotion"].update(source="staging"))
    with pytest.raises(SettingsError, match=r"Pulumi.staging.yaml: mlops:promotion.source: .*its own source"):
        settings.load("staging", root)


def test_a_source_without_a_settings_file_is_refused(root: Path) -> None:
    _edit(root, "staging", lambda c: c["mlops:promotion"].update(source="qa"))
    with pytest.raises(SettingsError) as caught:
        settings.load("prod", root)  # found through the chain: prod -> staging -> qa
    assert caught.value.key == "mlops:promotion.source" and caught.value.file.endswith("Pulumi.staging.yaml")
    assert "'qa' has no settings file" in caught.value.problem and "Pulumi.qa.yaml" in caught.value.problem
    (root / "environments" / "Pulumi.qa.yaml").write_text(
        (root / "environments" / "Pulumi.dev.yaml").read_text()
    )
    assert settings.load("prod", root).promotion.source == "staging"  # the nearest case: accepted


@pytest.mark.parametrize(
    ("section", "key", "value", "words"),
    [
        ("mlops:training", "retrain_schedule", "rate(7 days)", 'must be "": it gets its models from'),
        ("mlops:monitoring", "retrain_on_drift", True, "must be false: it gets its models from 'dev'"),
    ],
)
def test_a_stage_fed_by_promotion_does_not_retrain(root: Path, section, key, value, words) -> None:
    _edit(root, "staging", lambda c: c[section].update({key: value}))
    with pytest.raises(SettingsError) as caught:
        settings.load("staging", root)
    assert caught.value.key == f"{section}.{key}" and words in caught.value.problem
    _edit(root, "staging", lambda c: c["mlops:promotion"].update(source=""))  # the first stage: it may
    assert settings.load("staging", root).promotion.source == ""
