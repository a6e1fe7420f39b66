"""A module imported on first use: what the command line needs to answer `--help` without importing
pandas, boto3 or the SDK (a second's worth of imports) for commands it does not run."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """Stands for `name` until an attribute is read; then it is the module (imported once)."""

    def __init__(self, name: str):
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attribute: str) -> Any:
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attribute)

    def __repr__(self) -> str:
        return f"<lazy module {self._name}{' (loaded)' if self._module is not None else ''}>"


def module(name: str) -> Any:
    return LazyModule(name)
