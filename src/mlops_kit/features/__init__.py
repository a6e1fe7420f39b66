"""Feature definitions in code: the single source for infra's FeatureGroups, the pipeline and serving.

A project declares its groups with these types (see `pipelines/features.py`) and names them in the
settings (`mlops:features.definitions`); the kit finds them through `mlops_kit.project`.
"""

from mlops_kit.features.types import Feature, FeatureGroup, FeatureType

__all__ = ["Feature", "FeatureGroup", "FeatureType"]
