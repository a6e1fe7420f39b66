"""A copy of the project's settings, an in-process moto AWS with the dev platform, and packages to promote."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws
from registry_fixtures import PROJECT, World, make_world

from mlops_kit import emulator

TOY = "tests.mlops_kit.registry.toy_use_case:USE_CASE"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The test project's Pulumi.yaml and environments/ copied, so promotions rewrite the copy, never it."""
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(PROJECT / "Pulumi.yaml", root / "Pulumi.yaml")
    shutil.copytree(PROJECT / "environments", root / "environments")
    for path in (root / "environments").glob("*.yaml"):  # the registry tests' own use case
        path.write_text(
            path.read_text().replace("mlops:use_case: kit_fixture:USE_CASE", f"mlops:use_case: {TOY}")
        )
    monkeypatch.setenv("MLOPS_PROJECT_DIR", str(root))
    return root


@pytest.fixture
def aws() -> Iterator[Callable[[str], Any]]:
    """moto in this process, answering registry reads across accounts as AWS does (`emulator`)."""
    emulator.share_registries_across_accounts()
    with mock_aws():
        config = Config(retries={"max_attempts": 1})
        yield lambda service: boto3.client(service, region_name="us-east-1", config=config)


@pytest.fixture
def world(project: Path, aws: Callable[[str], Any]) -> World:
    """The dev registry (an AWS environment in its own account, acting as dev's deploy role)."""
    return make_world(project, aws, "dev")


@pytest.fixture
def staging(project: Path, aws: Callable[[str], Any], world: World) -> World:
    """Staging in its own account, fed by promotion from dev (its `mlops:promotion.source`)."""
    return make_world(project, aws, "staging")


@pytest.fixture
def local_world(project: Path, aws: Callable[[str], Any]) -> World:
    """The embedded default's registry: its own settings file serves staging."""
    return make_world(project, aws, "local")
