"""The settings change a promotion makes: one line, comments and layout kept, still a valid file."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from mlops_kit import settings
from mlops_kit.registry.settings_edit import rewrite_text, write_package
from mlops_kit.settings import SettingsError

PROJECT = Path(__file__).resolve().parents[2] / "project"  # the kit's test project
ARN = "arn:aws:sagemaker:us-east-1:123456789012:model-package/kit-fixture-dev-models/3"


def _changed(before: str, after: str) -> list[str]:
    return [
        line
        for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


@pytest.mark.parametrize("env", ["local", "dev", "staging", "prod"])
def test_every_shipped_file_changes_in_the_package_line_only(tmp_path: Path, env: str) -> None:
    (tmp_path / "environments").mkdir()
    path = tmp_path / "environments" / f"Pulumi.{env}.yaml"
    before = (PROJECT / "environments" / f"Pulumi.{env}.yaml").read_text()
    path.write_text(before)
    assert write_package(path, ARN) is True
    after = path.read_text()
    assert _changed(before, after) == ['-    model_package_arn: ""', f'+    model_package_arn: "{ARN}"']
    reloaded, original = settings.load_file(path), settings.load_file(PROJECT / "environments" / path.name)
    assert reloaded.serving.model_package_arn == ARN
    assert reloaded.serving == original.serving.__class__(
        **{**vars(original.serving), "model_package_arn": ARN}
    )
    assert reloaded.promotion == original.promotion and reloaded.training == original.training
    assert write_package(path, ARN) is False  # already there: nothing written


def test_a_trailing_comment_and_other_blocks_are_kept() -> None:
    text = (
        "config:\n"
        "  mlops:training:\n"
        "    model_package_arn: not-this-one\n"
        "  mlops:serving:   # the endpoint\n"
        "\n"
        "    # which package serves\n"
        "    model_package_arn: old   # written by mlops promote\n"
        "    instance_count: 1\n"
        "  mlops:monitoring:\n"
        "    schedule: rate(1 hour)\n"
    )
    after = rewrite_text(text, ARN)
    assert _changed(text, after) == [
        "-    model_package_arn: old   # written by mlops promote",
        f'+    model_package_arn: "{ARN}"   # written by mlops promote',
    ]


def test_an_absent_key_is_added_to_the_serving_block() -> None:
    text = "config:\n  mlops:serving:\n    instance_count: 1\n  mlops:other:\n    a: 1\n"
    assert rewrite_text(text, ARN) == (
        f'config:\n  mlops:serving:\n    model_package_arn: "{ARN}"\n    instance_count: 1\n'
        "  mlops:other:\n    a: 1\n"
    )


def test_windows_line_endings_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.x.yaml"
    path.write_bytes(b'config:\r\n  mlops:serving:\r\n    model_package_arn: ""\r\n    instance_count: 1\r\n')
    write_package(path, ARN)
    assert path.read_bytes() == (
        f'config:\r\n  mlops:serving:\r\n    model_package_arn: "{ARN}"\r\n    instance_count: 1\r\n'.encode()
    )


def test_a_file_without_a_serving_block_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.x.yaml"
    path.write_text("config:\n  mlops:training:\n    seed: 1\n")
    with pytest.raises(SettingsError, match=r"Pulumi.x.yaml: mlops:serving: no `mlops:serving:` block"):
        write_package(path, ARN)
    assert path.read_text() == "config:\n  mlops:training:\n    seed: 1\n"


def test_a_flow_style_block_is_refused_not_mangled(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.x.yaml"
    original = "config:\n  mlops:serving: {instance_count: 1}\n"
    path.write_text(original)
    with pytest.raises(SettingsError, match="mlops:serving"):
        write_package(path, ARN)
    assert path.read_text() == original


def test_a_value_that_is_no_arn_is_refused() -> None:
    with pytest.raises(ValueError, match="not a model package ARN"):
        rewrite_text("config:\n  mlops:serving:\n    a: 1\n", 'x"\n  evil: true')
