"""The fault suite's tally: faults tried and survived, bad inputs tried and handled, 5xx answers seen.

Tests are marked `@pytest.mark.fault("what was done")` or `@pytest.mark.bad_input("kind")` (one per
parametrized case); `conftest.py` counts each as tried when it runs and as survived/handled when it
passes, and writes the tally to `<pytest's base temp>/faults-summary.json` and the terminal at the end.
Tests that talk HTTP to a server add the 5xx answers they saw with `count_5xx`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TALLY: dict[str, Any] = {"faults": {}, "bad_inputs": {}, "answers_5xx": 0, "requests": 0}


def count_5xx(requests: int, errors: int) -> None:
    TALLY["requests"] += requests
    TALLY["answers_5xx"] += errors


def note(kind: str, name: str, passed: bool) -> None:
    TALLY[kind][name] = TALLY[kind].get(name, True) and passed


def summary() -> dict[str, Any]:
    faults, bad = TALLY["faults"], TALLY["bad_inputs"]
    return {
        "faults_tried": len(faults),
        "faults_survived": sum(faults.values()),
        "bad_inputs_tried": len(bad),
        "bad_inputs_handled": sum(bad.values()),
        "http_requests": TALLY["requests"],
        "answers_5xx": TALLY["answers_5xx"],
        "not_survived": sorted(k for k, v in faults.items() if not v),
        "not_handled": sorted(k for k, v in bad.items() if not v),
    }


def write(folder: Path) -> Path:
    path = folder / "faults-summary.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(
        json.dumps({**summary(), "faults": TALLY["faults"], "bad_inputs": TALLY["bad_inputs"]}, indent=2)
    )
    tmp.replace(path)
    return path
