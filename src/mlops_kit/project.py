"""Finds the project's own pieces (feature groups, pipeline factory) through references in settings.

The kit never imports the use case by name: `mlops:features.definitions` and `mlops:training.pipeline`
hold references such as `pipelines.definition:get_pipeline`, resolved here against the project root.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

from mlops_kit.features import FeatureGroup
from mlops_kit.settings import Settings, SettingsError, project_root


def resolve(ref: str, settings: Settings, key: str) -> Any:
    """Import `module:attribute`, with the project root importable; errors name the settings key."""
    module_name, _, attribute = ref.partition(":")
    root = str(settings.file.parent.parent) if settings.file else str(project_root())
    if root not in sys.path:
        sys.path.insert(0, root)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SettingsError(settings.file, key, f"cannot import {module_name!r}: {exc}") from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise SettingsError(settings.file, key, f"{module_name!r} has no {attribute!r}") from None


def feature_groups(settings: Settings) -> tuple[FeatureGroup, ...]:
    """The project's feature groups, as `mlops:features.definitions` names them."""
    groups = resolve(settings.features.definitions, settings, "mlops:features.definitions")
    groups = tuple(groups() if callable(groups) else groups)
    for group in groups:
        if not isinstance(group, FeatureGroup):
            raise SettingsError(
                settings.file, "mlops:features.definitions", f"{group!r} is not a mlops_kit FeatureGroup"
            )
    return groups
