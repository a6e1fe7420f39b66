"""`mlops init`: a project for each task that is lint-clean and passes its own tests; refusals."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mlops_kit import scaffold
from mlops_kit.cli import main

ROOT = Path(__file__).resolve().parents[2]
RUFF = Path(sys.executable).parent / "ruff"


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_a_new_project_is_clean_and_passes_its_own_tests(task: str, tmp_path: Path) -> None:
    folder = tmp_path / f"churn-{task}"
    assert main(["init", str(folder), "--task", task, "--kit-path", str(ROOT)]) == 0
    package = f"churn_{task}"
    assert (folder / package / "__init__.py").is_file() and (folder / "infra" / "__main__.py").is_file()
    text = "\n".join(p.read_text() for p in folder.rglob("*") if p.is_file())
    assert "{{" not in text and "__package__" not in text
    pyproject = (folder / "pyproject.toml").read_text()
    assert 'dependencies = ["mlops-kit"]' in pyproject and f'path = "{ROOT}"' in pyproject
    for args in (["check", "."], ["format", "--check", "."]):
        lint = subprocess.run([str(RUFF), *args], cwd=folder, capture_output=True, text=True)
        assert lint.returncode == 0, lint.stdout + lint.stderr
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=folder, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-3000:]
    assert "5 passed" in tests.stdout


def test_the_environments_gate_the_tasks_own_metrics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlops_kit import project, settings

    folder = tmp_path / "prices"
    scaffold.create(folder, scaffold.options(folder, "regression"))
    monkeypatch.syspath_prepend(str(folder))
    for env in ("local", "dev", "staging", "prod"):
        config = settings.load(env, folder)
        case = project.use_case(config)  # gates checked against the declared metrics
        assert case.task == "regression" and set(config.promotion.gates) == {"r2"}
        assert case.decider.direction == "lower"  # RMSE decides, lower is better
    assert settings.load("prod", folder).promotion.approval_required


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--task", "ranking"], "unknown task 'ranking'; expected one of binary, multiclass, regression"),
        (["--task", "binary", "--name", "Bad_Name"], "project name 'Bad_Name'"),
        (["--task", "binary", "--package", "class"], "package name 'class' is not a usable"),
        (["--task", "binary", "--package", "mlops_kit"], "package name 'mlops_kit' is not a usable"),
    ],
)
def test_bad_options_are_refused_and_nothing_is_written(
    args: list[str], says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "new"
    assert main(["init", str(folder), *args]) == 1
    assert says in capsys.readouterr().err and not folder.exists()


def test_a_folder_with_files_is_left_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["init", str(tmp_path), "--task", "binary"]) == 1
    assert "is not empty" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_an_unknown_placeholder_is_an_error_not_a_silent_hole() -> None:
    with pytest.raises(scaffold.InitError, match="placeholders with no value: nope"):
        scaffold.render("a {{name}} and {{nope}}", {"name": "x"})


def test_the_projects_pulumi_program_is_the_kits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The project's two-line infra program plans its own platform from the installed kit."""
    import shutil

    folder = tmp_path / "fraudless"
    assert main(["init", str(folder), "--task", "binary"]) == 0
    shutil.copy(ROOT / "uv.lock", folder / "uv.lock")  # stands in for `uv lock`: the image tag hashes it
    monkeypatch.setenv("MLOPS_PROJECT_DIR", str(folder))
    monkeypatch.chdir(folder)
    monkeypatch.syspath_prepend(str(folder))
    capsys.readouterr()
    assert main(["infra", "plan", "--env", "dev"]) == 0
    plan = " ".join(capsys.readouterr().out.split())
    assert "pipeline_name: fraudless-dev-training" in plan
    assert "fraudless-dev-runtime:" in plan and "mlops-kit" not in plan
