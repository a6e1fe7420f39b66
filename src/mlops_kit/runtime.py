"""The project's runtime image: what goes into it, its content-addressed tag, and its URI.

One image, built from the project's `Dockerfile` and `uv.lock`, runs every processing job, the training
job, the monitoring job and the endpoint. Its tag is a hash of the Dockerfile and of everything the
Dockerfile copies from the build context, so the same sources give the same reference: the pipeline
definition, the endpoint's model and the monitoring job name the image by that tag, and `pulumi preview`
shows no change when nothing changed. The list of what is hashed is read from the Dockerfile's own `COPY`
lines, so the tag cannot miss a file the image holds.

Locally there is no Docker engine: the executor runs the image's entry commands (`mlops_kit.container`)
with the project's `.venv`, synced from the same lock. `IMAGE_WORKDIR` is where the image keeps the
project's sources (its `WORKDIR` and `PYTHONPATH`); locally that is the project root.
"""

from __future__ import annotations

import hashlib
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

DOCKERFILE = "Dockerfile"
IMAGE_WORKDIR = "/app"
PLATFORM = "linux/amd64"  # the CPU of SageMaker's ml.m5 / ml.c5 / ml.t2 instance families
TAG_LENGTH = 32
_SKIPPED_PARTS = {"__pycache__", ".pytest_cache", ".ruff_cache"}


class ImageError(ValueError):
    """The Dockerfile or the image reference is not what the kit can build or run."""


@dataclass(frozen=True)
class Instruction:
    line: int
    keyword: str
    arguments: str


def instructions(text: str) -> list[Instruction]:
    """The Dockerfile's instructions, with continuation lines joined and comments dropped."""
    out: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        joined = " ".join(p for p in pending if p)
        pending = []
        keyword, _, arguments = joined.partition(" ")
        out.append(Instruction(start, keyword.upper(), arguments.strip()))
    return out


def copied_sources(dockerfile: Path) -> list[str]:
    """The build-context paths the Dockerfile's `COPY`/`ADD` lines take (not those `--from` a stage)."""
    sources: list[str] = []
    for item in instructions(dockerfile.read_text()):
        if item.keyword not in ("COPY", "ADD"):
            continue
        words = shlex.split(item.arguments)
        flags = [w for w in words if w.startswith("--")]
        if any(f.startswith("--from") for f in flags):
            continue
        paths = [w for w in words if not w.startswith("--")]
        if len(paths) < 2:
            raise ImageError(f"{dockerfile}:{item.line}: {item.keyword} needs a source and a destination")
        for source in paths[:-1]:
            if any(ch in source for ch in "*?[$"):
                raise ImageError(
                    f"{dockerfile}:{item.line}: COPY {source}: name files and folders, not patterns or "
                    "variables, so the image tag can hash exactly what the image holds"
                )
            sources.append(source.rstrip("/") or ".")
    return sources


def image_files(root: Path) -> list[Path]:
    """Every file that goes into the image: the Dockerfile and what its COPY lines take, sorted."""
    dockerfile = root / DOCKERFILE
    if not dockerfile.is_file():
        raise ImageError(f"{dockerfile}: no Dockerfile; the project's runtime image is built from it")
    files = {dockerfile}
    for source in copied_sources(dockerfile):
        path = root / source
        if path.is_file():
            files.add(path)
        elif path.is_dir():
            files.update(
                p
                for p in path.rglob("*")
                if p.is_file() and not _SKIPPED_PARTS.intersection(p.parts) and p.suffix != ".pyc"
            )
        else:
            hint = "; lock the project first (uv lock, or make setup)" if source == "uv.lock" else ""
            raise ImageError(f"{dockerfile}: COPY {source}: no such file or folder in {root}{hint}")
    return sorted(files)


def image_tag(root: Path) -> str:
    """A hash of the image's inputs (paths and contents): the same sources give the same tag."""
    digest = hashlib.sha256()
    for path in image_files(root):
        relative = path.relative_to(root).as_posix().encode()
        digest.update(hashlib.sha256(relative).digest())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:TAG_LENGTH]


def registry(account_id: str, region: str) -> str:
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{account_id}.dkr.ecr.{region}.{suffix}"


def image_uri(account_id: str, region: str, repository: str, tag: str) -> str:
    """`<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>`: what ECR names the pushed image."""
    return f"{registry(account_id, region)}/{repository}:{tag}"


_URI = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/(?P<repo>[^:@]+):(?P<tag>[\w.-]+)$"
)


def parse_image_uri(uri: str) -> dict[str, str]:
    """The account, region, repository and tag of an ECR image URI; ImageError for anything else."""
    match = _URI.match(uri)
    if match is None:
        raise ImageError(
            f"{uri!r} is not an ECR image reference (<account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>)"
        )
    return match.groupdict()


