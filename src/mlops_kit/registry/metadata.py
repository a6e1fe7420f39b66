"""The model package metadata the kit writes and reads: one home for its keys.

A package's `CustomerMetadataProperties` carry, as strings:
- `metric:<name>`: each metric the use case declares, from `evaluation.json`'s `metrics` (the gates read them);
- `lineage:<what>`: where the model came from: `pipeline`, `execution`, `input` (the raw data URI),
  `code` (the runtime image's source hash), `environment`, `test` (its test set, which champion and
  challenger are measured on), `label`; a package promoted into a stage by copy keeps its source's
  lineage and adds `source` (the source package's ARN, by which a retried promotion finds its copy),
  `source_environment` and `source_account`;
- `mlops:stage`: the stage the package was last promoted to (written by promotion).
The pipeline's Register step, the promotion gates and the tests' package writer all use these names.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

METRIC = "metric:"
LINEAGE = "lineage:"
STAGE = "mlops:stage"
SOURCE = "source"  # lineage:source, the package a promoted copy was made from


def metric_key(name: str) -> str:
    return f"{METRIC}{name}"


def lineage_key(name: str) -> str:
    return f"{LINEAGE}{name}"


def metrics(properties: Mapping[str, Any]) -> dict[str, float]:
    """The recorded metrics; an unreadable value becomes NaN, which fails any gate on it (named)."""
    out = {}
    for key, value in properties.items():
        if key.startswith(METRIC):
            try:
                out[key.removeprefix(METRIC)] = float(value)
            except (TypeError, ValueError):
                out[key.removeprefix(METRIC)] = math.nan
    return out


def lineage(properties: Mapping[str, Any]) -> dict[str, str]:
    return {k.removeprefix(LINEAGE): v for k, v in properties.items() if k.startswith(LINEAGE)}
