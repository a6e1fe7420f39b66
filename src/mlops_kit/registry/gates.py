"""Promotion gates: whether a model package may move to a stage, decided by pure functions.

`decide(candidate, champion, gates, ...)` looks at data only (the packages' metadata, the target stage's
gates, an optional re-scoring of both models on the same rows) and returns a `Decision` listing every
check with its value, its threshold and whether it passed. The registry adapter (`promotion.py`) reads
the registry, calls it and carries the decision out; nothing here touches AWS or a file.

Checks, in order:
  model group           the package belongs to the registry's group
  stage order           the package sits in the stage before the target (none before the first)
  min/max <metric>      each bound of `promotion.gates` (equality passes)
  gain over champion    the use case's deciding metric, better than the champion's by at least
                        `promotion.min_gain` in the metric's own direction (lower is better for RMSE)
  approval              someone approved, when `promotion.approval_required`
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlops_kit.registry import metadata
from mlops_kit.settings import Promotion
from mlops_kit.usecase import Metric

STAGE_KEY = metadata.STAGE
PROMOTE = "promote"
ROLLBACK = "rollback"


@dataclass(frozen=True)
class Package:
    """What the gates need of one model package version (from DescribeModelPackage)."""

    arn: str
    group: str
    version: int
    stage: str | None
    approval: str
    metrics: dict[str, float]
    properties: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_description(cls, described: Mapping[str, Any]) -> Package:
        props = dict(described.get("CustomerMetadataProperties") or {})
        metrics = metadata.metrics(props)
        return cls(
            arn=described["ModelPackageArn"],
            group=described.get("ModelPackageGroupName", ""),
            version=int(described.get("ModelPackageVersion") or 0),
            stage=props.get(STAGE_KEY) or None,
            approval=described.get("ModelApprovalStatus", ""),
            metrics=metrics,
            properties=props,
        )

    @property
    def lineage(self) -> dict[str, str]:
        return metadata.lineage(self.properties)


@dataclass(frozen=True)
class SameData:
    """Both models measured on the very same labelled rows (the candidate's test set), by the use
    case's own evaluate function: every metric it reports, for each."""

    candidate: dict[str, float]
    champion: dict[str, float]
    rows: int
    source: str


@dataclass(frozen=True)
class Check:
    name: str
    value: Any
    threshold: Any
    passed: bool
    note: str = ""

    def line(self) -> str:
        verdict = "pass" if self.passed else "FAIL"
        note = f" ({self.note})" if self.note else ""
        return f"{verdict}  {self.name}: {show(self.value)} vs {show(self.threshold)}{note}"


@dataclass(frozen=True)
class Decision:
    package: str
    target_stage: str
    from_stage: str | None
    champion: str | None
    checks: tuple[Check, ...]
    basis: str  # how the champion was compared: on the same rows, from recorded metrics, or no champion
    same_data: SameData | None = None  # every metric of both models on the same rows, when re-scored

    @property
    def approved(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.passed)

    def refusal(self) -> str:
        """One message naming each failed gate, its value and its threshold."""
        failed = "; ".join(
            f"{c.name} is {show(c.value)}, needs {show(c.threshold)}" + (f" ({c.note})" if c.note else "")
            for c in self.failures
        )
        return f"promotion of {self.package} to {self.target_stage} refused: {failed}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "package": self.package,
            "target_stage": self.target_stage,
            "from_stage": self.from_stage,
            "champion": self.champion,
            "basis": self.basis,
            "decision": "approved" if self.approved else "refused",
            "checks": [
                {
                    "name": c.name,
                    "value": _jsonable(c.value),
                    "threshold": _jsonable(c.threshold),
                    "passed": c.passed,
                    "note": c.note,
                }
                for c in self.checks
            ],
            "same_data": None
            if self.same_data is None
            else {
                "rows": self.same_data.rows,
                "source": self.same_data.source,
                "candidate": {k: _jsonable(v) for k, v in self.same_data.candidate.items()},
                "champion": {k: _jsonable(v) for k, v in self.same_data.champion.items()},
            },
        }


def previous_stage(stages: Sequence[str], target: str) -> str | None:
    """The stage a package must be in to enter `target`; None for the first stage."""
    if target not in stages:
        raise ValueError(f"unknown stage {target!r}; the stages are {', '.join(stages) or 'not defined'}")
    index = list(stages).index(target)
    return stages[index - 1] if index else None


