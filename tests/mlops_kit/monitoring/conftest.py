"""Fixtures for the monitor's tests: a baseline from the synthetic generator, and capture folders."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from monitor_helpers import FEATURES, PREDICTION, transactions, write_capture

from mlops_kit.monitoring import files, stats


@pytest.fixture(scope="session")
def training() -> pd.DataFrame:
    return transactions(20_000, seed=11)


@pytest.fixture(scope="session")
def baseline_docs(training: pd.DataFrame) -> tuple[dict, dict]:
    return stats.baseline(training, features=FEATURES, prediction_column=PREDICTION, psi_threshold=0.2)


@pytest.fixture
def baseline_dir(tmp_path: Path, baseline_docs: tuple[dict, dict]) -> Path:
    folder = tmp_path / "baseline"
    files.write_baseline(folder, *baseline_docs)
    return folder


@pytest.fixture
def capture_writer(tmp_path: Path) -> Callable[..., Path]:
    def write(name: str, frame: pd.DataFrame, **kwargs) -> Path:
        folder = tmp_path / name
        write_capture(
            folder / "endpoint" / "AllTraffic" / "2026" / "03" / "01" / "10" / "part.jsonl", frame, **kwargs
        )
        return folder

    return write
