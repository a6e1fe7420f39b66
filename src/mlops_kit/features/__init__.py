"""The feature store: definitions in code, an offline store in SageMaker's layout, an online store, and
point-in-time training sets.

A project declares its groups with these types (see `pipelines/features.py`) and names them in the
settings (`mlops:features.definitions`); the kit finds them through `mlops_kit.project`. The same
definitions give infra its `FeatureGroup` resources, the pipeline its records and serving its lookups.

Only the types are imported eagerly: infra and settings code needs them without loading DuckDB.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops_kit.features.types import Feature, FeatureGroup, FeatureType

if TYPE_CHECKING:
    from mlops_kit.features.pit import point_in_time
    from mlops_kit.features.store import FeatureStore, IngestReport, connect, ingest, lookup, training_set
    from mlops_kit.features.validation import BatchRejected, validate

_LAZY = {
    "FeatureStore": "store",
    "IngestReport": "store",
    "connect": "store",
    "ingest": "store",
    "lookup": "store",
    "training_set": "store",
    "point_in_time": "pit",
    "BatchRejected": "validation",
    "validate": "validation",
}

__all__ = [
    "BatchRejected",
    "Feature",
    "FeatureGroup",
    "FeatureStore",
    "FeatureType",
    "IngestReport",
    "connect",
    "ingest",
    "lookup",
    "point_in_time",
    "training_set",
    "validate",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"mlops_kit.features.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'mlops_kit.features' has no attribute {name!r}")
