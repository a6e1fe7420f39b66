"""The fault suite (`pytest tests/faults`): markers that count what was tried, and the closing tally."""

from __future__ import annotations

import json

import faults_summary
import pytest


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
                name = marker.args[0] if marker.args else item.name
                if "[" in item.name and not marker.args:
                    name = item.name
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
