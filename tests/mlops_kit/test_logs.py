"""Log lines for machines: `--log-format json` / MLOPS_LOG_FORMAT, for the CLI and the server."""

from __future__ import annotations

import io
import json
import logging

import pytest

from mlops_kit import logs
from mlops_kit.cli import exit_codes, main


def test_a_json_line_carries_the_message_and_the_extra_fields() -> None:
    record = logging.makeLogRecord(
        {"name": "mlops_kit.serving", "levelname": "WARNING", "msg": "refused %s", "args": ("GET /x",)}
    )
    record.status = 404
    record.reason = "no route /x"
    line = json.loads(logs.JsonFormatter().format(record))
    assert line["message"] == "refused GET /x" and line["level"] == "warning"
    assert line["status"] == 404 and line["reason"] == "no route /x"
    assert line["logger"] == "mlops_kit.serving" and line["time"].endswith("Z")


def test_the_format_comes_from_the_flag_then_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(logs.ENV, raising=False)
    assert logs.chosen() == "text"
    monkeypatch.setenv(logs.ENV, "JSON")
    assert logs.chosen() == "json"
    assert logs.chosen("text") == "text"
    monkeypatch.setenv(logs.ENV, "yaml")
    with pytest.raises(ValueError, match="MLOPS_LOG_FORMAT: unknown log format 'yaml'"):
        logs.chosen()


def test_configure_replaces_only_its_own_handler() -> None:
    root = logging.getLogger()
    before = [h for h in root.handlers if not getattr(h, "_mlops_kit", False)]  # a test runner's
    level = root.level
    try:
        logs.configure("json", text_format="%(message)s")
        logs.configure("text", text_format="%(message)s")
        ours = [h for h in root.handlers if getattr(h, "_mlops_kit", False)]
        assert len(ours) == 1 and not isinstance(ours[0].formatter, logs.JsonFormatter)
        assert [h for h in root.handlers if h not in ours] == before
    finally:
        for handler in [h for h in root.handlers if getattr(h, "_mlops_kit", False)]:
            root.removeHandler(handler)
        root.setLevel(level)


def test_the_cli_error_line_is_json_when_asked(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(logs.ENV, raising=False)
    assert main(["--log-format", "json", "pipeline", "definition", "--env", "nowhere"]) == exit_codes.ERROR
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["level"] == "error" and "nowhere" in line["message"]
    monkeypatch.delenv(logs.ENV, raising=False)
    assert main(["pipeline", "definition", "--env", "nowhere"]) == exit_codes.ERROR
    assert capsys.readouterr().err.startswith("error: ")


def test_an_unknown_log_format_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(logs.ENV, raising=False)
    assert main(["--log-format", "yaml", "runs", "list"]) == exit_codes.USAGE
    assert "--log-format" in capsys.readouterr().err


def test_json_handler_writes_one_object_a_line(monkeypatch: pytest.MonkeyPatch) -> None:
    sink = io.StringIO()
    monkeypatch.setattr(logs.sys, "stderr", sink)
    root = logging.getLogger()
    level = root.level
    try:
        logs.configure("json", text_format="%(message)s")
        logging.getLogger("mlops_kit.test").warning("one\ntwo", extra={"path": "/p"})
    finally:
        for handler in [h for h in root.handlers if getattr(h, "_mlops_kit", False)]:
            root.removeHandler(handler)
        root.setLevel(level)
    (line,) = sink.getvalue().splitlines()
    assert json.loads(line) | {"time": "", "pid": 0} == {
        "time": "",
        "pid": 0,
        "level": "warning",
        "logger": "mlops_kit.test",
        "message": "one\ntwo",
        "path": "/p",
    }
