"""`mlops ci matrix` / `mlops ci stack`: the stack data the workflows read, generated from environments/."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from mlops_kit import settings
from mlops_kit.cli import ci, main
from mlops_kit.settings import Settings, SettingsError

ROOT = Path(__file__).resolve().parents[2]


def _all() -> list[Settings]:
    return [settings.load(env) for env in settings.environments()]


def _aws_envs() -> set[str]:
    return {s.env for s in _all() if s.runtime.kind == "aws"}


def _with_cicd(base: Settings, **changes: str) -> Settings:
    return dataclasses.replace(base, cicd=dataclasses.replace(base.cicd, **changes))


def test_matrix_has_every_aws_environment_with_its_settings_and_no_embedded_one() -> None:
    rows = ci.matrix(_all(), "3.1.0")["include"]
    assert {row["env"] for row in rows} == _aws_envs()
    assert "local" not in {row["env"] for row in rows}  # the embedded environment has no cloud stack
    for row in rows:
        expected = settings.load(row["env"])
        assert row["stack"] == expected.env
        assert row["region"] == expected.region
        assert row["backend"] == expected.cicd.state_backend
        assert row["secrets_provider"] == expected.cicd.secrets_provider
        assert row["github_environment"] == expected.cicd.github_environment
        assert row["preview_role_var"] == "AWS_PREVIEW_ROLE_ARN_" + expected.cicd.github_environment.upper()
        assert row["pulumi_version"] == "3.1.0"


def test_matrix_all_adds_the_embedded_stack_without_any_cloud_value() -> None:
    rows = {row["env"]: row for row in ci.matrix(_all(), "3.1.0", include_embedded=True)["include"]}
    assert set(rows) == set(settings.environments())
    assert rows["local"] == {"env": "local", "stack": "local", "region": "us-east-1"}


def test_a_new_aws_environment_joins_the_matrix_from_its_data_alone() -> None:
    dev = settings.load("dev")
    qa = _with_cicd(dataclasses.replace(dev, env="qa", region="eu-west-1"), github_environment="qa")
    rows = {row["env"]: row for row in ci.matrix([dev, qa], "3.1.0")["include"]}
    assert rows["qa"]["region"] == "eu-west-1"
    assert rows["qa"]["preview_role_var"] == "AWS_PREVIEW_ROLE_ARN_QA"


def test_preview_role_variable_names_are_valid_github_variable_names() -> None:
    assert ci.preview_role_var("prod") == "AWS_PREVIEW_ROLE_ARN_PROD"
    assert ci.preview_role_var("eu-prod.2") == "AWS_PREVIEW_ROLE_ARN_EU_PROD_2"


def test_role_variable_names_are_the_ones_the_infra_program_writes() -> None:
    from mlops_kit.infra.plans import github

    assert ci.DEPLOY_ROLE_VAR == github.DEPLOY_ROLE_VARIABLE
    for item in _all():
        name = item.cicd.github_environment
        assert ci.preview_role_var(name) == github.preview_role_variable(name)
    assert ci.preview_role_var("eu-prod.2") == github.preview_role_variable("eu-prod.2")


def test_pulumi_cloud_backend_with_its_default_secrets_is_accepted() -> None:
    prod = settings.load("prod")
    cloud = _with_cicd(prod, state_backend="https://api.pulumi.com", secrets_provider="default")
    entry = ci.stack_entry(cloud, "3.1.0")
    assert (entry["backend"], entry["secrets_provider"]) == ("https://api.pulumi.com", "default")


@pytest.mark.parametrize(
    ("changes", "key", "words"),
    [
        ({"state_backend": ""}, "mlops:cicd.state_backend", "state backend"),
        ({"secrets_provider": ""}, "mlops:cicd.secrets_provider", "without a passphrase"),
        ({"secrets_provider": "default"}, "mlops:cicd.secrets_provider", "Pulumi Cloud"),
        ({"secrets_provider": "passphrase"}, "mlops:cicd.secrets_provider", "awskms"),
    ],
)
def test_a_stack_ci_could_not_log_in_to_or_decrypt_is_refused_naming_file_and_key(
    changes: dict[str, str], key: str, words: str
) -> None:
    broken = _with_cicd(settings.load("staging"), **changes)
    with pytest.raises(SettingsError) as raised:
        ci.stack_entry(broken, "3.1.0")
    assert raised.value.key == key
    assert raised.value.file.endswith("Pulumi.staging.yaml")
    assert words in str(raised.value)


def test_a_matrix_with_no_aws_environment_is_an_error() -> None:
    with pytest.raises(ValueError, match="runtime.kind: aws"):
        ci.matrix([settings.load("local")], "3.1.0")


def test_output_lines_refuse_a_value_that_would_forge_another_output() -> None:
    assert ci.output_lines({"region": "us-east-1", "stack": "dev"}) == "region=us-east-1\nstack=dev\n"
    with pytest.raises(ValueError, match="stack: a CI output value cannot contain a line break"):
        ci.output_lines({"stack": "dev\nregion=evil"})


def test_the_cli_that_ci_installs_is_the_sdk_version_in_the_lock(capsys: pytest.CaptureFixture[str]) -> None:
    lock = (ROOT / "uv.lock").read_text()
    locked = re.search(r'\[\[package\]\]\nname = "pulumi"\nversion = "([^"]+)"', lock)
    assert locked is not None
    assert main(["ci", "matrix"]) == 0
    rows = json.loads(capsys.readouterr().out)["include"]
    assert {row["pulumi_version"] for row in rows} == {locked.group(1)}


def test_cli_matrix_prints_one_json_line_for_github_outputs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ci", "matrix"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("\n") == 1
    assert {row["env"] for row in json.loads(printed)["include"]} == _aws_envs()
    assert main(["ci", "matrix", "--all"]) == 0
    every = json.loads(capsys.readouterr().out)["include"]
    assert {row["env"] for row in every} == set(settings.environments())


def test_cli_stack_prints_key_value_lines(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ci", "stack", "--env", "prod"]) == 0
    lines = dict(line.split("=", 1) for line in capsys.readouterr().out.splitlines())
    prod = settings.load("prod")
    assert lines["region"] == prod.region
    assert lines["backend"] == prod.cicd.state_backend
    assert lines["secrets_provider"] == prod.cicd.secrets_provider
    assert lines["stack"] == "prod"


def test_cli_stack_refuses_the_embedded_environment(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ci", "stack", "--env", "local"]) == 1
    err = capsys.readouterr().err
    assert "Pulumi.local.yaml" in err
    assert "embedded" in err


def test_cli_stack_names_an_unknown_environment(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ci", "stack", "--env", "qa"]) == 1
    assert "no settings for environment 'qa'" in capsys.readouterr().err
