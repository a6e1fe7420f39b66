"""Row-level validation of a raw data set against a declared schema, with a per-column report.

A schema is data (`Column` specs per column name), declared by the project next to its use case.
`validate(frame, schema)` is pure: it types the columns, checks nulls, ranges, domains, duplicate ids,
label presence and time bounds, and splits the rows into accepted and rejected (each rejected row with
the reasons). The caller decides what a rejected fraction means (the pipeline fails above the threshold
in the settings); nothing here writes anything.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
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
    # A timestamp that may not lie in the future beyond `validate(..., future_tolerance=)`: event times
    # from a broken clock would otherwise become the newest data (the test split, the online store).
    not_future: bool = False


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
    frame: pd.DataFrame,
    schema: dict[str, Column],
    *,
    now: pd.Timestamp | None = None,
    future_tolerance: pd.Timedelta = pd.Timedelta(hours=1),
) -> tuple[pd.DataFrame, pd.DataFrame, ValidationReport]:
    """Split `frame` into (accepted, rejected, report). Accepted rows carry the schema's types.

    `rejected` has the original values plus a `rejection_reasons` column ("column: reason; ...").
    Every per-cell problem quarantines its row with the column and the reason (unparsable, not finite,
    out of an integer's range, bytes that are not UTF-8, a time in the future); only a missing column
    is an error (SchemaError), since no row can then be judged. `now` (default: the current time) and
    `future_tolerance` bound the `not_future` timestamps.
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

    latest = (now if now is not None else pd.Timestamp.now(tz="UTC")) + future_tolerance
    for name, spec in schema.items():
        raw = frame[name]
        flag(name, "not valid UTF-8", _undecodable(raw))
        values, unparsable, problems = _typed(raw, spec.kind)
        typed[name] = values
        flag(name, f"not a {spec.kind}", unparsable)
        for reason, mask in problems.items():
            flag(name, reason, mask)
        unparsable = unparsable | np.logical_or.reduce([*problems.values(), np.zeros(n, dtype=bool)])
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
        if spec.not_future:
            flag(
                name,
                f"in the future (after {latest.isoformat()})",
                present & (values > latest).fillna(False).to_numpy(),
            )
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


REPLACEMENT = "\ufffd"  # what a byte that is not UTF-8 decodes to
INT64_LIMIT = 2.0**63  # beyond it a value cannot be an integer column's (and float64 loses units earlier)


def _typed(raw: pd.Series, kind: Kind) -> tuple[pd.Series, np.ndarray, dict[str, np.ndarray]]:
    """The column in its schema type, which non-null values could not be converted, and other per-cell
    problems by reason (their cells become missing in the typed column)."""
    none: dict[str, np.ndarray] = {}
    if kind == "string":
        return raw.astype("string"), np.zeros(len(raw), dtype=bool), none
    if kind == "timestamp":
        values = pd.to_datetime(raw, utc=True, errors="coerce", format="ISO8601")
        return values, (values.isna() & raw.notna()).to_numpy(), none
    numbers = pd.to_numeric(raw, errors="coerce").astype("float64")
    unparsable = (numbers.isna() & raw.notna()).to_numpy()
    infinite = np.isinf(numbers.to_numpy())
    problems = {"not finite": infinite} if infinite.any() else {}
    if kind == "float":
        return numbers.where(~infinite), unparsable, problems
    finite = numbers.where(~infinite)
    huge = (finite.abs() >= INT64_LIMIT).fillna(False).to_numpy()
    if huge.any():
        problems["out of an integer's range"] = huge
    finite = finite.where(~huge)
    fractional = (finite.notna() & (np.floor(finite) != finite)).to_numpy()
    return finite.where(~fractional).astype("Int64"), unparsable | fractional, problems


def _undecodable(raw: pd.Series) -> np.ndarray:
    """Text cells holding bytes that were not UTF-8 (`read_table` turns them into U+FFFD)."""
    if raw.dtype != object and not pd.api.types.is_string_dtype(raw):
        return np.zeros(len(raw), dtype=bool)
    return raw.astype("string").str.contains(REPLACEMENT, regex=False, na=False).to_numpy(dtype=bool)


_READERS = {
    ".csv": lambda p: pd.read_csv(p, encoding="utf-8", encoding_errors="replace"),
    ".parquet": pd.read_parquet,
    ".jsonl": lambda p: pd.read_json(p, lines=True),
    ".json": lambda p: pd.read_json(p, lines=True),
}


def table_files(folder: Any) -> list[Any]:
    """The CSV, Parquet and JSON-lines files under `folder` (or the one file it names), in path order."""
    from pathlib import Path

    root = Path(folder)
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    files = [p for p in files if p.suffix.lower() in _READERS]
    if not files:
        raise FileNotFoundError(f"no .csv, .parquet or .jsonl file under {root}")
    return files


def iter_tables(folder: Any) -> Iterator[pd.DataFrame]:
    """The files under `folder` one at a time (`table_files`' order): a caller holds one file at most.

    A CSV's bytes that are not UTF-8 become U+FFFD, for `validate` to quarantine their rows; a file that
    cannot be read at all is an error naming it.
    """
    for path in table_files(folder):
        try:
            yield _READERS[path.suffix.lower()](path)
        except Exception as exc:  # whatever the reader says, the user needs to know which file
            detail = " ".join(str(exc).split())  # one line: pandas' parser errors end with a newline
            raise ValueError(f"{path}: cannot be read as {path.suffix.lower()[1:]}: {detail}") from None


def read_table(folder: Any) -> pd.DataFrame:
    """Every CSV, Parquet or JSON-lines file under `folder` (or the one file it names), concatenated
    (see `iter_tables`)."""
    frames = list(iter_tables(folder))
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


@dataclass(frozen=True)
class Sample:
    frame: pd.DataFrame  # the rows kept, in row-hash order
    rows: int  # the rows there were

    @property
    def fraction(self) -> float:
        return len(self.frame) / self.rows if self.rows else 1.0


def sample_table(folder: Any, max_rows: int, key: Sequence[str] | None = None) -> Sample:
    """At most `max_rows` rows of the files under `folder`, holding no more than those and one file.

    Each row's hash (of its `key` columns, all columns when None) ranks it; the `max_rows` lowest are
    kept (every row when there are no more): a uniform sample that is the same rows in the same order
    whatever files the rows are spread over and in what order they are read, so one instance's parts
    and two instances' give one training set. Name key columns whose types do not vary between files
    (a column of integers with a gap in one file is read as floats there, and hashes differently).
    """
    if max_rows < 1:
        raise ValueError(f"max_rows must be at least 1, got {max_rows}")
    kept: pd.DataFrame | None = None
    kept_hash = np.empty(0, dtype=np.uint64)
    rows = 0
    for part in iter_tables(folder):
        missing = [c for c in (key or ()) if c not in part.columns]
        if missing:
            raise ValueError(f"{folder}: no column {', '.join(missing)} to sample rows by")
        rows += len(part)
        hashes = pd.util.hash_pandas_object(part[list(key)] if key else part, index=False).to_numpy()
        if len(kept_hash) == max_rows:  # full: only a row ranked before the last kept one can enter
            entering = hashes < kept_hash[-1]
            part, hashes = part[entering], hashes[entering]
        frame = part if kept is None else pd.concat([kept, part], ignore_index=True)
        both = hashes if kept is None else np.concatenate([kept_hash, hashes])
        order = np.argsort(both, kind="stable")[:max_rows]
        kept = frame.take(order).reset_index(drop=True)
        kept_hash = both[order]
    assert kept is not None  # iter_tables raises on a folder without files
    return Sample(kept, rows)


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
