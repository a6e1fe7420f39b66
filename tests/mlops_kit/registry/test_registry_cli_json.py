"""The registry commands' JSON output, for scripts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from registry_fixtures import PASSING, World

from mlops_kit.cli import exit_codes, main, models


@pytest.fixture
def cli(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "_client_factory", lambda config: world.client)
    monkeypatch.setattr(models, "_redeployer", lambda: lambda target, arn: None)


def test_models_list_and_a_dry_run_as_json(world: World, cli: Any, capsys: pytest.CaptureFixture) -> None:
    good, weak = world.package(), world.package({**PASSING, "pr_auc": 0.05})
    assert main(["models", "list", "--env", "dev", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["group"] == world.group and {p["arn"] for p in listed["packages"]} == {good, weak}
    assert (
        main(["promote", "--to", "dev", "--package", weak, "--env", "dev", "--dry-run", "--json"])
        == exit_codes.REFUSED
    )
    decision = json.loads(capsys.readouterr().out)
    assert decision["decision"] == "refused" and decision["dry_run"] is True
    assert any(c["name"] == "min pr_auc" and not c["passed"] for c in decision["checks"])
    assert main(["promote", "--to", "dev", "--package", good, "--env", "dev", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["decision"] == "approved"


def test_promote_and_rollback_as_json(world: World, cli: Any, capsys: pytest.CaptureFixture) -> None:
    first, second = world.package(), world.package()
    for arn in (first, second):
        assert main(["promote", "--stage", "dev", "--package", arn, "--env", "dev", "--json"]) == 0
        promoted = json.loads(capsys.readouterr().out)
        assert promoted["dry_run"] is False and promoted["audit_key"]
    assert main(["rollback", "--env", "dev", "--json"]) == 0
    rolled = json.loads(capsys.readouterr().out)
    assert rolled["action"] == "rollback" and rolled["stage"] == "dev"
    assert rolled["package"] == first and rolled["previous"] == second and rolled["audit_key"]
    assert main(["rollback", "--env", "dev", "--json"]) == exit_codes.ERROR  # nothing before the first
    assert capsys.readouterr().out == ""
