"""The monitor's files: atomic JSON writes, and reading a baseline back with errors that name the file.

A baseline folder holds `statistics.json` and `constraints.json` (Model Monitor's names, so a baseline
made here also works as a `baseline_statistics` / `baseline_constraints` pair for native Model Monitor).
A run folder holds `statistics.json`, `constraint_violations.json`, `run.json` (the kit's summary: drift
per feature, faults, retraining) and, when labels arrived, `model_quality.json`.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

STATISTICS = "statistics.json"
CONSTRAINTS = "constraints.json"
VIOLATIONS = "constraint_violations.json"
RUN = "run.json"
QUALITY = "model_quality.json"


def write_json(path: Path, document: Any) -> Path:
    """Write `document` as JSON to `path` atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(_finite(document), indent=2, allow_nan=False)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.write("\n")
        os.chmod(tmp, 0o644)  # mkstemp makes it private; these are reports, readable like any output
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_json(path: Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None


def write_baseline(
    folder: Path, statistics: dict[str, Any], constraints: dict[str, Any]
) -> tuple[Path, Path]:
    folder = Path(folder)
    return write_json(folder / STATISTICS, statistics), write_json(folder / CONSTRAINTS, constraints)


def read_baseline(
    folder: Path | None = None, *, statistics_file: Path | None = None, constraints_file: Path | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(statistics, constraints) from a baseline folder, or from the two files named apart."""
    if folder is not None:
        statistics_file = statistics_file or Path(folder) / STATISTICS
        constraints_file = constraints_file or Path(folder) / CONSTRAINTS
    if statistics_file is None or constraints_file is None:
        raise ValueError("name a baseline folder, or both its statistics and constraints files")
    statistics = read_json(statistics_file)
    constraints = read_json(constraints_file)
    _require(statistics_file, statistics, ("dataset", "features"))
    _require(constraints_file, constraints, ("features",))
    for i, feature in enumerate(statistics["features"]):
        for key in ("name", "inferred_type"):
            if key not in feature:
                raise ValueError(f"{statistics_file}: features[{i}] has no {key!r}")
        if "numerical_statistics" not in feature and "string_statistics" not in feature:
            raise ValueError(f"{statistics_file}: features[{i}] ({feature['name']}) has no statistics block")
    for i, feature in enumerate(constraints["features"]):
        if "name" not in feature or "inferred_type" not in feature:
            raise ValueError(f"{constraints_file}: features[{i}] needs 'name' and 'inferred_type'")
    return statistics, constraints


def _require(path: Path, document: Any, keys: tuple[str, ...]) -> None:
    if not isinstance(document, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(document).__name__}")
    for key in keys:
        if key not in document:
            raise ValueError(f"{path}: no {key!r}; is this a Model Monitor {path.name}?")


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: they become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _finite(value.item())
    return value
