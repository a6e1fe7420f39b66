"""Bad data that would poison a run is quarantined row by row, with the column and the reason; a file
that cannot be read at all is an error naming it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mlops_kit.validation import Column, read_table, validate

NOW = pd.Timestamp("2026-11-29T12:00:00Z")
SCHEMA = {
    "id": Column("string", unique=True),
    "when": Column("timestamp", not_future=True),
    "count": Column("int", nullable=True),
    "amount": Column("float", nullable=True),
    "name": Column("string", nullable=True),
}


def _frame(**overrides) -> pd.DataFrame:
    base = {
        "id": ["a", "b"],
        "when": ["2026-11-29T10:00:00Z"] * 2,
        "count": [1, 2],
        "amount": [1.5, 2.5],
        "name": ["x", "y"],
    }
    base.update(overrides)
    return pd.DataFrame(base)


def _reasons(frame: pd.DataFrame, **kw) -> dict[str, dict[str, int]]:
    _, _, report = validate(frame, SCHEMA, now=NOW, **kw)
    return report.by_column


def test_event_times_in_the_future_are_quarantined_at_the_tolerance_boundary() -> None:
    tolerance = pd.Timedelta(hours=2)
    at, beyond = NOW + tolerance, NOW + tolerance + pd.Timedelta(microseconds=1)
    frame = _frame(when=[at.isoformat(), beyond.isoformat()])
    accepted, rejected, report = validate(frame, SCHEMA, now=NOW, future_tolerance=tolerance)
    assert list(accepted["id"]) == ["a"] and list(rejected["id"]) == ["b"]
    [reason] = report.by_column["when"]
    assert reason.startswith("in the future (after 2026-11-29T14:00:00")
    assert "2099" not in str(validate(_frame(when=["2099-01-01T00:00:00Z"] * 2), SCHEMA, now=NOW)[0])


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("count", 1e308, "out of an integer's range"),
        ("count", float("inf"), "not finite"),
        ("count", float("-inf"), "not finite"),
        ("count", 2.0**63, "out of an integer's range"),
        ("amount", float("inf"), "not finite"),
        ("count", 2.5, "not a int"),
    ],
)
def test_a_bad_number_quarantines_its_row_instead_of_crashing(column: str, value: float, reason: str) -> None:
    frame = _frame(**{column: [value, 3]})
    accepted, rejected, report = validate(frame, SCHEMA, now=NOW)
    assert report.by_column == {column: {reason: 1}}
    assert list(accepted["id"]) == ["b"] and rejected["rejection_reasons"].tolist() == [f"{column}: {reason}"]


def test_the_largest_integer_below_the_limit_is_accepted() -> None:
    accepted, _, report = validate(_frame(count=[2**53, -(2**53)]), SCHEMA, now=NOW)
    assert report.rejected == 0 and accepted["count"].tolist() == [2**53, -(2**53)]


def test_rows_with_bytes_that_are_not_utf8_are_quarantined(tmp_path: Path) -> None:
    lines = ["id,when,count,amount,name"] + [f"r{i},2026-11-29T10:00:00Z,{i},1.0,ok{i}" for i in range(99)]
    body = ("\n".join(lines) + "\n").encode() + b"bad,2026-11-29T10:00:00Z,1,1.0,caf\xe9\n"
    (tmp_path / "part.csv").write_bytes(body)
    frame = read_table(tmp_path)  # no UnicodeDecodeError
    accepted, rejected, report = validate(frame, SCHEMA, now=NOW)
    assert len(accepted) == 99 and rejected["id"].tolist() == ["bad"]
    assert report.by_column == {"name": {"not valid UTF-8": 1}}


def test_a_file_that_cannot_be_read_is_named(tmp_path: Path) -> None:
    (tmp_path / "good.csv").write_text("id\na\n")
    (tmp_path / "broken.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(ValueError, match=r"broken\.parquet: cannot be read as parquet"):
        read_table(tmp_path)
