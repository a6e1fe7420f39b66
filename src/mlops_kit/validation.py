"""Row-level validation of a raw data set against a declared schema, with a per-column report.

A schema is data (`Column` specs per column name), declared by the project next to its use case.
`validate(frame, schema)` is pure: it types the columns, checks nulls, ranges, domains, duplicate ids,
label presence and time bounds, and splits the rows into accepted and rejected (each rejected row with
the reasons). The caller decides what a rejected fraction means (the pipeline fails above the threshold
in the settings); nothing here writes anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

Kind = Literal["string", "int", "float", "timestamp"]


@dataclass(frozen=True)
class Column:
    kind: Kind
    nullable: bool = False
    minimum: float | str | None = None  # inclusive; a timestamp string for timestamps
    maximum: float | str | None = None  # inclusive
    domain: tuple[Any, ...] | None = None
    unique: bool = False
    label: bool = False


@dataclass(frozen=True)
class ValidationReport:
    rows: int
    accepted: int
    rejected: int
    missing_columns: tuple[str, ...]
    by_column: dict[str, dict[str, int]] = field(default_factory=dict)  # column -> reason -> rows

    @property
    def rejected_fraction(self) -> float:
        return self.rejected / self.rows if self.rows else 0.0

    def summary(self) -> str:
        """One line naming every column with rejected rows, and how many, by reason."""
        parts = [
            f"{column}: {', '.join(f'{count:,} {reason}' for reason, count in sorted(reasons.items()))}"
            for column, reasons in sorted(self.by_column.items())
        ]
        return "; ".join(parts) or "no rejected rows"

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "rejected_fraction": self.rejected_fraction,
            "missing_columns": list(self.missing_columns),
            "by_column": self.by_column,
        }


class SchemaError(ValueError):
    """The data cannot be validated at all: columns are missing."""


def validate(
    frame: pd.DataFrame, schema: dict[str, Column]
) -> tuple[pd.DataFrame, pd.DataFrame, ValidationReport]:
    """Split `frame` into (accepted, rejected, report). Accepted rows carry the schema's types.

    `rejected` has the original values plus a `rejection_reasons` column ("column: reason; ...").
    Raises SchemaError when a schema column is missing entirely, since no row can then be judged.
    """
    missing = tuple(name for name in schema if name not in frame.columns)
    if missing:
        raise SchemaError(
            f"the data lacks column(s) {', '.join(missing)} ({len(frame):,} rows); "
            f"expected columns: {', '.join(schema)}"
        )
    n = len(frame)
    typed = pd.DataFrame(index=frame.index)
    reasons: dict[str, dict[str, np.ndarray]] = {}

    def flag(column: str, reason: str, mask: np.ndarray | pd.Series) -> None:
        mask = np.asarray(mask, dtype=bool)
        if mask.any():
            reasons.setdefault(column, {})[reason] = mask

    for name, spec in schema.items():
        raw = frame[name]
        values, unparsable = _typed(raw, spec.kind)
        typed[name] = values
        flag(name, f"not a {spec.kind}", unparsable)
        null = values.isna().to_numpy() & ~unparsable
        if not spec.nullable:
            flag(name, "missing label" if spec.label else "null", null)
        present = ~values.isna().to_numpy()
        if spec.minimum is not None:
            low = _bound(spec.minimum, spec.kind)
            flag(name, f"below {spec.minimum}", present & (values < low).fillna(False).to_numpy())
        if spec.maximum is not None:
            high = _bound(spec.maximum, spec.kind)
            flag(name, f"above {spec.maximum}", present & (values > high).fillna(False).to_numpy())
        if spec.domain is not None:
            flag(name, "outside the allowed values", present & ~values.isin(spec.domain).to_numpy())
        if spec.unique:
            flag(name, "duplicate id", present & values.duplicated(keep="first").to_numpy())

    any_bad = np.zeros(n, dtype=bool)
    for by_reason in reasons.values():
        for mask in by_reason.values():
            any_bad |= mask
    accepted = typed.loc[~any_bad].reset_index(drop=True)
    rejected = frame.loc[any_bad].copy()
    rejected["rejection_reasons"] = _reason_text(reasons, any_bad)
    report = ValidationReport(
        rows=n,
        accepted=int((~any_bad).sum()),
        rejected=int(any_bad.sum()),
        missing_columns=missing,
        by_column={c: {r: int(m.sum()) for r, m in rs.items()} for c, rs in sorted(reasons.items())},
    )
    return accepted, rejected.reset_index(drop=True), report


def _typed(raw: pd.Series, kind: Kind) -> tuple[pd.Series, np.ndarray]:
    """The column in its schema type, and which non-null values could not be converted."""
    if kind == "string":
        return raw.astype("string"), np.zeros(len(raw), dtype=bool)
    if kind == "timestamp":
        values = pd.to_datetime(raw, utc=True, errors="coerce", format="ISO8601")
        return values, (values.isna() & raw.notna()).to_numpy()
    numbers = pd.to_numeric(raw, errors="coerce").astype("float64")
    unparsable = (numbers.isna() & raw.notna()).to_numpy()
    if kind == "float":
        return numbers, unparsable
    fractional = (numbers.notna() & (np.floor(numbers) != numbers)).to_numpy()
    return numbers.where(~fractional).astype("Int64"), unparsable | fractional


def _bound(value: float | str, kind: Kind) -> Any:
    return pd.Timestamp(value, tz="UTC") if kind == "timestamp" else value


def _reason_text(reasons: dict[str, dict[str, np.ndarray]], any_bad: np.ndarray) -> list[str]:
    rows = np.flatnonzero(any_bad)
    texts: dict[int, list[str]] = {int(i): [] for i in rows}
    for column, by_reason in sorted(reasons.items()):
        for reason, mask in by_reason.items():
            for i in np.flatnonzero(mask):
                texts[int(i)].append(f"{column}: {reason}")
    return ["; ".join(texts[int(i)]) for i in rows]
