"""`mlops init DIR --task T`: a new project on the kit, with its own use case, that runs the whole local
lifecycle and passes its own tests out of the box.

The project depends on the kit as a library (`pyproject.toml`), so a team upgrades the kit by changing a
version. What it gets (`template/`): a use case package declaring its `UseCase` for the task (binary,
multiclass or regression), sample data with a drift scenario, the pipeline's steps and definition, the
inference handler, its environments with gates on the task's metrics, the Pulumi entry program, a
Dockerfile for its runtime image, a Makefile and tests. Files are rendered from `*.tmpl` by replacing
`{{key}}` placeholders; nothing is written if the folder holds anything already, and the files are
written to a temporary folder first and moved in at the end, so a failure leaves nothing half-made.
"""

from __future__ import annotations

import keyword
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mlops_kit.usecase import Task

TEMPLATE = Path(__file__).with_name("template")
PACKAGE_PLACEHOLDER = "__package__"
# Files whose names cannot be written as they are in the kit's source tree.
RENAMED = {"python-version": ".python-version", "dockerignore": ".dockerignore", "gitignore": ".gitignore"}
GATES = {
    Task.BINARY: {"roc_auc": "{min: 0.70}"},
    Task.MULTICLASS: {"accuracy": "{min: 0.50}"},
    Task.REGRESSION: {"r2": "{min: 0.20}"},
}


class InitError(ValueError):
    """The project cannot be made: says why and what to change."""


@dataclass(frozen=True)
class Options:
    task: Task
    name: str
    package: str
    owner: str = "ml-team"
    repository: str = ""
    kit_requirement: str = "mlops-kit"
    kit_path: str = ""  # a local checkout of the kit, for a path dependency
    local_stage: str = "staging"


def options(folder: Path, task: str, *, name: str = "", package: str = "", **rest: str) -> Options:
    """Checked options: a task the kit knows, a project name and a Python package name."""
    try:
        kind = Task(task)
    except ValueError:
        raise InitError(f"unknown task {task!r}; expected one of {', '.join(Task)}") from None
    name = name or folder.resolve().name.lower().replace("_", "-")
    if not re.fullmatch(r"[a-z][a-z0-9-]{0,30}", name):
        raise InitError(f"project name {name!r}: lower case letters, digits and dashes, at most 31 (--name)")
    package = package or name.replace("-", "_")
    if not package.isidentifier() or keyword.iskeyword(package) or package in ("mlops_kit", "tests", "infra"):
        raise InitError(f"package name {package!r} is not a usable Python package name (--package)")
    return Options(task=kind, name=name, package=package, **rest)


def render(text: str, values: dict[str, str]) -> str:
    out = text
    for key, value in values.items():
        out = out.replace("{{" + key + "}}", value)
    left = re.findall(r"\{\{(\w+)\}\}", out)
    if left:
        raise InitError(f"the template has placeholders with no value: {', '.join(sorted(set(left)))}")
    return out


def create(folder: Path, opts: Options) -> list[Path]:
    """Write the project into `folder` (new or empty); returns the files written, relative to it."""
    if folder.exists() and any(folder.iterdir()):
        raise InitError(f"{folder} is not empty; mlops init writes only into a new or empty folder")
    gates = "\n".join(f"      {metric}: {bounds}" for metric, bounds in GATES[opts.task].items())
    source = (
        f'\n[tool.uv.sources]\nmlops-kit = {{ path = "{opts.kit_path}", editable = true }}\n'
        if opts.kit_path
        else ""
    )
    values = {
        "name": opts.name,
        "package": opts.package,
        "task": str(opts.task),
        "owner": opts.owner,
        "repository": opts.repository or f"example-org/{opts.name}",
        "kit_requirement": opts.kit_requirement,
        "kit_source": source,
        "gates": gates,
        "local_stage": opts.local_stage,
    }
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="mlops-init-") as tmp:
        staging = Path(tmp) / "project"
        for template in sorted(TEMPLATE.rglob("*.tmpl")):
            relative = template.relative_to(TEMPLATE).with_suffix("")
            parts = [opts.package if p == PACKAGE_PLACEHOLDER else RENAMED.get(p, p) for p in relative.parts]
            target = staging.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(render(template.read_text(), values))
            written.append(target.relative_to(staging))
        folder.mkdir(parents=True, exist_ok=True)
        for item in staging.iterdir():
            shutil.move(str(item), folder / item.name)
    return sorted(written)
