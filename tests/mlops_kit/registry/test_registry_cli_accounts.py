"""`mlops promote --env <stage>` across two emulated accounts, as `make demo` and promote.yml do it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from registry_fixtures import PROJECT, World

from mlops_kit import clients, local_platform, settings
from mlops_kit import emulator as emu
from mlops_kit.cli import main, models

TOY = "tests.mlops_kit.registry.toy_use_case:USE_CASE"


def _two_stage_project(root: Path, name: str) -> Path:
    """local (stage dev, the emulator's default account) and local-staging (account 222222222222)."""
    root.mkdir(parents=True)
    shutil.copy(PROJECT / "Pulumi.yaml", root / "Pulumi.yaml")
    (root / "environments").mkdir()
    text = (PROJECT / "environments" / "Pulumi.local.yaml").read_text()
    text = text.replace("mlops:use_case: kit_fixture:USE_CASE", f"mlops:use_case: {TOY}")
    text = text.replace("mlops:project: kit-fixture", f"mlops:project: {name}")
    local = text.replace("    stage: staging\n", "    stage: dev\n")
    assert local != text
    staging = text.replace(
        "  aws:region: us-east-1\n", '  aws:region: us-east-1\n  aws:allowedAccountIds: ["222222222222"]\n'
    )
    staging = staging.replace("retrain_on_drift: true", "retrain_on_drift: false")
    staging = staging.replace(
        "    approval_required: false\n", "    approval_required: false\n    source: local\n"
    )
    (root / "environments" / "Pulumi.local.yaml").write_text(local)
    (root / "environments" / "Pulumi.local-staging.yaml").write_text(staging)
    return root


def test_promote_copies_into_a_stage_of_another_emulated_account(
    emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    name = f"cli-{tmp_path.name[-12:]}".lower().replace("_", "-")
    root = _two_stage_project(tmp_path / "project", name)
    monkeypatch.setenv("MLOPS_PROJECT_DIR", str(root))
    monkeypatch.setattr(emu, "running", lambda: emulator)
    monkeypatch.setattr(models, "_redeployer", lambda: lambda target, arn: None)
    local = settings.load("local")
    acting = clients.clients_for(local, emulator)
    world = World(root, acting, local, local_platform.ensure(local, acting).buckets["raw"])
    arn = world.package()
    assert main(["promote", "--env", "local", "--package", arn, "--approved-by", "al"]) == 0
    capsys.readouterr()
    assert main(["promote", "--env", "local-staging", "--latest", "--approved-by", "al"]) == 0
    out = "".join(capsys.readouterr().out.split())  # rich folds long lines, even inside an ARN
    assert (
        f"promotedstagingtoarn:aws:sagemaker:us-east-1:222222222222:model-package/{name}-local-staging-models/1"
        in out
    )
    assert main(["models", "list", "--env", "local-staging", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(p["stage"], p["approval"], p["source"]) for p in listed["packages"]] == [
        ("staging", "Approved", arn)
    ]
    assert settings.load("local-staging").serving.model_package_arn.split(":")[4] == "222222222222"
    # the default account's registry holds only dev's package
    assert main(["models", "list", "--env", "local", "--json"]) == 0
    assert [p["arn"] for p in json.loads(capsys.readouterr().out)["packages"]] == [arn]
