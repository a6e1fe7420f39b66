from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mlops_kit.cli import main


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("demo", "emulator", "data"):
        assert command in out


def test_data_generate_writes_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "t.csv"
    assert main(["data", "generate", "--rows", "500", "--out", str(target), "--seed", "3"]) == 0
    assert len(pd.read_csv(target)) == 500
    assert "wrote 500 kit-fixture events (label: binary)" in " ".join(capsys.readouterr().out.split())


def test_errors_are_one_line_on_stderr_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["data", "generate", "--rows", "0", "--out", str(tmp_path / "t.csv")])
    captured = capsys.readouterr()
    assert code == 1
    assert "rows must be at least 1" in captured.err
    assert "Traceback" not in captured.err
    assert captured.out == ""


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="rows must be at least 1"):
        main(["--debug", "data", "generate", "--rows", "0", "--out", str(tmp_path / "t.csv")])


def test_bad_environment_names_the_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--env", "qa"]) == 1
    assert "Pulumi.qa.yaml" in capsys.readouterr().err


def test_usage_error_exits_2(capfd: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "generate", "--rows", "many"]) == 2
    assert "Invalid value for '--rows'" in capfd.readouterr().err


def test_an_error_with_brackets_is_printed_as_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Rich markup must not swallow or choke on a message such as a URI with [/prefix].
    target = tmp_path / "[/prefix]" / "t.xlsx"
    assert main(["data", "generate", "--rows", "5", "--out", str(target)]) == 1
    assert "[/prefix]" in capsys.readouterr().err


def test_monitor_tick_refuses_an_aws_environment(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["monitor", "tick", "--env", "dev"]) == 1
    error = capsys.readouterr().err
    assert "EventBridge Scheduler" in error and "Pulumi.dev.yaml" in error


def test_monitor_tick_refuses_a_time_it_cannot_read(capfd: pytest.CaptureFixture[str]) -> None:
    assert main(["monitor", "tick", "--at", "yesterday"]) == 2
    assert "'yesterday' is not an ISO 8601 time" in capfd.readouterr().err
