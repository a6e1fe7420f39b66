"""File helpers the steps share: read a folder of CSV / Parquet / JSON-lines files, write atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

READERS = {
    ".csv": pd.read_csv,
    ".parquet": pd.read_parquet,
    ".jsonl": lambda p: pd.read_json(p, lines=True),
    ".json": lambda p: pd.read_json(p, lines=True),
}


def read_table(folder: Path | str) -> pd.DataFrame:
    """Every CSV, Parquet or JSON-lines file under `folder` (or the one file it names), concatenated."""
    root = Path(folder)
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    files = [p for p in files if p.suffix.lower() in READERS]
    if not files:
        raise FileNotFoundError(f"no .csv, .parquet or .jsonl file under {root}")
    frames = [READERS[p.suffix.lower()](p) for p in files]
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


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