# --- parity: the image, the lock and the code agree ----------------------------------------------------


def _python_minor(text: str) -> tuple[int, int] | None:
    match = re.match(r"^\s*(\d+)\.(\d+)", text)
    return (int(match.group(1)), int(match.group(2))) if match else None


def dockerfile_python(dockerfile: Path) -> tuple[int, int] | None:
    """The Python minor version the Dockerfile builds on: its `ARG PYTHON_VERSION` or its base image tag."""
    for item in instructions(dockerfile.read_text()):
        if item.keyword == "ARG" and item.arguments.startswith("PYTHON_VERSION="):
            return _python_minor(item.arguments.split("=", 1)[1])
        if item.keyword == "FROM":
            match = re.search(r"python:(\d+\.\d+)", item.arguments)
            if match:
                return _python_minor(match.group(1))
    return None


def _requirement_key(requirement: str) -> tuple[str, str, str]:
    """(name, extras, specifier) of a PEP 508 requirement, normalised as uv writes it in the lock."""
    match = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*([^;]*)", requirement)
    if match is None:
        raise ImageError(f"pyproject.toml: cannot read the requirement {requirement!r}")
    name = re.sub(r"[-_.]+", "-", match.group(1)).lower()
    extras = ",".join(sorted(e.strip() for e in (match.group(2) or "[]")[1:-1].split(",") if e.strip()))
    specifier = ",".join(sorted(s.strip() for s in match.group(3).split(",") if s.strip()))
    return name, extras, specifier


def _locked_key(entry: dict) -> tuple[str, str, str]:
    extras = ",".join(sorted(entry.get("extras", [])))
    specifier = ",".join(sorted(s.strip() for s in entry.get("specifier", "").split(",") if s.strip()))
    return entry["name"], extras, specifier


def check(root: Path) -> list[str]:
    """Every way the image, the lock, `pyproject.toml`, `.python-version` and the code disagree: one line
    each, empty when they agree. `make test` runs it."""
    import ast
    import tomllib

    problems: list[str] = []
    dockerfile = root / DOCKERFILE
    try:
        text = dockerfile.read_text()
        files = image_files(root)
    except (OSError, ImageError) as exc:
        return [str(exc)]
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    lock = tomllib.loads((root / "uv.lock").read_text())
    version_file = root / ".python-version"
    wanted = _python_minor(version_file.read_text()) if version_file.is_file() else None
    if wanted is None:
        problems.append(
            f"{version_file}: missing or not a Python version; it names the project's Python (3.11)"
        )
    built = dockerfile_python(dockerfile)
    if wanted and built != wanted:
        shown = "no Python version" if built is None else "Python {}.{}".format(*built)
        problems.append(
            f"{dockerfile}: builds on {shown}, but .python-version says {wanted[0]}.{wanted[1]}: "
            "the image must run the Python the lock was tested with"
        )
    floor = _python_minor(re.sub(r"^[^0-9]*", "", lock.get("requires-python", "")))
    if wanted and floor and wanted < floor:
        problems.append(
            f"uv.lock: requires-python {lock['requires-python']} excludes .python-version {wanted}"
        )
    runs = [i.arguments for i in instructions(text) if i.keyword == "RUN"]
    syncs = [r for r in runs if "uv sync" in r]
    if not syncs or not all("--frozen" in r or "--locked" in r for r in syncs):
        problems.append(
            f"{dockerfile}: install with `uv sync --frozen` (exactly uv.lock), not a fresh resolution"
        )
    if any(re.search(r"\bpip3? install\b(?!.*\buv==)", r) for r in runs):
        problems.append(f"{dockerfile}: a `pip install` besides uv's pinned one installs outside the lock")
    declared = sorted(_requirement_key(r) for r in pyproject["project"].get("dependencies", []))
    project = next(
        (
            p
            for p in lock.get("package", [])
            if "." in (p.get("source", {}).get(k) for k in ("editable", "virtual"))
        ),
        None,
    )
    locked = sorted(_locked_key(e) for e in (project or {}).get("metadata", {}).get("requires-dist", []))
    if project is None or declared != locked:
        changed = sorted({d[0] for d in set(declared) ^ set(locked)})
        problems.append(
            f"uv.lock is out of date with pyproject.toml ({', '.join(changed) or 'the project'}); run `uv lock`"
        )
    feature = wanted or (3, 11)
    for path in files:
        if path.suffix != ".py":
            continue
        try:
            ast.parse(path.read_bytes(), filename=str(path), feature_version=feature)
        except SyntaxError as exc:
            problems.append(
                f"{path.relative_to(root)}:{exc.lineno}: not valid Python {feature[0]}.{feature[1]} "
                f"(the image's): {exc.msg}"
            )
    return problems
