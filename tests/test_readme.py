"""The README's commands are real: every command in its table answers --help, and its example holds."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from mlops_kit.cli import main

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _table_commands() -> list[list[str]]:
    """`mlops emulator start / stop / status` -> [emulator start], [emulator stop], [emulator status]."""
    commands = []
    for row in re.findall(r"^\| (`mlops [^|]+)\|", README, flags=re.M):
        for cell in re.findall(r"`mlops ([^`]+)`", row):
            group, _, rest = cell.partition(" ")
            subs = [part.strip() for part in rest.split("/") if part.strip()]
            commands += [[group, sub] for sub in subs] or [[group]]
    return commands


def test_the_quick_start_is_the_two_make_targets() -> None:
    first_block = re.search(r"```bash\n(.*?)```", README, flags=re.S).group(1)
    assert [line.split("#")[0].strip() for line in first_block.strip().splitlines()] == [
        "make demo",
        "make test",
    ]
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, flags=re.M) and re.search(r"^test:", makefile, flags=re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.parametrize("command", _table_commands(), ids=" ".join)
def test_every_command_in_the_table_exists(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*command, "--help"]) == 0, command
    assert "Usage" in capsys.readouterr().out


def test_the_table_lists_the_commands() -> None:
    names = {c[0] for c in _table_commands()}
    assert {
        "demo",
        "emulator",
        "pipeline",
        "runs",
        "infra",
        "features",
        "serve",
        "monitor",
        "promote",
    } <= names


def test_the_settings_error_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copytree(ROOT / "environments", tmp_path / "environments")
    local = tmp_path / "environments" / "Pulumi.local.yaml"
    local.write_text(local.read_text().replace("capture_percent:", "capture_pct:"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLOPS_PROJECT_DIR")
    assert main(["demo"]) == 1
    example = re.search(r"^\$ mlops demo\n(error: .*?)\.\.\.$", README, flags=re.M).group(1)
    assert " ".join(capsys.readouterr().err.split()).startswith(example.strip())


def test_the_serving_sections_options_exist(capsys: pytest.CaptureFixture[str]) -> None:
    section = README.split("## Serving", 1)[1].split("\n## ", 1)[0]
    options = {o for code in re.findall(r"`([^`]+)`", section) for o in re.findall(r"--[a-z-]+", code)}
    assert {"--model-dir", "--no-compile-trees", "--no-batch"} <= options
    assert main(["serve", "--help"]) == 0
    shown = re.sub(r"[\s│]+", " ", capsys.readouterr().out)
    for option in options:
        assert option in shown, option
