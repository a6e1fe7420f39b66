"""Typed feature group definitions, in SageMaker Feature Store's terms."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

import pyarrow as pa


class FeatureType(StrEnum):
    """SageMaker Feature Store's feature types."""

    INTEGRAL = "Integral"
    FRACTIONAL = "Fractional"
    STRING = "String"

    @property
    def pandas_dtype(self) -> str:
        return {"Integral": "Int64", "Fractional": "float64", "String": "string"}[self.value]

    @property
    def arrow_type(self) -> pa.DataType:
        """The column type in the offline store's Parquet (bigint, double, string in the Glue table)."""
        return {"Integral": pa.int64(), "Fractional": pa.float64(), "String": pa.string()}[self.value]

    def from_wire(self, value: str) -> int | float | str:
        """A value from the online store's wire form (`ValueAsString`) to Python."""
        if self is FeatureType.INTEGRAL:
            return int(value)
        if self is FeatureType.FRACTIONAL:
            return float(value)
        return value

    def to_wire(self, value: object) -> str:
        """A Python value to the online store's wire form (`ValueAsString`)."""
        if self is FeatureType.INTEGRAL:
            return str(int(value))  # type: ignore[call-overload]
        if self is FeatureType.FRACTIONAL:
            return repr(float(value))  # type: ignore[arg-type]
        return str(value)


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

    @property
    def column_names(self) -> list[str]:
        """A record's columns, in order: the key, the event time, then the features."""
        return [f.name for f in self.all_features]

    def feature(self, name: str) -> Feature:
        for feature in self.all_features:
            if feature.name == name:
                return feature
        raise KeyError(f"{self.name}: no feature {name!r}; it has {', '.join(self.column_names)}")

    def feature_definitions(self) -> list[dict[str, str]]:
        """`FeatureDefinitions` as CreateFeatureGroup (and `aws.sagemaker.FeatureGroup`) take them."""
        return [{"FeatureName": f.name, "FeatureType": f.type.value} for f in self.all_features]

    def arrow_schema(self) -> pa.Schema:
        """The schema of a validated batch: exactly the group's columns, typed."""
        return pa.schema([pa.field(f.name, f.type.arrow_type) for f in self.all_features])
