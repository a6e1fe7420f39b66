"""zizmor (offline) and check-jsonschema's built-in GitHub workflow schema: silent on ours, loud on a bad one.

`make lint` (which `make test` calls) runs both on .github/workflows; these tests show that they do run
offline, and that they would catch what they are there for.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
BIN = Path(sys.executable).parent

# A workflow with the classic mistakes: a tag instead of a commit, an attacker-controlled title expanded
# inside a script, and the default (broad) token permissions.
INSECURE = """\
name: insecure
on:
  pull_request:
jobs:
  greet:
    runs-on: ubuntu-24.04
    steps:
      - uses: actions/checkout@v4
      - run: echo "${{ github.event.pull_request.title }}"
"""

# Valid YAML, but not a workflow GitHub would accept: a job with no runner and an unknown permission.
MALFORMED = """\
name: malformed
on: push
permissions:
  contents: admin
jobs:
  build:
    steps:
      - run: make test
"""


def _offline_env(tmp_path: Path) -> dict[str, str]:
    # Any attempt to reach the network goes to a closed local port, and no cache from earlier runs helps.
    dead = "http://127.0.0.1:9"
    env = {**os.environ, "HTTP_PROXY": dead, "HTTPS_PROXY": dead, "http_proxy": dead, "https_proxy": dead}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    for token in ("GH_TOKEN", "GITHUB_TOKEN", "ZIZMOR_GITHUB_TOKEN"):
        env.pop(token, None)
    return env


def zizmor(target: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "zizmor"), "--offline", "--no-progress", "--format", "plain", str(target)],
        capture_output=True,
        text=True,
        env=_offline_env(tmp_path),
        timeout=120,
    )


def check_jsonschema(files: list[Path], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *map(str, files)],
        capture_output=True,
        text=True,
        env=_offline_env(tmp_path),
        timeout=120,
    )


def _workflow(tmp_path: Path, body: str) -> Path:
    folder = tmp_path / "repo" / ".github" / "workflows"
    folder.mkdir(parents=True)
    path = folder / "bad.yml"
    path.write_text(body)
    return path


def test_zizmor_offline_reports_nothing_on_our_workflows(tmp_path: Path) -> None:
    result = zizmor(WORKFLOWS, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout


def test_zizmor_catches_an_unpinned_action_and_a_script_injection(tmp_path: Path) -> None:
    result = zizmor(_workflow(tmp_path, INSECURE), tmp_path)
    assert result.returncode != 0
    for audit in ("unpinned-uses", "template-injection", "excessive-permissions"):
        assert f"[{audit}]" in result.stdout, f"{audit} not reported:\n{result.stdout}"


def test_our_workflows_pass_the_builtin_github_workflow_schema(tmp_path: Path) -> None:
    result = check_jsonschema(sorted(WORKFLOWS.glob("*.yml")), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok -- validation done" in result.stdout


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (MALFORMED, "'runs-on' is a required property"),
        (MALFORMED.replace("    steps:", "    runs-on: ubuntu-24.04\n    steps:"), "'admin' is not one of"),
    ],
)
def test_check_jsonschema_catches_a_workflow_github_would_reject(
    tmp_path: Path, body: str, words: str
) -> None:
    path = _workflow(tmp_path, body)
    result = check_jsonschema([path], tmp_path)
    assert result.returncode != 0
    assert str(path) in result.stdout
    assert words in result.stdout


def test_make_lint_runs_both_offline_on_every_workflow() -> None:
    makefile = (ROOT / "Makefile").read_text()
    lint = re.search(r"^lint:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert lint is not None
    recipe = lint.group(1)
    assert "zizmor --offline" in recipe and ".github/workflows" in recipe
    assert "check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml" in recipe
    assert re.search(r"^test:\s*lint\b", makefile, re.M)
