"""The kit's suite stands without this repository's example, which a team replaces with its own use case.

The kit's suite is every test file under tests/ but the example's own (tests/example). It runs on its own test project
(tests/project), so it must neither import the example's package nor name its modules, and it must pass
in a copy of the repository whose example is replaced by a use case of `mlops init`.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_kit.cli import main

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
EXAMPLE = "pipelines"  # the example's use case package (`mlops:use_case` of the repository's environments)
NOT_THE_KITS = (TESTS / "example",)
# A module named in a string: "pipelines.steps.prepare", "mlops:use_case: pipelines:USE_CASE".
REFERENCE = re.compile(rf"(?<![\w.-]){EXAMPLE}(?=[.:][A-Za-z_])")

# What the copy runs: the use-case contract, settings, the registry and promotion, the executor, the
# runtime image's parity, the scaffold, and infra planning.
SUBSET = [
    "tests/mlops_kit/test_usecase.py",
    "tests/mlops_kit/test_settings.py",
    "tests/mlops_kit/registry/test_registry_gates.py",
    "tests/mlops_kit/monitoring/test_monitor_quality.py",
    "tests/mlops_kit/registry/test_registry_promotion.py::test_promotion_to_the_first_stage_approves_tags_audits_and_writes_the_settings",
    "tests/mlops_kit/registry/test_registry_promotion.py::test_a_package_moves_through_every_stage_in_order",
    "tests/mlops_kit/registry/test_registry_promotion.py::test_the_challenger_must_beat_the_champion_on_recorded_metrics",
    "tests/mlops_kit/executor/test_expressions.py",
    "tests/mlops_kit/executor/test_runner.py::test_runs_steps_in_order_and_follows_the_condition",
    "tests/mlops_kit/executor/test_runner.py::test_training_runs_the_images_train_entry_point",
    "tests/mlops_kit/executor/test_runner.py::test_only_the_projects_image_runs_here",
    "tests/mlops_kit/test_runtime.py",
    "tests/mlops_kit/test_scaffold.py::test_the_environments_gate_the_tasks_own_metrics",
    "tests/mlops_kit/test_scaffold.py::test_bad_options_are_refused_and_nothing_is_written",
    "tests/infra/test_infra_stack.py::test_every_environment_gets_the_whole_platform",
    "tests/infra/test_infra_stack.py::test_every_shipped_environment_passes_the_policy_pack",
    "tests/infra/test_infra_cli.py::test_plan_json_lists_every_resource_and_the_outputs",
]


def kit_suite() -> list[Path]:
    """Every Python file of the kit's suite and its test project, but this one (which names the example
    to look for it)."""
    return sorted(
        p
        for p in TESTS.rglob("*.py")
        if not any(p.is_relative_to(folder) for folder in NOT_THE_KITS)
        and "__pycache__" not in p.parts
        and p != Path(__file__).resolve()
    )


def example_references(path: Path, root: Path = ROOT) -> list[str]:
    """`file:line: what` for each import of the example's package and each string naming it or a module
    of it (a variable or a folder of that name is not a reference)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        where = f"{path.relative_to(root)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""] if node.level == 0 else []
        else:
            named = isinstance(node, ast.Constant) and isinstance(node.value, str)
            if named and (node.value == EXAMPLE or REFERENCE.search(node.value)):
                found.append(f"{where}: names it in {node.value[:60]!r}")
            continue
        if any(name.split(".")[0] == EXAMPLE for name in names):
            found.append(f"{where}: imports {', '.join(names)}")
    return found


def test_no_test_of_the_kit_imports_or_names_the_example() -> None:
    files = kit_suite()
    assert len(files) > 50 and TESTS / "project" / "kit_fixture" / "__init__.py" in files
    assert [problem for path in files for problem in example_references(path)] == []


def test_the_scan_finds_an_import_and_a_named_module(tmp_path: Path) -> None:
    sneaky = tmp_path / "tests" / "test_sneaky.py"
    sneaky.parent.mkdir()
    sneaky.write_text(
        "import json\n"
        "def test_x():\n"
        f"    from {EXAMPLE}.synthetic import generate\n"
        f"    entry = '{EXAMPLE}.steps.prepare'\n"
        f"    settings = 'mlops:use_case: {EXAMPLE}:USE_CASE'\n"
        f"    spec = importlib.util.find_spec('{EXAMPLE}')\n"
        f"    {EXAMPLE} = {{}}  # a variable of that name, and a folder: {EXAMPLE}/, are fine\n"
    )
    assert sorted(example_references(sneaky, tmp_path)) == [
        f"tests/test_sneaky.py:3: imports {EXAMPLE}.synthetic",
        f"tests/test_sneaky.py:4: names it in '{EXAMPLE}.steps.prepare'",
        f"tests/test_sneaky.py:5: names it in 'mlops:use_case: {EXAMPLE}:USE_CASE'",
        f"tests/test_sneaky.py:6: names it in '{EXAMPLE}'",
    ]


def test_a_subset_of_the_kits_suite_passes_with_the_example_replaced(tmp_path: Path) -> None:
    """A copy of the repository's files (`git ls-files`, with files not yet committed), without
    `pipelines/` and `tests/example/`, whose package, environments and Pulumi.yaml are a multiclass use
    case of `mlops init` named `pipelines` (so a leftover reference to the example finds the wrong module
    rather than none), runs a representative part of the kit's suite.

    A subset, not the whole suite: the whole of it twice would double `make test`. The subset covers the
    places where the example used to reach the kit's tests: the use-case contract, settings, the registry
    and promotion, the executor, the runtime image's parity, the scaffold and infra planning. The scan
    above covers every file."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the copy is made of `git ls-files`")
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    copy = tmp_path / "repository"
    for name in filter(None, listed.split("\0")):
        source, target = ROOT / name, copy / name
        if name.startswith((f"{EXAMPLE}/", "tests/example/")) or not source.is_file():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)

    scratch = tmp_path / "replacement"
    assert main(["init", str(scratch), "--task", "multiclass", "--package", EXAMPLE]) == 0
    shutil.rmtree(copy / "environments")
    for name in (EXAMPLE, "environments", "Pulumi.yaml"):
        shutil.move(scratch / name, copy / name)
    assert not (copy / EXAMPLE / "synthetic.py").exists() and not (copy / "tests" / "example").exists()
    assert 'TASK = Task("multiclass")' in (copy / EXAMPLE / "__init__.py").read_text()

    environ = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")}
    environ.update(PYTHONPATH=str(copy / "src"), MLOPS_STATE_DIR=str(tmp_path / "state"))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *SUBSET],
        cwd=copy,
        env=environ,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert int(re.search(r"(\d+) passed", result.stdout).group(1)) >= 60, result.stdout[-2000:]
