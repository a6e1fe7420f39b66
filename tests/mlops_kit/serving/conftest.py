"""Fixtures of the serving tests; the helpers they use live in `serving_helpers`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from serving_helpers import RunningServer, start_server, write_model_dir


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_model_dir(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def server(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(model_dir, tmp_path_factory.mktemp("server"))
    yield running
    running.stop()
