"""Shared fixtures: the project's settings, and one emulator per test session where tests share it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Nothing in the suite may reach a real AWS account, whatever the machine's environment holds.
for _name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
    os.environ.pop(_name, None)
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_DEFAULT_REGION="us-east-1",
    SAGEMAKER_VALIDATE_ROLE="false",
    MLOPS_PROJECT_DIR=str(ROOT),
)


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets its own state folder, so no test finds another's recorded emulator or endpoint."""
    monkeypatch.setenv("MLOPS_STATE_DIR", str(tmp_path_factory.mktemp("state")))


@pytest.fixture(scope="session")
def emulator():
    """One emulator shared by the tests that only need a clean-enough AWS (they use unique names)."""
    from mlops_kit.emulator import Emulator

    with Emulator() as running:
        yield running
