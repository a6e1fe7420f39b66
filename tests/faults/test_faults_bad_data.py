"""Bad data, every kind: each is a quarantined row (with its column and reason) or a one-line error that
names the file or the column, never a crash, never a poisoned run.

Files are written as a user would hand them over (CSV bytes, Parquet, JSON lines) and go through the
kit's own reader and validation (`mlops_kit.validation.read_table` / `validate`), with a schema that has
each kind of rule: a unique id, an event time that may not be in the future, an integer with a minimum,
a float, a domain, and a label.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mlops_kit.validation import Column, SchemaError, read_table, validate

NOW = pd.Timestamp("2026-11-29T12:00:00Z")
SCHEMA = {
    "id": Column("string", unique=True),
    "when": Column("timestamp", not_future=True, minimum="2000-01-01"),
    "count": Column("int", minimum=0),
    "amount": Column("float"),
    "channel": Column("string", domain=("pos", "web")),
    "label": Column("int", label=True, domain=(0, 1)),
}
HEADER = "id,when,count,amount,channel,label"
GOOD = "g{i},2026-11-29T10:00:00Z,{i},1.5,pos,{label}"


def _csv(folder: Path, bad_row: bytes, name: str = "part.csv") -> Path:
    rows = [GOOD.format(i=i, label=i % 2) for i in range(20)]
    (folder / name).write_bytes(("\n".join([HEADER, *rows]) + "\n").encode() + bad_row + b"\n")
    return folder


# (kind, the bad row as CSV bytes, column named, reason named)
QUARANTINED = [
    ("event time in 2099", b"b,2099-01-01T00:00:00Z,1,1.5,pos,0", "when", "in the future"),
    ("event time before the minimum", b"b,1970-01-01T00:00:00Z,1,1.5,pos,0", "when", "below 2000-01-01"),
    ("event time not a time", b"b,yesterday,1,1.5,pos,0", "when", "not a timestamp"),
    (
        "1e308 in an integer column",
        b"b,2026-11-29T10:00:00Z,1e308,1.5,pos,0",
        "count",
        "out of an integer's range",
    ),
    (
        "2^63 in an integer column",
        b"b,2026-11-29T10:00:00Z,9223372036854775808,1.5,pos,0",
        "count",
        "out of an",
    ),
    ("inf in an integer column", b"b,2026-11-29T10:00:00Z,inf,1.5,pos,0", "count", "not finite"),
    ("-inf in an integer column", b"b,2026-11-29T10:00:00Z,-inf,1.5,pos,0", "count", "not finite"),
    ("a fraction in an integer column", b"b,2026-11-29T10:00:00Z,2.5,1.5,pos,0", "count", "not a int"),
    ("below the minimum", b"b,2026-11-29T10:00:00Z,-1,1.5,pos,0", "count", "below 0"),
    ("inf in a float column", b"b,2026-11-29T10:00:00Z,1,inf,pos,0", "amount", "not finite"),
    ("text in a number column", b"b,2026-11-29T10:00:00Z,1,abc,pos,0", "amount", "not a float"),
    ("an empty required cell", b"b,2026-11-29T10:00:00Z,1,,pos,0", "amount", "null"),
    ("a short (ragged) row", b"b,2026-11-29T10:00:00Z,1", "amount", "null"),
    ("bytes that are not UTF-8", b"b,2026-11-29T10:00:00Z,1,1.5,p\xf6s,0", "channel", "not valid UTF-8"),
    (
        "a value outside the domain",
        b"b,2026-11-29T10:00:00Z,1,1.5,atm,0",
        "channel",
        "outside the allowed values",
    ),
    ("a missing label", b"b,2026-11-29T10:00:00Z,1,1.5,pos,", "label", "missing label"),
    (
        "a label outside its values",
        b"b,2026-11-29T10:00:00Z,1,1.5,pos,2",
        "label",
        "outside the allowed values",
    ),
    ("a duplicate id", b"g3,2026-11-29T10:00:00Z,1,1.5,pos,0", "id", "duplicate id"),
    ("a missing id", b",2026-11-29T10:00:00Z,1,1.5,pos,0", "id", "null"),
    ("the header row again, mid-file", HEADER.encode(), "count", "not a int"),
]


@pytest.mark.bad_input()
@pytest.mark.parametrize(
    ("row", "column", "reason"), [pytest.param(*case[1:], id=f"data: {case[0]}") for case in QUARANTINED]
)
def test_a_bad_row_is_quarantined_with_its_column_and_reason(
    tmp_path: Path, row: bytes, column: str, reason: str
) -> None:
    frame = read_table(_csv(tmp_path, row))
    accepted, rejected, report = validate(frame, SCHEMA, now=NOW)
    assert len(rejected) == 1 and len(accepted) == 20, report.summary()
    assert any(reason in r for r in report.by_column.get(column, {})), report.by_column
    assert f"{column}: {reason}" in rejected["rejection_reasons"].iloc[0]
    assert "\n" not in report.summary()


def _parquet_of_garbage(folder: Path) -> Path:
    (folder / "good.csv").write_text(f"{HEADER}\n{GOOD.format(i=1, label=0)}\n")
    (folder / "events.parquet").write_bytes(b"PAR1 not really parquet")
    return folder


def _empty_csv(folder: Path) -> Path:
    (folder / "empty.csv").write_bytes(b"")
    return folder


def _too_many_fields(folder: Path) -> Path:
    return _csv(folder, b"b,2026-11-29T10:00:00Z,1,1.5,pos,0,extra,more", name="wide.csv")


def _missing_column(folder: Path) -> Path:
    (folder / "narrow.csv").write_text("id,when,count,amount,channel\ng1,2026-11-29T10:00:00Z,1,1.5,pos\n")
    return folder


def _binary(folder: Path) -> Path:
    (folder / "photo.csv").write_bytes(bytes(range(256)) * 40)
    return folder


def _broken_json_lines(folder: Path) -> Path:
    (folder / "events.jsonl").write_text('{"id": "a", "when": "2026-11-29T10:00:00Z"}\n{"id": "b", "wh\n')
    return folder


def _nothing(folder: Path) -> Path:
    (folder / "notes.txt").write_text("no data here")
    return folder


# (kind, how the folder is made, the error's type, what the one line must name)
UNREADABLE = [
    ("a corrupt Parquet file", _parquet_of_garbage, ValueError, "events.parquet: cannot be read as parquet"),
    ("an empty CSV file", _empty_csv, ValueError, "empty.csv: cannot be read as csv"),
    ("a row with too many fields", _too_many_fields, ValueError, "wide.csv: cannot be read as csv"),
    ("broken JSON lines", _broken_json_lines, ValueError, "events.jsonl: cannot be read as jsonl"),
    ("a missing column", _missing_column, SchemaError, "lacks column(s) label"),
    ("binary bytes named .csv", _binary, (ValueError, SchemaError), ""),
    ("a folder without data files", _nothing, FileNotFoundError, "no .csv, .parquet or .jsonl file under"),
]


@pytest.mark.bad_input()
@pytest.mark.parametrize(
    ("make", "error", "named"), [pytest.param(*case[1:], id=f"data: {case[0]}") for case in UNREADABLE]
)
def test_data_that_cannot_be_judged_is_a_one_line_error_naming_the_file_or_column(
    tmp_path: Path, make, error, named: str
) -> None:
    folder = make(tmp_path)
    with pytest.raises(error) as raised:
        validate(read_table(folder), SCHEMA, now=NOW)
    message = str(raised.value)
    assert "\n" not in message and named in message
    if isinstance(raised.value, ValueError) and not isinstance(raised.value, SchemaError):
        assert str(tmp_path) in message  # the file, with its path


@pytest.mark.bad_input("data: 1 % of rows with bytes that are not UTF-8 (the issue's file)")
def test_one_percent_of_rows_not_utf8_quarantines_those_rows_only(tmp_path: Path) -> None:
    rows = [GOOD.format(i=i, label=i % 2).encode() for i in range(990)]
    rows += [f"x{i},2026-11-29T10:00:00Z,1,1.5,".encode() + b"p\xe9s,0" for i in range(10)]
    (tmp_path / "part.csv").write_bytes(b"\n".join([HEADER.encode(), *rows]) + b"\n")
    accepted, rejected, report = validate(read_table(tmp_path), SCHEMA, now=NOW)
    assert (len(accepted), len(rejected)) == (990, 10)
    assert report.by_column["channel"]["not valid UTF-8"] == 10 and set(report.by_column) == {"channel"}


@pytest.mark.bad_input("data: 499 of 500 entities stamped 2099 (the issue's poisoning)")
def test_a_file_mostly_from_2099_leaves_only_the_true_rows(tmp_path: Path) -> None:
    rows = [GOOD.format(i=0, label=0)] + [f"f{i},2099-06-01T00:00:00Z,{i},1.5,pos,1" for i in range(499)]
    (tmp_path / "part.csv").write_text("\n".join([HEADER, *rows]) + "\n")
    accepted, _, report = validate(read_table(tmp_path), SCHEMA, now=NOW)
    assert accepted["id"].tolist() == ["g0"] and report.rejected == 499
    assert accepted["when"].max() <= NOW


@pytest.mark.bad_input("features: records stamped 2099 offered to the online store")
def test_feature_records_from_the_future_stay_out_of_the_online_store() -> None:
    import boto3
    from moto import mock_aws

    from mlops_kit import settings
    from mlops_kit.features import Feature, FeatureGroup, FeatureType
    from mlops_kit.features.store import connect, ingest

    group = FeatureGroup(
        name="bad-data-usage",
        record_identifier=Feature("entity_id", FeatureType.STRING),
        event_time=Feature("event_time", FeatureType.STRING),
        features=(Feature("txn_count", FeatureType.INTEGRAL),),
    )
    now = pd.Timestamp.now(tz="UTC").floor("s")
    rows = [("c0", (now - pd.Timedelta("1h")).isoformat(), 1)]
    rows += [(f"c{i}", "2099-01-01T00:00:00+00:00", i) for i in range(1, 500)]
    with mock_aws():
        store = connect(
            settings.load("local"), lambda s: boto3.client(s, region_name="us-east-1"), groups=[group]
        )
        report = ingest(store, group.name, pd.DataFrame(rows, columns=group.column_names))
        assert (report.online_records, report.online_future) == (1, 499)
        assert list(store.batch_get(group, [f"c{i}" for i in range(500)])) == ["c0"]
