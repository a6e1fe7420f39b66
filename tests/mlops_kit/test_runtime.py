"""The runtime image, the lock and the code agree: the parity checks `make test` runs.

The checks read this repository's image (its Dockerfile, lock and what it copies: the kit and whichever
use case the repository holds); the modules a pipeline runs are those of the kit's test project.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from mlops_kit import container, runtime

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ROOT / "tests" / "project"  # the kit's test project
HADOLINT = Path(sys.executable).parent / "hadolint"
KIT = "src/mlops_kit"
# The use case's package the image copies besides the kit (this repository's example, or its replacement).
USE_CASE = next(
    s for s in runtime.copied_sources(ROOT / runtime.DOCKERFILE) if s != KIT and (ROOT / s).is_dir()
)


def test_the_project_passes_every_parity_check() -> None:
    assert runtime.check(ROOT) == []


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    """A copy of what the checks read, to break one thing at a time."""
    for name in ("Dockerfile", ".python-version", "pyproject.toml", "uv.lock"):
        shutil.copy(ROOT / name, tmp_path / name)
    for name in (KIT, USE_CASE):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    assert runtime.check(tmp_path) == []
    return tmp_path


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def test_a_dockerfile_on_another_python_is_refused(project: Path) -> None:
    _edit(project / "Dockerfile", "ARG PYTHON_VERSION=3.11", "ARG PYTHON_VERSION=3.12")
    [problem] = runtime.check(project)
    assert "builds on Python 3.12, but .python-version says 3.11" in problem


def test_an_install_that_is_not_the_lock_is_refused(project: Path) -> None:
    _edit(project / "Dockerfile", "uv sync --frozen", "uv sync")
    assert any("uv sync --frozen" in p for p in runtime.check(project))
    _edit(project / "Dockerfile", "uv sync --no-dev", "uv sync --frozen --no-dev")
    _edit(project / "Dockerfile", "FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime",
          "FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime\nRUN pip install --no-cache-dir pyarrow==17.0.0")  # fmt: skip
    assert any("pip install" in p for p in runtime.check(project))


def test_a_lock_out_of_date_with_pyproject_is_refused(project: Path) -> None:
    _edit(project / "pyproject.toml", '"pandas",', '"pandas>=2",')
    [problem] = runtime.check(project)
    assert problem == "uv.lock is out of date with pyproject.toml (pandas); run `uv lock`"


def test_code_newer_than_the_images_python_is_refused(project: Path) -> None:
    (project / USE_CASE / "newer.py").write_text("type Row = dict[str, float]\n")
    [problem] = runtime.check(project)
    assert problem.startswith(f"{USE_CASE}/newer.py:1: not valid Python 3.11")


def test_a_copy_pattern_cannot_hide_files_from_the_tag(project: Path) -> None:
    _edit(project / "Dockerfile", f"COPY {USE_CASE} ", f"COPY {USE_CASE[:-1]}* ")
    with pytest.raises(runtime.ImageError, match="name files and folders, not patterns"):
        runtime.image_tag(project)


def test_the_tag_is_a_hash_of_what_the_image_holds(project: Path) -> None:
    tag = runtime.image_tag(project)
    assert tag == runtime.image_tag(project) and len(tag) == runtime.TAG_LENGTH
    (project / USE_CASE / "__pycache__").mkdir(exist_ok=True)
    (project / USE_CASE / "__pycache__" / "x.pyc").write_bytes(b"compiled")
    assert runtime.image_tag(project) == tag  # caches are not sources
    (project / "README.md").write_text("docs are not in the image\n")
    assert runtime.image_tag(project) == tag
    _edit(project / USE_CASE / "__init__.py", "import", "import  ")
    assert runtime.image_tag(project) != tag


def _final_stage(text: str) -> list[runtime.Instruction]:
    items = runtime.instructions(text)
    last_from = max(i for i, item in enumerate(items) if item.keyword == "FROM")
    return items[last_from:]


def test_the_image_runs_the_kits_entry_points_as_a_user_without_build_tools() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = [i for i in runtime.instructions(text) if i.keyword == "FROM"]
    assert len(stages) >= 2, "multi-stage: the build tools stay in the build stage"
    final = _final_stage(text)
    [entrypoint] = [i for i in final if i.keyword == "ENTRYPOINT"]
    assert tuple(json.loads(entrypoint.arguments)) == container.ENTRYPOINT
    [user] = [i for i in final if i.keyword == "USER"]
    assert user.arguments.split(":")[0] not in ("0", "root")
    [workdir] = [i for i in final if i.keyword == "WORKDIR"]
    assert workdir.arguments == runtime.IMAGE_WORKDIR
    env = " ".join(i.arguments for i in final if i.keyword == "ENV")
    assert f"PYTHONPATH={runtime.IMAGE_WORKDIR}" in env
    runs = " ".join(i.arguments for i in final if i.keyword == "RUN")
    assert not re.search(r"\b(gcc|g\+\+|build-essential|uv sync|pip install)\b", runs)


def test_every_module_the_pipeline_runs_is_in_the_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every module the built definition starts (processing entry points, the training module), and the
    monitoring job: the use case's resolve inside the image's WORKDIR from what its Dockerfile copies
    there, the kit's come with the kit (copied here, installed from the lock in a project of `mlops init`)."""
    from mlops_kit import pipeline, settings

    monkeypatch.setenv("MLOPS_STATE_DIR", str(tmp_path))
    copied = image_folders(PROJECT)
    config = settings.load("dev")
    definition = pipeline.definition(
        config, pipeline.context_for(config, "123456789012", runtime.image_tag(PROJECT))
    )
    text = json.dumps(definition)
    modules = set(re.findall(r'"python3", "-m", "([\w.]+)"', text))
    modules |= set(re.findall(rf'"{container.TRAIN_MODULE_VARIABLE}": "([\w.]+)"', text))
    assert len(modules) >= 4  # prepare, evaluate, baseline, train
    assert "mlops_kit" not in copied and {m.partition(".")[0] for m in modules} == {"kit_fixture"}
    for module in modules:
        assert module_file(copied, module), f"{module}: the image does not copy it"
    kit = {"mlops_kit": ROOT / KIT}
    for module in ("mlops_kit.monitoring.job", "mlops_kit.container"):
        assert module_file(kit, module), module
    assert not module_file(copied, "kit_fixture.absent")


