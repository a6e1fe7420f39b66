"""The Pulumi program and its policy pack ship in the kit: a project's `infra/__main__.py` only calls it.

A team's project depends on `mlops-kit` by version, so what `pulumi up` runs must be in the wheel, must
find the project from where Pulumi runs it, and must not lean on this repository's use case.
"""

from __future__ import annotations

import ast
import runpy
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from infra_fixtures import PROJECT, ROOT, make_root, planned

from mlops_kit.infra import stack
from mlops_kit.settings import SettingsError

KIT = ROOT / "src" / "mlops_kit"
PROGRAM = ["from mlops_kit.infra.stack import main", "main()"]


def _uv() -> list[str]:
    """uv as the Makefile has it: on PATH, else the module it installs with pip."""
    found = shutil.which("uv")
    return [found] if found else ["python3", "-m", "uv"]


def test_the_wheel_ships_the_program_its_components_and_the_policy_pack(tmp_path: Path) -> None:
    # --offline: `uv sync` built this project with the same backend (hatchling), so it is in uv's cache.
    subprocess.run(
        [*_uv(), "build", "--wheel", "--offline", "--quiet", "-o", str(tmp_path), str(ROOT)],
        check=True,
        timeout=120,
    )
    (wheel,) = tmp_path.glob("mlops_kit-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    components = sorted(p.name for p in (KIT / "infra" / "components").glob("*.py"))
    assert {"cicd.py", "runtime.py", "serving.py", "storage.py", "training.py"} <= set(components)
    expected = {
        "mlops_kit/infra/stack.py",
        "mlops_kit/infra/policy/PulumiPolicy.yaml",
        "mlops_kit/infra/policy/__main__.py",
        "mlops_kit/infra/policy/validators.py",
        *(f"mlops_kit/infra/components/{name}" for name in components),
    }
    assert expected <= names, sorted(expected - names)
    # the kit, not this repository: no top-level program folder and no use case in the wheel
    assert not [n for n in names if n.startswith(("infra/", "pipelines/", "tests/", "kit_fixture/"))]


@pytest.mark.parametrize("root", [ROOT, PROJECT], ids=["repository", "test-project"])
def test_the_projects_program_is_only_the_call_into_the_kit(root: Path) -> None:
    module = ast.parse((root / "infra" / "__main__.py").read_text())
    if ast.get_docstring(module) is not None:  # `mlops init` writes one
        module.body = module.body[1:]
    assert [ast.unparse(statement) for statement in module.body] == PROGRAM
    assert sorted(p.name for p in (root / "infra").iterdir() if p.name != "__pycache__") == ["__main__.py"]


def test_a_verbatim_copy_of_the_program_plans_the_project_it_sits_in(tmp_path: Path) -> None:
    """The root comes from the program Pulumi runs: an environment only this copy's project has is found
    (the kit's own location, inside this repository, would find the repository's environments)."""
    root = make_root(tmp_path, {"elsewhere": (PROJECT / "environments" / "Pulumi.dev.yaml").read_text()})
    (root / "infra").unlink()  # make_root links the test project's program folder: copy it instead
    (root / "infra").mkdir()
    shutil.copy(PROJECT / "infra" / "__main__.py", root / "infra" / "__main__.py")
    plan = planned("elsewhere", root)
    assert plan.outputs["pipeline_name"] == "kit-fixture-elsewhere-training"


def _program(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "__main__.py").write_text(
        "from mlops_kit.infra.stack import program_root\nROOT = program_root()\n"
    )
    return folder


def test_the_project_root_is_the_folder_with_pulumi_yaml_above_the_running_program(tmp_path: Path) -> None:
    project = tmp_path / "team-project"
    program = _program(project / "infra")
    (project / "Pulumi.yaml").write_text("name: team-project\nruntime: python\nmain: infra/\n")
    assert runpy.run_path(str(program), run_name="__main__")["ROOT"] == project
    # a program folder linked in from elsewhere still belongs to the project that links it
    linked = tmp_path / "linking-project"
    linked.mkdir()
    (linked / "Pulumi.yaml").write_text("name: linking-project\nruntime: python\nmain: infra/\n")
    (linked / "infra").symlink_to(program)
    assert runpy.run_path(str(linked / "infra"), run_name="__main__")["ROOT"] == linked


def test_a_program_with_no_pulumi_yaml_above_it_is_refused(tmp_path: Path) -> None:
    program = _program(tmp_path / "stray" / "infra")
    with pytest.raises(SettingsError, match="no Pulumi.yaml above the Pulumi program"):
        runpy.run_path(str(program), run_name="__main__")


def test_the_program_needs_a_running_main_module(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(sys.modules["__main__"], "__file__", raising=False)
    with pytest.raises(RuntimeError, match="runs as a project's Pulumi program"):
        stack.program_root()


def test_importing_the_program_does_not_import_the_projects_use_case() -> None:
    """`kit_fixture` is importable here (the working folder is on the path), yet the kit leaves it alone."""
    probe = (
        "import sys, importlib.util, mlops_kit.infra.stack;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'kit_fixture'));"
        "print(importlib.util.find_spec('kit_fixture') is not None)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=PROJECT, check=True, capture_output=True, text=True, timeout=120
    ).stdout.split()
    assert out == ["[]", "True"]
