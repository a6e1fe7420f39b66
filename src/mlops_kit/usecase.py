"""The one contract between the kit and a use case: what it predicts, from what, and how it is judged.

A use case (this repository's `pipelines/`, or one made by `mlops init`) exports a `UseCase` and the
settings name it (`mlops:use_case: pipelines:USE_CASE`). Every place in the kit that needs a fact of the
use case reads it from here, through `load(settings)`: the task type, the label and its type, the entity
and event-time columns, the metrics it reports with their direction and the one that decides champion
against challenger, its entry points, and its feature groups. The kit never names a use case's module.

Entry points are references the kit resolves lazily, never at import:
- `prepare`, `train`: modules the pipeline runs in the project's image (`python3 -m MODULE`);
- `evaluate`: `module:function`, `evaluate(model_dir: str, frame: DataFrame) -> dict[str, float]`, the
  metrics of a model directory on labelled rows; the Evaluate step and the champion/challenger re-scoring
  both call it, so the two can never measure differently;
- `inference`: the `code/inference.py` every model directory carries (a path under the project root);
- `request_builder`: `module:function`, endpoint request rows for raw events;
- `sample_data`: `module:function`, `sample(rows, seed, drift_from=None) -> DataFrame` of raw events
  with labels (the demo, `mlops pipeline run` on a fresh clone, and the tests use it).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

_REF = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_MODULE = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_]\w*)*$")
_COLUMN = re.compile(r"^[A-Za-z_][\w.-]*$")


class Task(StrEnum):
    BINARY = "binary"
    MULTICLASS = "multiclass"
    REGRESSION = "regression"


class Direction(StrEnum):
    HIGHER = "higher"  # higher is better (ROC AUC, accuracy, R²)
    LOWER = "lower"  # lower is better (RMSE, a segment gap)


class LabelType(StrEnum):
    INT = "int"
    FLOAT = "float"
    STRING = "string"


class UseCaseError(ValueError):
    """The use case's declaration is wrong: names the field and what is expected."""

    def __init__(self, where: str, field_name: str, problem: str):
        self.where = where
        self.field = field_name
        super().__init__(f"{where}: {field_name}: {problem}")


@dataclass(frozen=True)
class Metric:
    """One metric the use case's evaluation reports (`evaluation.json`'s `metrics.<name>`)."""

    name: str
    direction: Direction
    description: str = ""

    def gain(self, candidate: float, champion: float) -> float:
        """How much better `candidate` is than `champion`, positive when better, in this metric's units."""
        return candidate - champion if self.direction == Direction.HIGHER else champion - candidate


@dataclass(frozen=True)
class EntryPoints:
    prepare: str
    train: str
    evaluate: str
    inference: str
    request_builder: str
    sample_data: str


@dataclass(frozen=True)
class UseCase:
    """A use case, as the kit sees it."""

    name: str
    task: Task
    label: str
    label_type: LabelType
    entity: str
    event_time: str
    metrics: tuple[Metric, ...]
    deciding_metric: str
    entry_points: EntryPoints
    feature_groups: str = ""  # "module:ATTRIBUTE" of its FeatureGroups; empty: none
    classes: tuple[str | int, ...] = field(default=())  # classification: the classes, in the model's order

    def metric(self, name: str) -> Metric:
        for metric in self.metrics:
            if metric.name == name:
                return metric
        raise KeyError(f"{self.name} reports no metric {name!r}; it reports {', '.join(self.metric_names)}")

    @property
    def metric_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.metrics)

    @property
    def decider(self) -> Metric:
        return self.metric(self.deciding_metric)


