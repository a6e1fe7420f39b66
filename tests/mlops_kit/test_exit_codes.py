"""Scripts can tell a refusal and a drift from a failure: the documented exit codes, and --version."""

from __future__ import annotations

import importlib.metadata

import pytest

from mlops_kit.cli import exit_codes, main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"mlops-kit {importlib.metadata.version('mlops-kit')}"


def test_the_codes_are_distinct_and_documented_in_help(capsys: pytest.CaptureFixture[str]) -> None:
    codes = [exit_codes.OK, exit_codes.ERROR, exit_codes.USAGE, exit_codes.REFUSED, exit_codes.DRIFT]
    assert codes == [0, 1, 2, 3, 4]
    assert main(["--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "0 ok, 1 error, 2 usage, 3 refused by a gate, 4 drift found (--fail-on-drift)" in text


def test_usage_errors_are_2_and_failures_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "list", "--bogus"]) == exit_codes.USAGE
    assert main(["pipeline", "definition", "--env", "nowhere"]) == exit_codes.ERROR


def test_emulator_status_and_runs_list_as_json_and_piped(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert main(["emulator", "status", "--json"]) == 1
    assert json.loads(capsys.readouterr().out) == {"running": False}
    assert main(["runs", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["runs", "list"]) == 0  # piped under pytest: a header line, tab-separated, not a table
    assert capsys.readouterr().out.splitlines()[0].split("\t")[:3] == ["run", "environment", "status"]


def test_help_imports_no_pandas_boto3_or_sdk() -> None:
    """`mlops --help` answers without the heavy imports (what makes it fast is what a test can check)."""
    import subprocess
    import sys

    code = "import sys; from mlops_kit.cli import main; main(['--help']); print(sorted(m for m in ('pandas', 'boto3', 'sagemaker', 'pulumi') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"
