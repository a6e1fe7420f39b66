"""A local (embedded) environment's promotions live in the project's state, never in its tracked files."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from registry_fixtures import World, make_world

from mlops_kit import paths, settings
from mlops_kit.cli import main, models
from mlops_kit.registry import promotion
from mlops_kit.registry.settings_edit import write_promoted
from mlops_kit.settings import SettingsError

ARN = "arn:aws:sagemaker:us-east-1:123456789012:model-package/kit-fixture-local-models/7"


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def tracked(project: Path) -> Path:
    """The project copy under git, its settings committed: what a clone looks like."""
    _git(project, "init", "-q")
    _git(project, "add", ".")
    _git(project, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "settings")
    return project


def test_a_local_promotion_leaves_the_tracked_file_and_loads_from_the_state(
    tracked: Path, aws: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    local = make_world(tracked, aws, "local")
    monkeypatch.setattr(models, "_client_factory", lambda config: local.client)
    monkeypatch.setattr(models, "_redeployer", lambda: lambda target, arn: None)
    arn = local.package()
    assert main(["promote", "--to", "dev", "--latest"]) == 0
    assert main(["promote", "--to", "staging", "--latest"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    overlay = paths.state_location() / "settings" / "Pulumi.local.yaml"
    assert f"wrote {overlay}: mlops:serving.model_package_arn" in out
    assert _git(tracked, "status", "--porcelain", "--", "environments") == ""
    assert _git(tracked, "diff", "--", "environments/Pulumi.local.yaml") == ""
    assert settings.load("local").serving.model_package_arn == arn
    assert settings.load_file(tracked / "environments" / "Pulumi.local.yaml").serving.model_package_arn == ""
    # Only the package comes from the state: everything else is still the tracked file's.
    reloaded, tracked_only = settings.load("local"), settings.load_file(settings.settings_file("local"))
    assert (
        reloaded.serving.__class__(**{**vars(reloaded.serving), "model_package_arn": ""})
        == tracked_only.serving
    )
    assert reloaded.promotion == tracked_only.promotion and reloaded.monitoring == tracked_only.monitoring


def test_a_cloud_target_still_gets_its_tracked_file_rewritten(world: World) -> None:
    arn = world.package()
    outcome = promotion.promote(world.settings, world.client, stage="dev", package_arn=arn, approved_by="al")
    assert outcome.settings_files == [world.root / "environments" / "Pulumi.dev.yaml"]
    assert not settings.overlay_file("dev").exists()
    assert settings.load("dev").serving.model_package_arn == arn


def test_the_choice_is_the_runtime_kind_not_the_name(project: Path) -> None:
    """An embedded environment of any name gets an overlay; `local` made to run on AWS gets its file."""
    path = project / "environments" / "Pulumi.local.yaml"
    (project / "environments" / "Pulumi.sandbox.yaml").write_text(path.read_text())
    sandbox = settings.load("sandbox")
    assert write_promoted(sandbox, ARN) == settings.overlay_file("sandbox")
    assert settings.load("sandbox").serving.model_package_arn == ARN
    before = path.read_text()
    path.write_text(before.replace("kind: embedded", "kind: aws"))
    on_aws = settings.load("local")
    assert not on_aws.embedded
    assert write_promoted(on_aws, ARN) == path
    assert f'model_package_arn: "{ARN}"' in path.read_text()
    assert not settings.overlay_file("local").exists()


def test_an_overlay_is_ignored_for_a_cloud_environment(project: Path) -> None:
    overlay = settings.overlay_file("dev")
    overlay.parent.mkdir(parents=True, exist_ok=True)
    overlay.write_text(f'config:\n  mlops:serving:\n    model_package_arn: "{ARN}"\n')
    assert settings.load("dev").serving.model_package_arn == ""


def test_writing_the_same_package_twice_changes_nothing(project: Path) -> None:
    local = settings.load("local")
    first = write_promoted(local, ARN)
    assert first is not None and first.stat().st_mode & 0o077 == 0
    assert write_promoted(settings.load("local"), ARN) is None
    assert [p.name for p in first.parent.iterdir()] == ["Pulumi.local.yaml"]  # no temporary file left


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (
            f'config:\n  mlops:serving:\n    model_package_arn: "{ARN}"\n    instance_count: 3\n',
            "mlops:serving.instance_count",
        ),
        (f'config:\n  mlops:serving:\n    model_package_arn: "{ARN}"\n  mlops:owner: me\n', "mlops:owner"),
        ("config:\n  mlops:serving:\n    model_package_arn: 7\n", "mlops:serving.model_package_arn"),
        ("config: [1]\n", "config"),
    ],
)
def test_an_overlay_with_anything_else_is_an_error_naming_file_and_key(
    project: Path, text: str, key: str
) -> None:
    overlay = settings.overlay_file("local")
    overlay.parent.mkdir(parents=True, exist_ok=True)
    overlay.write_text(text)
    with pytest.raises(SettingsError) as caught:
        settings.load("local")
    assert caught.value.key == key and caught.value.file == str(overlay)


def test_a_scratch_copy_keeps_its_own_state(project: Path, tmp_path: Path) -> None:
    """The demo promotes in a scratch copy of the project: that never writes the real project's state."""
    scratch = tmp_path / "scratch"
    (scratch / "environments").mkdir(parents=True)
    for name in ("Pulumi.yaml", "environments/Pulumi.local.yaml"):
        (scratch / name).write_text((project / name).read_text())
    assert (
        write_promoted(settings.load("local", scratch), ARN)
        == scratch / ".mlops" / "settings" / "Pulumi.local.yaml"
    )
    assert settings.load("local", scratch).serving.model_package_arn == ARN
    assert settings.load("local").serving.model_package_arn == ""
