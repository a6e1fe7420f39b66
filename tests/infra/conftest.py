"""Fixtures for the infra tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from infra_fixtures import make_root, serving_files


@pytest.fixture(scope="session")
def serving_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project root whose extra environments serve an approved model package."""
    return make_root(tmp_path_factory.mktemp("serving-root"), serving_files())
