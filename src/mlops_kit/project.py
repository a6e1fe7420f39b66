"""Finds the project's own pieces through references: the use case, its entry points, the pipeline.

The kit never imports the use case by name: `mlops:use_case` names its `UseCase` (`mlops_kit.usecase`),
whose entry points and feature groups are references too, and `mlops:training.pipeline` names the
pipeline factory; all are resolved here against the project root, and checked once: a use case that is
malformed, or gates naming metrics it does not report, fail here, before any job runs.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

from mlops_kit import usecase
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


def use_case(settings: Settings) -> usecase.UseCase:
    """The environment's use case (`mlops:use_case`), checked, with the settings' gates checked against it."""
    key = "mlops:use_case"
    try:
        case = usecase.validate(resolve(settings.use_case, settings, key), settings.use_case)
    except usecase.UseCaseError as exc:
        raise SettingsError(settings.file, key, str(exc)) from None
    for name in settings.promotion.gates:
        if name not in case.metric_names:
            raise SettingsError(
                settings.file,
                f"mlops:promotion.gates.{name}",
                f"{case.name} reports no metric {name!r}; it reports {', '.join(case.metric_names)}",
            )
    return case


def entry_point(settings: Settings, name: str) -> Any:
    """A use case's `module:function` entry point (`evaluate`, `request_builder`, `sample_data`), imported."""
    case = use_case(settings)
    reference = getattr(case.entry_points, name)
    return resolve(reference, settings, f"{settings.use_case}.entry_points.{name}")


def feature_groups(settings: Settings) -> tuple[FeatureGroup, ...]:
    """The use case's feature groups (`UseCase.feature_groups`); none when it declares none."""
    case = use_case(settings)
    if not case.feature_groups:
        return ()
    where = f"{settings.use_case}.feature_groups"
    groups = resolve(case.feature_groups, settings, where)
    groups = tuple(groups() if callable(groups) else groups)
    for group in groups:
        if not isinstance(group, FeatureGroup):
            raise SettingsError(settings.file, where, f"{group!r} is not a mlops_kit FeatureGroup")
    return groups