def image_folders(root: Path) -> dict[str, Path]:
    """{top-level name under the image's WORKDIR: its source} from the Dockerfile's COPY lines."""
    copied = {}
    for item in runtime.instructions((root / runtime.DOCKERFILE).read_text()):
        words = item.arguments.split()
        if item.keyword == "COPY" and not words[0].startswith("--") and words[-1].startswith("/app/"):
            copied[words[-1].removeprefix("/app/")] = root / words[0]
    return copied


def module_file(copied: dict[str, Path], module: str) -> bool:
    top, _, rest = module.partition(".")
    if top not in copied:
        return False
    path = copied[top].joinpath(*rest.split(".")) if rest else copied[top]
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def test_this_environment_is_the_lock() -> None:
    """The executor runs the steps with this virtual environment: it must hold the lock's versions."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    versions: dict[str, set[str]] = {}  # a name may be locked at one version per Python range
    for package in lock["package"]:
        if not package.get("source", {}).get("editable"):
            versions.setdefault(package["name"], set()).add(package["version"])
    checked = 0
    for name, locked in sorted(versions.items()):
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue  # for another platform or Python
        assert installed in locked, (
            f"{name} {installed} is installed; the lock has {', '.join(sorted(locked))}"
        )
        checked += 1
    assert checked > 100


def test_the_dockerfile_passes_hadolint(tmp_path: Path) -> None:
    result = subprocess.run([str(HADOLINT), str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install pandas\n")
    refused = subprocess.run([str(HADOLINT), str(bad)], capture_output=True, text=True)
    assert refused.returncode != 0 and "DL3007" in refused.stdout
