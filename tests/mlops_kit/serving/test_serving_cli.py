"""`mlops invoke` and `mlops deploy --stop` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from serving_helpers import RunningServer, fitted_model

from mlops_kit.cli import main


def test_invoke_sends_a_file_to_a_url(
    server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = tmp_path / "rows.csv"
    body.write_text("1,2,3\n-1,0,2\n")
    assert main(["invoke", "--url", server.url, "--input", str(body)]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got == pytest.approx(fitted_model().predict_proba([[1, 2, 3], [-1, 0, 2]])[:, 1].tolist())


def test_invoke_reports_the_servers_reason(
    server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = tmp_path / "rows.csv"
    body.write_text("1,2\n")
    assert main(["invoke", "--url", server.url, "--input", str(body)]) == 1
    assert "400: rows have 2 columns, the model expects 3" in capsys.readouterr().err


def test_invoke_without_a_local_endpoint_says_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = tmp_path / "rows.csv"
    body.write_text("1,2,3\n")
    assert main(["invoke", "--input", str(body)]) == 1
    assert "mlops deploy --env local" in capsys.readouterr().err


def test_deploy_stop_without_an_endpoint(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["deploy", "--stop"]) == 0
    assert "no local endpoint was running" in capsys.readouterr().out
