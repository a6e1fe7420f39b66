"""Write an approved model package where an environment reads it: its settings file, or its local state.

A promotion to a cloud environment is a reviewed change: the diff of `environments/Pulumi.<env>.yaml` is
the `model_package_arn:` line inside `mlops:serving:`, which `pulumi preview` shows as an endpoint update.
So the file is edited line by line (a YAML round trip would drop comments and reorder keys), the result is
parsed again before it replaces the original (written to a temporary file, then renamed), and anything
unexpected is an error naming the file.

An embedded environment's package exists only in the emulator, so it is no change to review or commit:
`write_promoted` keeps it in the project's state (`settings.overlay_file`, read back by `settings.load`)
and leaves the tracked file as it is. Which of the two an environment gets is its runtime kind's choice.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import yaml

from mlops_kit import settings as settings_mod
from mlops_kit.settings import Settings, SettingsError

BLOCK = "mlops:serving"
KEY = "model_package_arn"

_INDENT = re.compile(r"^( *)")


def _indent(line: str) -> int:
    return len(_INDENT.match(line).group(1))


def _meaningful(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def rewrite_text(text: str, package_arn: str, where: Path | str = "settings") -> str:
    """`text` with `mlops:serving.model_package_arn` set to `package_arn`; every other line untouched."""
    if not re.fullmatch(r"[\w:/.+=,@-]*", package_arn):
        raise ValueError(f"{package_arn!r} is not a model package ARN")
    lines = text.splitlines(keepends=True)
    block = next(
        (
            i
            for i, line in enumerate(lines)
            if re.match(rf"^ *{re.escape(BLOCK)}: *(#.*)?$", line.rstrip("\r\n"))
        ),
        None,
    )
    if block is None:
        raise SettingsError(where, BLOCK, f"no `{BLOCK}:` block to write the approved package into")
    parent = _indent(lines[block])
    end = len(lines)
    child_indent = None
    for i in range(block + 1, len(lines)):
        if not _meaningful(lines[i]):
            continue
        if _indent(lines[i]) <= parent:
            end = i
            break
        if child_indent is None:
            child_indent = _indent(lines[i])
    if child_indent is None:
        raise SettingsError(where, BLOCK, "the block is empty or not a mapping written in block style")
    value = f'"{package_arn}"'
    pattern = re.compile(rf"^( {{{child_indent}}}){KEY}:( *)([^#\n]*?)( *#.*)?(\r?\n)?$")
    for i in range(block + 1, end):
        found = pattern.match(lines[i])
        if found:
            indent, space, _, comment, newline = found.groups()
            lines[i] = f"{indent}{KEY}:{space or ' '}{value}{comment or ''}{newline or ''}"
            return "".join(lines)
    newline = "\r\n" if lines[block].endswith("\r\n") else "\n"
    lines.insert(block + 1, f"{' ' * child_indent}{KEY}: {value}{newline}")  # absent: first in its block
    return "".join(lines)


def write_promoted(target: Settings, package_arn: str) -> Path | None:
    """Set the package `target` serves: in its local overlay when embedded, else in its settings file.
    Returns the file written, or None when it already named the package."""
    if not target.embedded:
        return target.file if write_package(target.file, package_arn) else None
    overlay = settings_mod.overlay_file(target.env, target.file.parent.parent)
    if overlay.is_file() and settings_mod.read_overlay(overlay) == package_arn:
        return None
    block, key = settings_mod.OVERLAY_KEY
    text = (
        f"# {target.env}'s promoted package: local state written by `mlops promote` / `mlops rollback`,\n"
        f"# read over {settings_mod.ENVIRONMENTS_DIR}/{target.file.name} by mlops_kit.settings.load.\n"
        f'config:\n  {block}:\n    {key}: ""\n'
    )
    overlay.parent.mkdir(parents=True, exist_ok=True)
    _replace(overlay, rewrite_text(text, package_arn, overlay), mode=0o600)
    return overlay


def write_package(path: Path, package_arn: str) -> bool:
    """Set the package in `path` (atomic). False when the file already names it, and nothing is written."""
    with path.open(newline="") as handle:  # keep the file's own line endings
        original = handle.read()
    updated = rewrite_text(original, package_arn, path)
    if updated == original:
        return False
    try:
        written = (yaml.safe_load(updated) or {}).get("config", {}).get(BLOCK, {}).get(KEY)
    except yaml.YAMLError as exc:  # never replace a valid file with a broken one
        raise SettingsError(path, f"{BLOCK}.{KEY}", f"the rewritten file would not parse: {exc}") from None
    if written != package_arn:
        raise SettingsError(path, f"{BLOCK}.{KEY}", f"the rewritten file reads {written!r}, not the package")
    _replace(path, updated, mode=path.stat().st_mode & 0o777)
    return True


def _replace(path: Path, text: str, mode: int) -> None:
    """`path` holds `text`, or is untouched: written beside it, then renamed over it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
