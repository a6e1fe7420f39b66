"""Typed feature group definitions, in SageMaker Feature Store's terms."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class FeatureType(StrEnum):
    """SageMaker Feature Store's feature types."""

    INTEGRAL = "Integral"
    FRACTIONAL = "Fractional"
    STRING = "String"

    @property
    def pandas_dtype(self) -> str:
        return {"Integral": "Int64", "Fractional": "float64", "String": "string"}[self.value]


_NAME = re.compile(r"^[a-zA-Z0-9]([-_]*[a-zA-Z0-9]){0,63}$")  # SageMaker's FeatureName / FeatureGroupName


@dataclass(frozen=True)
class Feature:
    name: str
    type: FeatureType
    description: str = ""

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"feature name {self.name!r} is not a valid SageMaker feature name")


@dataclass(frozen=True)
class FeatureGroup:
    """One feature group: an entity key, an event time, and typed features.

    `name` is the logical name; each environment's resource is `<project>-<env>-<name>`.
    """

    name: str
    record_identifier: Feature
    event_time: Feature
    features: tuple[Feature, ...]
    description: str = ""

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"feature group name {self.name!r} is not a valid SageMaker name")
        if self.event_time.type not in (FeatureType.STRING, FeatureType.FRACTIONAL):
            raise ValueError(f"{self.name}: event time must be String (ISO-8601) or Fractional (epoch)")
        names = [f.name for f in self.all_features]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"{self.name}: feature names repeat: {', '.join(duplicates)}")

    @property
    def all_features(self) -> tuple[Feature, ...]:
        """Every column of a record: the key, the event time, then the features."""
        return (self.record_identifier, self.event_time, *self.features)

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]
