"""Where the kit keeps local state: the recorded emulator and endpoint, pipeline runs and their logs.

By default, per project: `<project>/.mlops/` (ignored by git), so two checkouts on one machine never see
each other's runs or stop each other's emulator; outside a project, `~/.mlops-kit`. `MLOPS_STATE_DIR`
overrides both. The folder is made private (0700) when first used: runs hold logs and endpoints hold
models that are nobody else's business on a shared machine.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_STATE = ".mlops"


def state_dir() -> Path:
    """$MLOPS_STATE_DIR, else the project's `.mlops/`, else ~/.mlops-kit; created private."""
    chosen = os.environ.get("MLOPS_STATE_DIR")
    if chosen:
        folder = Path(chosen)
    else:
        from mlops_kit.settings import SettingsError, project_root

        try:
            folder = project_root() / PROJECT_STATE
        except SettingsError:
            folder = Path.home() / ".mlops-kit"
    _private(folder)
    return folder


def runs_dir() -> Path:
    return state_dir() / "runs"


def _private(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        if folder.stat().st_mode & 0o077:
            folder.chmod(0o700)
    except OSError:
        pass  # a read-only or foreign folder: the command that writes there will say so
