"""Pipeline expressions, resolved as SageMaker Pipelines resolves them (pure functions).

Handles `{"Get": "Parameters.X"}`, `{"Get": "Execution.X"}`, `{"Get": "Steps.S.<property path>"}`,
`{"Std:Join": {"On": ..., "Values": [...]}}`, `{"Std:JsonGet": {"PropertyFile": {"Get":
"Steps.S.PropertyFiles.F"}, "Path": "a.b[0]"}}`, and the conditions of a Condition step.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any


class ExpressionError(ValueError):
    """An expression refers to something that does not exist (yet)."""


@dataclass
class Scope:
    """What expressions can see: parameters, execution variables, finished steps' properties."""

    parameters: dict[str, Any]
    execution: dict[str, Any]
    properties: dict[str, Any] = field(default_factory=dict)  # step name -> Describe*-like response
    property_files: dict[tuple[str, str], Any] = field(default_factory=dict)  # (step, file) -> JSON


_TOKEN = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_]*)|\['([^']*)'\]|\[(\d+)\]")


def path_tokens(path: str) -> list[str | int]:
    """`A.B['x'].C[0]` -> ['A', 'B', 'x', 'C', 0]."""
    tokens: list[str | int] = []
    position = 0
    while position < len(path):
        match = _TOKEN.match(path, position)
        if match is None or match.end() == position:
            raise ExpressionError(f"cannot parse property path {path!r} at {path[position:]!r}")
        name, key, index = match.groups()
        tokens.append(int(index) if index is not None else (name if name is not None else key))
        position = match.end()
    return tokens


def walk(value: Any, tokens: list[str | int], where: str) -> Any:
    """Follow tokens through dicts and lists; a string key on a list picks the item with that `*Name`."""
    for token in tokens:
        if isinstance(value, Mapping) and token in value:
            value = value[token]
        elif isinstance(value, list) and isinstance(token, int) and token < len(value):
            value = value[token]
        elif isinstance(value, list) and isinstance(token, str):
            named = [item for item in value if isinstance(item, Mapping) and token in _names(item)]
            if not named:
                raise ExpressionError(f"{where}: no item named {token!r}")
            value = named[0]
        else:
            raise ExpressionError(f"{where}: {token!r} not found")
    return value


def _names(item: Mapping[str, Any]) -> set[Any]:
    return {v for k, v in item.items() if k.endswith("Name")}


def resolve(value: Any, scope: Scope) -> Any:
    """`value` with every expression replaced by its value."""
    if isinstance(value, list):
        return [resolve(v, scope) for v in value]
    if not isinstance(value, Mapping):
        return value
    if set(value) == {"Get"}:
        return _get(value["Get"], scope)
    if set(value) == {"Std:Join"}:
        spec = value["Std:Join"]
        return str(spec["On"]).join(_text(resolve(v, scope)) for v in spec["Values"])
    if set(value) == {"Std:JsonGet"}:
        spec = value["Std:JsonGet"]
        reference = spec["PropertyFile"]["Get"]
        parts = reference.split(".")
        if len(parts) != 4 or parts[0] != "Steps" or parts[2] != "PropertyFiles":
            raise ExpressionError(f"unsupported property file reference {reference!r}")
        key = (parts[1], parts[3])
        if key not in scope.property_files:
            raise ExpressionError(f"property file {parts[3]!r} of step {parts[1]!r} is not available")
        return walk(scope.property_files[key], path_tokens(spec["Path"]), f"{reference} {spec['Path']}")
    return {k: resolve(v, scope) for k, v in value.items()}


def _get(reference: str, scope: Scope) -> Any:
    head, _, rest = reference.partition(".")
    if head == "Parameters":
        if rest not in scope.parameters:
            raise ExpressionError(f"unknown parameter {rest!r}")
        return scope.parameters[rest]
    if head == "Execution":
        if rest not in scope.execution:
            raise ExpressionError(f"unknown execution variable {rest!r}")
        return scope.execution[rest]
    if head == "Steps":
        step, _, path = rest.partition(".")
        if step not in scope.properties:
            raise ExpressionError(f"step {step!r} has not run, so {reference!r} has no value")
        return walk(scope.properties[step], path_tokens(path), reference)
    raise ExpressionError(f"unsupported reference {reference!r}")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


_COMPARE = {
    "Equals": lambda a, b: a == b,
    "GreaterThan": lambda a, b: a > b,
    "GreaterThanOrEqualTo": lambda a, b: a >= b,
    "LessThan": lambda a, b: a < b,
    "LessThanOrEqualTo": lambda a, b: a <= b,
}


def condition(spec: Mapping[str, Any], scope: Scope) -> bool:
    """Evaluate one Condition step condition."""
    kind = spec["Type"]
    if kind in _COMPARE:
        left, right = resolve(spec["LeftValue"], scope), resolve(spec["RightValue"], scope)
        if left is None or right is None:
            return False
        return bool(_COMPARE[kind](left, right))
    if kind == "In":
        return resolve(spec["QueryValue"], scope) in [resolve(v, scope) for v in spec["Values"]]
    if kind == "Not":
        return not condition(spec["Condition"], scope)
    if kind == "Or":
        return any(condition(c, scope) for c in spec["Conditions"])
    raise ExpressionError(f"unsupported condition type {kind!r}")


def step_references(value: Any) -> Iterator[str]:
    """Names of the steps an expression tree reads from."""
    if isinstance(value, list):
        for item in value:
            yield from step_references(item)
    elif isinstance(value, Mapping):
        if set(value) == {"Get"} and isinstance(value["Get"], str) and value["Get"].startswith("Steps."):
            yield value["Get"].split(".")[1]
        else:
            for item in value.values():
                yield from step_references(item)