def validate(case: Any, where: str) -> UseCase:
    """`case` if it is a well-formed `UseCase`; else `UseCaseError` naming the field."""
    if not isinstance(case, UseCase):
        raise UseCaseError(
            where, "(object)", f"expected a mlops_kit.usecase.UseCase, got {type(case).__name__}"
        )
    if not case.name or not re.fullmatch(r"[a-z][a-z0-9-]*", case.name):
        raise UseCaseError(where, "name", f"{case.name!r}: lower case letters, digits and dashes")
    _choice(case.task, Task, where, "task")
    _choice(case.label_type, LabelType, where, "label_type")
    for name in ("label", "entity", "event_time"):
        value = getattr(case, name)
        if not isinstance(value, str) or not _COLUMN.match(value):
            raise UseCaseError(where, name, f"{value!r} is not a column name")
    if case.label in (case.entity, case.event_time):
        raise UseCaseError(where, "label", f"{case.label!r} is also the entity or event-time column")
    if case.task == Task.REGRESSION and case.label_type == LabelType.STRING:
        raise UseCaseError(
            where, "label_type", "a regression's label is a number (int or float), not a string"
        )
    if not case.metrics:
        raise UseCaseError(where, "metrics", "declare at least the deciding metric")
    seen: set[str] = set()
    for index, metric in enumerate(case.metrics):
        if not isinstance(metric, Metric):
            raise UseCaseError(where, f"metrics[{index}]", f"expected a Metric, got {type(metric).__name__}")
        if not _COLUMN.match(metric.name):
            raise UseCaseError(where, f"metrics[{index}].name", f"{metric.name!r} is not a metric name")
        if metric.name in seen:
            raise UseCaseError(where, f"metrics[{index}].name", f"{metric.name!r} is declared twice")
        seen.add(metric.name)
        if metric.direction not in tuple(Direction):
            raise UseCaseError(
                where,
                f"metrics[{index}].direction",
                f"{metric.name}: {metric.direction!r}; expected one of {', '.join(Direction)}",
            )
    if case.deciding_metric not in seen:
        raise UseCaseError(
            where,
            "deciding_metric",
            f"{case.deciding_metric!r} is not a declared metric ({', '.join(sorted(seen))})",
        )
    points = case.entry_points
    if not isinstance(points, EntryPoints):
        raise UseCaseError(where, "entry_points", f"expected EntryPoints, got {type(points).__name__}")
    for name in ("prepare", "train"):
        if not _MODULE.match(getattr(points, name)):
            raise UseCaseError(
                where, f"entry_points.{name}", f"{getattr(points, name)!r} is not a module name"
            )
    for name in ("evaluate", "request_builder", "sample_data"):
        if not _REF.match(getattr(points, name)):
            raise UseCaseError(
                where,
                f"entry_points.{name}",
                f"{getattr(points, name)!r} is not a package.module:function reference",
            )
    if not points.inference.endswith(".py"):
        raise UseCaseError(
            where, "entry_points.inference", f"{points.inference!r}: a .py file under the project"
        )
    if case.feature_groups and not _REF.match(case.feature_groups):
        raise UseCaseError(
            where, "feature_groups", f"{case.feature_groups!r} is not a package.module:ATTRIBUTE reference"
        )
    if case.task == Task.BINARY and case.classes and len(case.classes) != 2:
        raise UseCaseError(where, "classes", f"a binary task has two classes, got {list(case.classes)}")
    return case


def _choice(value: Any, kind: type[StrEnum], where: str, name: str) -> None:
    if value not in tuple(kind):
        raise UseCaseError(where, name, f"{value!r}; expected one of {', '.join(kind)}")


def check_metrics(case: UseCase, reported: Mapping[str, Any], source: str) -> dict[str, float]:
    """The declared metrics out of an evaluation's `metrics`; a declared metric it lacks is an error."""
    missing = [m for m in case.metric_names if m not in reported]
    if missing:
        raise UseCaseError(
            source,
            "metrics",
            f"{case.name} declares {', '.join(missing)} but the evaluation reports none of it",
        )
    out = {}
    for name in case.metric_names:
        try:
            out[name] = float(reported[name])
        except (TypeError, ValueError):
            out[name] = math.nan
    return out


def check_frame(case: UseCase, frame: Any, source: str) -> None:
    """Raw events of the use case must carry its label, entity and event-time columns."""
    absent = [c for c in (case.label, case.entity, case.event_time) if c not in frame.columns]
    if absent:
        raise UseCaseError(
            source,
            "columns",
            f"{len(frame):,} rows without {', '.join(absent)} ({case.name} declares label {case.label}, "
            f"entity {case.entity}, event time {case.event_time})",
        )
