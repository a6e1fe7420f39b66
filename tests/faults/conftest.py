"""The fault suite (`pytest tests/faults`): markers that count what was tried, the closing tally, and
the fixtures its tests borrow from the suites of the parts they attack (serving's model and server
helpers, the registry's world)."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import faults_summary
import pytest
from botocore.config import Config
from moto import mock_aws

HERE = Path(__file__).resolve().parent
for _suite in ("serving", "registry", "executor"):  # their helper modules, imported by name as their tests do
    if str(HERE.parent / "mlops_kit" / _suite) not in sys.path:
        sys.path.insert(0, str(HERE.parent / "mlops_kit" / _suite))

from registry_fixtures import PROJECT, World, make_world  # noqa: E402
from serving_helpers import write_model_dir  # noqa: E402

from mlops_kit import emulator  # noqa: E402

TOY = "tests.mlops_kit.registry.toy_use_case:USE_CASE"


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_model_dir(tmp_path_factory.mktemp("model"))


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """The registry tests' dev world (in-process moto, a copy of the test project with the toy use case)."""
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(PROJECT / "Pulumi.yaml", root / "Pulumi.yaml")
    shutil.copytree(PROJECT / "environments", root / "environments")
    for path in (root / "environments").glob("*.yaml"):
        path.write_text(
            path.read_text().replace("mlops:use_case: kit_fixture:USE_CASE", f"mlops:use_case: {TOY}")
        )
    monkeypatch.setenv("MLOPS_PROJECT_DIR", str(root))
    emulator.share_registries_across_accounts()  # as the registry's own `aws` fixture
    with mock_aws():
        config = Config(retries={"max_attempts": 1})

        def aws(service: str) -> Any:
            return boto3.client(service, region_name="us-east-1", config=config)

        yield make_world(root, aws, "dev")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "fault(name): a fault injected; counted as survived when the test passes"
    )
    config.addinivalue_line(
        "markers", "bad_input(kind): a bad input; counted as handled when the test passes"
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.when == "call" or (report.when == "setup" and report.failed):
        for mark, kind in (("fault", "faults"), ("bad_input", "bad_inputs")):
            for marker in item.iter_markers(mark):
                callspec = getattr(item, "callspec", None)
                name = marker.args[0] if marker.args else callspec.id if callspec else item.name
                faults_summary.note(kind, name, report.passed)
    return report


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    tally = faults_summary.summary()
    if not (tally["faults_tried"] or tally["bad_inputs_tried"]):
        return
    folder = config._tmp_path_factory.getbasetemp()  # type: ignore[attr-defined]
    path = faults_summary.write(folder)
    terminalreporter.section("faults and bad inputs")
    terminalreporter.write_line(json.dumps({k: v for k, v in tally.items()}))
    terminalreporter.write_line(
        f"faults survived {tally['faults_survived']}/{tally['faults_tried']}, bad inputs handled "
        f"{tally['bad_inputs_handled']}/{tally['bad_inputs_tried']}, 5xx answers {tally['answers_5xx']} "
        f"of {tally['http_requests']} requests ({path})"
    )
