"""`mlops infra plan`, `mlops infra diff` and `mlops infra policy-path` through the command line."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

import mlops_kit
from mlops_kit.cli import main


def test_plan_json_lists_every_resource_and_the_outputs(capsys):
    assert main(["infra", "plan", "--env", "staging", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["env"] == "staging"
    types = {r["type"] for r in data["resources"]}
    assert {"aws:s3/bucket:Bucket", "aws:sagemaker/pipeline:Pipeline", "mlops:storage:Storage"} <= types
    pipeline = next(r for r in data["resources"] if r["name"] == "kit-fixture-staging-training-pipeline")
    assert pipeline["inputs"]["pipelineDefinition"].endswith("characters)")  # long payloads are shortened
    assert data["outputs"]["pipeline_name"] == "kit-fixture-staging-training"
    image = next(r for r in data["resources"] if r["type"] == "docker-build:index:Image")
    assert image["inputs"]["tags"] == [data["outputs"]["image_uri"]]
    assert data["outputs"]["image_uri"].startswith("222222222222.dkr.ecr.us-east-1.amazonaws.com/")


def test_plan_table_names_resources_and_key_properties(capsys):
    assert main(["infra", "plan", "--env", "dev"]) == 0
    text = capsys.readouterr().out
    assert "kit-fixture-dev-raw-111111111111" in text
    assert "enableKeyRotation=true" in text
    assert "aws:ecr:Repository" in text and "docker-build:index:Imag" in text
    assert "deploy_role_arn" in text


def test_diff_shows_settings_driven_differences(capsys):
    assert main(["infra", "diff", "dev", "prod", "--json"]) == 0
    changes = json.loads(capsys.readouterr().out)
    paths = {(c["name"], c["path"]) for c in changes if c["kind"] == "changed"}
    assert ("{prefix}-capture", "forceDestroy") in paths


def test_plan_of_an_unknown_environment_fails_with_the_known_ones(capsys):
    assert main(["infra", "plan", "--env", "nope"]) == 1
    err = capsys.readouterr().err
    assert "no settings for environment 'nope'" in err and "staging" in err


def test_policy_path_prints_the_installed_kits_policy_pack(capsys):
    assert main(["infra", "policy-path"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("\n") == 1  # one line, for `--policy-pack "$(mlops infra policy-path)"`
    folder = Path(printed.strip())
    assert (
        folder.is_absolute()
        and (folder / "PulumiPolicy.yaml").is_file()
        and (folder / "__main__.py").is_file()
    )
    assert folder == Path(mlops_kit.__file__).resolve().parent / "infra" / "policy"
    # wherever the kit is installed, uv's toolchain finds the project's environment (next to its uv.lock);
    # a virtualenv path relative to the pack would point into the kit's install folder
    runtime = yaml.safe_load((folder / "PulumiPolicy.yaml").read_text())["runtime"]
    assert runtime["name"] == "python" and runtime["options"]["toolchain"] == "uv"
    assert "virtualenv" not in runtime["options"]
