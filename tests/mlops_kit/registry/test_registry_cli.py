"""`mlops models list`, `mlops promote`, `mlops rollback` against moto, with no emulator or server."""

from __future__ import annotations

from typing import Any

import pytest
from registry_fixtures import PASSING, World

from mlops_kit import settings
from mlops_kit.cli import main, models


@pytest.fixture
def cli(world: World, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """The commands use the test's moto clients; redeploys are recorded instead of started."""
    deployed: list[tuple[str, str]] = []
    monkeypatch.setattr(models, "_client_factory", lambda config: world.client)
    monkeypatch.setattr(models, "_redeployer", lambda: lambda target, arn: deployed.append((target.env, arn)))
    return deployed


def run(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, " ".join(captured.out.split()), " ".join(captured.err.split())


def test_promote_then_list(world: World, cli: Any, capsys: pytest.CaptureFixture) -> None:
    arn = world.package()
    code, out, _ = run(
        capsys, "promote", "--to", "dev", "--package", arn, "--env", "dev", "--approved-by", "al"
    )
    assert code == 0
    assert "min roc_auc" in out and "promoted dev to" in out and "promotions/dev/000001.json" in out
    assert settings.load("dev").serving.model_package_arn == arn
    code, out, _ = run(capsys, "models", "list", "--env", "dev")
    assert code == 0
    assert "kit-fixture-dev-models" in out and "Approved" in out and "exec-1" in out and "0.9000" in out


def test_a_refusal_exits_non_zero_naming_the_gate(
    world: World, cli: Any, capsys: pytest.CaptureFixture
) -> None:
    arn = world.package({**PASSING, "pr_auc": 0.05})
    code, out, err = run(capsys, "promote", "--to", "dev", "--package", arn, "--env", "dev")
    assert code == 3  # refused by a gate: not an error of the command
    assert "FAIL" in out and "min pr_auc is 0.0500, needs 0.1000" in err
    assert world.head("dev") is None and settings.load("dev").serving.model_package_arn == ""


def test_a_dry_run_shows_the_decision_and_its_exit_code(
    world: World, cli: Any, capsys: pytest.CaptureFixture
) -> None:
    arn = world.package()
    code, out, _ = run(capsys, "promote", "--to", "dev", "--latest", "--env", "dev", "--dry-run")
    assert code == 0 and "would be promoted" in out and "nothing was changed" in out
    code, out, _ = run(capsys, "promote", "--to", "prod", "--latest", "--env", "dev", "--dry-run")
    assert code == 3 and "would be refused" in out and "stage order" in out
    assert world.head("dev") is None and world.describe(arn)["ModelApprovalStatus"] == "PendingManualApproval"


def test_package_and_latest_are_exclusive(world: World, cli: Any, capsys: pytest.CaptureFixture) -> None:
    code, _, err = run(capsys, "promote", "--to", "dev", "--env", "dev")
    assert code == 2 and "exactly one of --package ARN or --latest" in err


def test_rollback_command(world: World, cli: Any, capsys: pytest.CaptureFixture) -> None:
    first, second = world.package(), world.package()
    for arn in (first, second):
        assert run(capsys, "promote", "--to", "dev", "--package", arn, "--env", "dev")[0] == 0
    code, out, _ = run(capsys, "rollback", "--env", "dev")
    assert code == 0 and "rolled back dev to" in out and first in out
    assert settings.load("dev").serving.model_package_arn == first
    code, _, err = run(capsys, "rollback", "--env", "dev")
    assert code == 1 and "no previous package" in err


def test_the_local_environment_redeploys_on_promotion_to_staging(
    project: Any, aws: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from registry_fixtures import make_world

    local = make_world(project, aws, "local")
    deployed: list[tuple[str, str]] = []
    monkeypatch.setattr(models, "_client_factory", lambda config: local.client)
    monkeypatch.setattr(models, "_redeployer", lambda: lambda target, arn: deployed.append((target.env, arn)))
    arn = local.package()
    assert run(capsys, "promote", "--to", "dev", "--latest")[0] == 0
    assert run(capsys, "promote", "--to", "staging", "--latest")[0] == 0
    assert deployed == [("local", arn)]