def decide(
    candidate: Package,
    champion: Package | None,
    gates: Promotion,
    *,
    decider: Metric,
    stages: Sequence[str],
    target_stage: str,
    group: str,
    approved_by: str | None = None,
    same_data: SameData | None = None,
) -> Decision:
    """Every gate of `target_stage` applied to `candidate` against the stage's current `champion`;
    `decider` is the use case's deciding metric (its direction says which way is better)."""
    checks = [
        Check("model group", candidate.group, group, candidate.group == group),
        _stage_order(candidate, stages, target_stage),
    ]
    for name, gate in sorted(gates.gates.items()):
        value = candidate.metrics.get(name)
        note = "" if value is not None else f"the package records no metric:{name}"
        if gate.min is not None:
            checks.append(Check(f"min {name}", value, gate.min, _number(value) and value >= gate.min, note))
        if gate.max is not None:
            checks.append(Check(f"max {name}", value, gate.max, _number(value) and value <= gate.max, note))
    gain, basis = _gain(candidate, champion, gates, decider, same_data)
    checks.append(gain)
    if gates.approval_required:
        who = (approved_by or "").strip()
        checks.append(Check("approval", who or None, "an approver (--approved-by)", bool(who)))
    else:
        checks.append(Check("approval", approved_by or None, "not required", True))
    return Decision(
        package=candidate.arn,
        target_stage=target_stage,
        from_stage=candidate.stage,
        champion=champion.arn if champion else None,
        checks=tuple(checks),
        basis=basis,
        same_data=same_data if champion is not None else None,
    )


def _stage_order(candidate: Package, stages: Sequence[str], target: str) -> Check:
    if target not in stages:
        return Check("stage order", target, list(stages), False, "the target is not a stage")
    required = previous_stage(stages, target)
    current = candidate.stage
    if current == target:
        note = f"already in {target}"
    elif current in stages and required is not None and stages.index(current) < stages.index(required):
        note = f"skips {', '.join(stages[stages.index(current) + 1 : stages.index(target)])}"
    elif current is None and required is not None:
        note = f"a new package enters {stages[0]} first"
    else:
        note = ""
    return Check("stage order", current or "none", required or "none", current == required, note)


def _gain(
    candidate: Package,
    champion: Package | None,
    gates: Promotion,
    decider: Metric,
    same_data: SameData | None,
) -> tuple[Check, str]:
    name = f"gain in {decider.name} over champion"
    if decider.direction == "lower":
        name += " (lower is better)"
    if champion is None:
        return Check(name, None, gates.min_gain, True, "no champion in this stage yet"), "no champion"
    if champion.arn == candidate.arn:
        return Check(name, 0.0, gates.min_gain, False, "the package is already the champion"), "same package"
    if same_data is not None:
        mine, theirs = same_data.candidate.get(decider.name), same_data.champion.get(decider.name)
        if not (_number(mine) and _number(theirs)):
            note = f"re-scoring on {same_data.source} gave no {decider.name} for both models"
            return Check(name, None, gates.min_gain, False, note), "same data"
        gain = decider.gain(mine, theirs)
        note = f"{mine:.4f} vs {theirs:.4f} on the same {same_data.rows} rows of {same_data.source}"
        return Check(name, gain, gates.min_gain, gain >= gates.min_gain, note), "same data"
    mine, theirs = candidate.metrics.get(decider.name), champion.metrics.get(decider.name)
    if not (_number(mine) and _number(theirs)):
        note = "a package records no metric:" + decider.name
        return Check(name, None, gates.min_gain, False, note), "recorded metrics"
    gain = decider.gain(mine, theirs)
    note = f"recorded metrics {mine:.4f} vs {theirs:.4f}: no shared test set to re-score on"
    return Check(name, gain, gates.min_gain, gain >= gates.min_gain, note), "recorded metrics"


# --- which package a stage serves ------------------------------------------------------------------


def served_stack(history: Sequence[Mapping[str, Any]]) -> list[str]:
    """The packages a stage has served, oldest first, after replaying its HEAD history.

    A promotion pushes its package; a rollback pops the current one. So the current package is the last
    entry and a rollback returns to the one before it, and a second rollback goes further back rather
    than forth again.
    """
    stack: list[str] = []
    for entry in history:
        if entry.get("action") == ROLLBACK:
            if stack:
                stack.pop()
            if not stack or stack[-1] != entry["package"]:
                stack.append(entry["package"])
        else:
            stack.append(entry["package"])
    return stack


def rollback_target(history: Sequence[Mapping[str, Any]], stage: str) -> tuple[str, str]:
    """(current package, the one a rollback returns to); ValueError when there is nothing to return to."""
    stack = served_stack(history)
    if not stack:
        raise ValueError(f"stage {stage} has never been promoted to; there is nothing to roll back")
    if len(stack) < 2:
        raise ValueError(f"stage {stage} has served only {stack[-1]}; there is no previous package")
    return stack[-1], stack[-2]


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


def show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return str(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, tuple):
        return list(value)
    return value
