"""Shared fixtures: the project the tests read their settings from, and one emulator per test session.

The kit's suite runs against its own test project, `tests/project` (use case `kit_fixture`), never
against this repository's example (`pipelines/`, `environments/`), which a team replaces with its own.
The example's tests (`tests/example`) run against the repository's root.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ROOT / "tests" / "project"  # the kit's test project
# Run against the repository's root: the example's tests, and monitoring's until its tests are rewritten
# on their own data (they still build on the example's synthetic transactions).
ON_THE_REPOSITORY = (ROOT / "tests" / "example", ROOT / "tests" / "mlops_kit" / "monitoring")

# Nothing in the suite may reach a real AWS account, whatever the machine's environment holds.
for _name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
    os.environ.pop(_name, None)
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_DEFAULT_REGION="us-east-1",
    SAGEMAKER_VALIDATE_ROLE="false",
    MLOPS_PROJECT_DIR=str(PROJECT),
)
sys.path.insert(0, str(PROJECT))  # as the kit's resolver makes the project importable


def project_for(path: Path) -> Path:
    return ROOT if any(path.is_relative_to(folder) for folder in ON_THE_REPOSITORY) else PROJECT


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    """The test's project for the whole of its run: setup (module fixtures too), call and teardown."""
    os.environ["MLOPS_PROJECT_DIR"] = str(project_for(item.path))
    try:
        return (yield)
    finally:
        os.environ["MLOPS_PROJECT_DIR"] = str(PROJECT)


@pytest.fixture(autouse=True)
def _isolated_state(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Each test gets its own state folder, so no test finds another's recorded emulator or endpoint.
    A recorded emulator a test started there (`mlops emulator start`) and left is stopped after it: it
    would outlive the run (found still serving after CI-like runs)."""
    state = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("MLOPS_STATE_DIR", str(state))
    yield
    from mlops_kit import emulator

    monkeypatch.setenv("MLOPS_STATE_DIR", str(state))  # a test's monkeypatch.undo() may have reset it

    with contextlib.suppress(OSError, ValueError, KeyError, emulator.EmulatorError):
        pid = int(json.loads(emulator.state_file().read_text())["pid"])
        # only one this test started (its journal is in this test's folder), not a shared one it recorded
        if str(state).encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
            emulator.stop_recorded()


@pytest.fixture(scope="session")
def emulator():
    """One emulator shared by the tests that only need a clean-enough AWS (they use unique names)."""
    from mlops_kit.emulator import Emulator

    with Emulator() as running:
        yield running
