"""Where the kit keeps local state: the recorded emulator and endpoint, pipeline runs and their logs."""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    """$MLOPS_STATE_DIR, else ~/.mlops-kit."""
    return Path(os.environ.get("MLOPS_STATE_DIR") or Path.home() / ".mlops-kit")


def runs_dir() -> Path:
    return state_dir() / "runs"
