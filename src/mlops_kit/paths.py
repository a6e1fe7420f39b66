"""Where the kit keeps local state: the recorded emulator and endpoint, pipeline runs and their logs.

By default, per project: `<project>/.mlops/` (ignored by git), so two checkouts on one machine never see
each other's runs or stop each other's emulator; outside a project, `~/.mlops-kit`. `MLOPS_STATE_DIR`
overrides both. The folder is made private (0700) when first used: runs hold logs and endpoints hold
models that are nobody else's business on a shared machine.

It also holds what a local (embedded) environment's promotions set: `settings/Pulumi.<env>.yaml`, an
overlay of the tracked settings file that `settings.load` reads (`mlops_kit.settings.overlay_file`).
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_STATE = ".mlops"


def state_dir() -> Path:
    """$MLOPS_STATE_DIR, else the project's `.mlops/`, else ~/.mlops-kit; created private."""
    folder = state_location()
    _private(folder)
    return folder


def state_location(root: Path | None = None) -> Path:
    """Where `state_dir` is, without creating it. With `root`, the state of the project in that folder:
    $MLOPS_STATE_DIR stands for the project the kit runs in, so another folder (a scratch copy of the
    project, as the demo makes) keeps its own `<root>/.mlops/` and never writes into the real one's."""
    from mlops_kit.settings import SettingsError, project_root

    chosen = os.environ.get("MLOPS_STATE_DIR")
    if chosen and root is None:
        return Path(chosen)
    try:
        current = project_root()
    except SettingsError:
        current = None
    if root is not None and (current is None or Path(root).resolve() != current):
        return Path(root) / PROJECT_STATE
    if chosen:
        return Path(chosen)
    return current / PROJECT_STATE if current is not None else Path.home() / ".mlops-kit"


def runs_dir() -> Path:
    return state_dir() / "runs"


def _private(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        if folder.stat().st_mode & 0o077:
            folder.chmod(0o700)
    except OSError:
        pass  # a read-only or foreign folder: the command that writes there will say so
