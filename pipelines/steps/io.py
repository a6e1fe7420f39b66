"""File helpers the steps share: read a folder of CSV / Parquet / JSON-lines files, write atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from mlops_kit import validation


def read_table(folder: Path | str) -> pd.DataFrame:
    """Every CSV, Parquet or JSON-lines file under `folder` (the kit's reader: undecodable bytes kept for
    validation to quarantine, a file that cannot be read named)."""
    return validation.read_table(folder)


def write_parquet(frame: pd.DataFrame, path: Path | str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)
    return path


def write_json(document: Any, path: Path | str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(document, indent=2, sort_keys=True, default=float) + "\n")
    os.replace(tmp, path)
    return path
