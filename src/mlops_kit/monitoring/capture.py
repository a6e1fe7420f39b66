"""Read a window of SageMaker data-capture files (JSON lines) into a frame of requests and predictions.

Each line is one invocation: `captureData.endpointInput` (the request) and `captureData.endpointOutput`
(the response), each with `data` in `encoding` CSV, JSON or BASE64, and `eventMetadata` with the event id
and inference time. CSV requests carry no header, so their columns take the baseline's feature order, as
Model Monitor does; extra fields become `_c<i>`. JSON requests may be `{"instances": [...]}`, a list of
rows, or records with names. A line that cannot be read is counted, skipped and described, never fatal.

Responses are kept as the model gave them, one `Answer` per request row: a number (a regression value,
a score, a class id), a class label given as text, a probability vector, or a label with its scores
(`{"predicted_label": 2, "score": [...]}`). Which of these a task reads is the quality code's business;
`Window.predictions` is the numeric view the drift code has always used.

Sources: a file, a folder (every `*.jsonl` below it), or an `s3://bucket/prefix`. Given `partitions`
(start, end), only the files of SageMaker's hour partitions (`<endpoint>/<variant>/yyyy/mm/dd/hh/`) in
[start, end) are read: below an S3 prefix only those hours are listed, so a scheduled run costs its window,
not the capture's whole retention.
"""

from __future__ import annotations

import base64
import binascii
import csv
import datetime as dt
import io
import json
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

MAX_EXAMPLES = 20  # malformed lines described in the report; the rest are only counted
# Keys of a JSON answer object. A list under any of them is a probability vector; a number under a score
# key is a score, and under a label key the model's answer itself (a class, or a regression value).
SCORE_KEYS = ("probabilities", "probability", "scores", "score", "predicted_probability")
LABEL_KEYS = ("predicted_label", "label", "class", "predicted_class", "prediction", "value")
PREDICTION_KEYS = SCORE_KEYS + LABEL_KEYS


class CaptureError(ValueError):
    """A capture source that cannot be read at all (not a malformed line, which is only counted)."""


@dataclass(frozen=True)
class Answer:
    """What the model answered for one request row. At least one field is set.

    `value` is the answer itself: a number (regression value, score, numeric class id) or a class label
    given as text; `score` a number the response named as a score or probability; `probabilities` a
    vector of class probabilities (or scores), in the model's class order.
    """

    value: float | str | None = None
    score: float | None = None
    probabilities: tuple[float, ...] | None = None

    @property
    def number(self) -> float:
        """The numeric view: the score, else the numeric value, else the vector's last entry (the
        positive class of a binary model's `[p0, p1]`); NaN when none is a number."""
        if self.score is not None:
            return self.score
        if isinstance(self.value, float):
            return self.value
        if self.probabilities is not None:
            return self.probabilities[-1]
        return float("nan")


@dataclass
class Window:
    """The requests of one monitoring window, one row per predicted item."""

    frame: pd.DataFrame
    predictions: np.ndarray  # one number per row (`Answer.number`), NaN where the response had none
    event_ids: list[str]
    row_in_event: np.ndarray
    inference_times: pd.Series
    lines: int = 0
    files: int = 0
    malformed: int = 0
    problems: list[str] = field(default_factory=list)
    answers: list[Answer | None] = field(default_factory=list)  # one per row, as the model answered

    @property
    def empty(self) -> bool:
        return len(self.frame) == 0


def read(
    source: str | Path,
    features: Sequence[str],
    *,
    s3: Any = None,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    partitions: tuple[dt.datetime, dt.datetime] | None = None,
) -> Window:
    """The window at `source`; only events with `start <= inferenceTime < end` when those are given, and
    only files of the hour partitions in [partitions[0], partitions[1]) when that is given."""
    builder = _Builder(list(features))
    for name, lines in _sources(source, s3, partitions):
        builder.files += 1
        for number, line in enumerate(lines, start=1):
            if line.strip():
                builder.add(line, f"{name}:{number}", start, end)
    return builder.window()


def read_ground_truth(source: str | Path, *, s3: Any = None) -> dict[str, list[float | str]]:
    """Ground-truth labels by event id, from SageMaker's ground-truth JSON lines
    (`{"groundTruthData": {"data": "1", "encoding": "CSV"}, "eventMetadata": {"eventId": ...}}`), one
    label per request row: a number where the label reads as one, else the class label as text."""
    labels: dict[str, list[float | str]] = {}
    for name, lines in _sources(source, s3):
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                event = str(record["eventMetadata"]["eventId"])
                labels[event] = _labels(_decode(record["groundTruthData"]))
            except (ValueError, KeyError, TypeError) as exc:
                raise CaptureError(f"{name}:{number}: not a ground-truth record ({exc})") from None
    return labels


# --- sources ----------------------------------------------------------------------------------------


def _sources(
    source: str | Path, s3: Any, partitions: tuple[dt.datetime, dt.datetime] | None = None
) -> Iterator[tuple[str, Iterable[str]]]:
    text = str(source)
    if text.startswith("s3://"):
        yield from _s3_sources(text, s3, partitions)
        return
    path = Path(source)
    if path.is_file():
        yield str(path), _file_lines(path)
    elif path.is_dir():
        for file in sorted(p for p in path.rglob("*.jsonl") if p.is_file()):
            if partitions is None or _in_window(file.relative_to(path).as_posix(), partitions):
                yield str(file), _file_lines(file)
    else:
        raise CaptureError(f"{path}: no such capture file or folder")


def _file_lines(path: Path) -> Iterator[str]:
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        yield from handle


_HOUR_FOLDER = re.compile(r"(?:^|/)(\d{4})/(\d{2})/(\d{2})/(\d{2})/[^/]+$")
_YEAR = re.compile(r"\d{4}/$")


def hours(partitions: tuple[dt.datetime, dt.datetime]) -> list[str]:
    """`yyyy/mm/dd/hh` of every hour partition in [start, end)."""
    start, end = (t.astimezone(dt.UTC) if t.tzinfo else t.replace(tzinfo=dt.UTC) for t in partitions)
    moment = start.replace(minute=0, second=0, microsecond=0)
    moment += dt.timedelta(hours=1) if moment < start else dt.timedelta(0)
    out = []
    while moment < end:
        out.append(moment.strftime("%Y/%m/%d/%H"))
        moment += dt.timedelta(hours=1)
    return out


def _in_window(relative: str, partitions: tuple[dt.datetime, dt.datetime]) -> bool:
    match = _HOUR_FOLDER.search(relative)
    return bool(match) and "/".join(match.groups()) in set(hours(partitions))


def _s3_sources(
    url: str, s3: Any, partitions: tuple[dt.datetime, dt.datetime] | None = None
) -> Iterator[tuple[str, Iterable[str]]]:
    bucket, _, prefix = url[len("s3://") :].partition("/")
    if not bucket:
        raise CaptureError(f"{url}: expected s3://bucket/prefix")
    if s3 is None:
        import boto3

        s3 = boto3.client("s3")
    paginator = s3.get_paginator("list_objects_v2")
    prefixes = [prefix]
    if partitions is not None:
        # `<endpoint>/` holds a folder per variant, each holding the hours; a variant's prefix the hours
        folder = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        below = [
            p["Prefix"]
            for page in paginator.paginate(Bucket=bucket, Prefix=folder, Delimiter="/")
            for p in page.get("CommonPrefixes", [])
        ]
        variants = [folder] if any(_YEAR.search(p) for p in below) else below
        prefixes = [f"{variant}{hour}/" for variant in variants for hour in hours(partitions)]
    keys = []
    for each in prefixes:
        for page in paginator.paginate(Bucket=bucket, Prefix=each):
            keys.extend(o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(".jsonl"))
    for key in sorted(keys):
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8", errors="replace")
        yield f"s3://{bucket}/{key}", body.splitlines()


# --- decoding ---------------------------------------------------------------------------------------


def _decode(part: dict[str, Any]) -> Any:
    """A capture part's payload: text for CSV, a parsed object for JSON."""
    data = part["data"]
    encoding = str(part.get("encoding", "CSV")).upper()
    content_type = str(part.get("observedContentType", "")).lower()
    if encoding == "BASE64":
        try:
            data = base64.b64decode(data, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, TypeError) as exc:
            raise ValueError(f"BASE64 data does not decode ({exc})") from None
        encoding = "JSON" if "json" in content_type else "CSV"
    if encoding == "JSON":
        return json.loads(data) if isinstance(data, str) else data
    if encoding == "CSV":
        if not isinstance(data, str):
            raise ValueError(f"CSV data must be text, got {type(data).__name__}")
        return data
    raise ValueError(f"unknown encoding {encoding!r}; expected CSV, JSON or BASE64")


def _rows(payload: Any) -> list[list[Any] | dict[str, Any]]:
    """Request rows: lists (positional, in the baseline's order) or dicts (named)."""
    if isinstance(payload, str):
        return [[_cell(v) for v in row] for row in csv.reader(io.StringIO(payload)) if row]
    if isinstance(payload, dict):
        for key in ("instances", "inputs", "data"):
            if key in payload:
                return _rows(payload[key])
        return [payload]
    if isinstance(payload, list):
        if payload and not isinstance(payload[0], (list, dict)):
            return [payload]  # a single row as a flat list
        rows = []
        for item in payload:
            if isinstance(item, dict) and isinstance(item.get("features"), list):
                rows.append(item["features"])
            elif isinstance(item, (list, dict)):
                rows.append(item)
            else:
                raise ValueError(f"a JSON request row must be a list or an object, got {type(item).__name__}")
        return rows
    raise ValueError(f"a JSON request must be an object or a list, got {type(payload).__name__}")


def _answers(payload: Any, rows: int) -> list[Answer | None]:
    """One answer per request row. A single CSV line or flat JSON list of numbers is read against the
    request: as many numbers as rows are one answer each (XGBoost's CSV), several numbers for a single
    row are that row's probability vector."""
    if isinstance(payload, str):
        lines = [row for row in csv.reader(io.StringIO(payload)) if row]
        if len(lines) == 1 and rows > 1 and len(lines[0]) == rows:
            return [_answer(_text(cell)) for cell in lines[0]]
        return [_csv_answer(cells) for cells in lines]
    if isinstance(payload, dict):
        for key in ("predictions", "outputs", "scores", "probabilities"):
            if key in payload:
                return _answers(payload[key], rows)
        return [_answer(payload)]
    if isinstance(payload, list):
        if rows == 1 and len(payload) > 1 and all(_is_number(v) for v in payload):
            return [_answer(payload)]
        return [_answer(v) for v in payload]
    return [_answer(payload)]


def _csv_answer(cells: list[str]) -> Answer | None:
    if len(cells) == 1:
        return _answer(_text(cells[0]))
    parsed = [_text(c) for c in cells]
    if all(isinstance(v, float) for v in parsed):
        return _answer(parsed)
    if isinstance(parsed[0], str) and all(isinstance(v, float) for v in parsed[1:]):
        return Answer(value=parsed[0], probabilities=tuple(parsed[1:]))  # label, then its scores
    raise ValueError(f"a CSV answer of {len(cells)} fields that is neither numbers nor a label and numbers")


def _answer(value: Any) -> Answer | None:
    """An answer from one JSON value or parsed CSV cell; None where the model gave nothing."""
    if isinstance(value, dict):
        return _answer_object(value)
    if isinstance(value, list):
        return Answer(probabilities=_vector(value))
    scalar = _scalar(value)
    return None if scalar is None else Answer(value=scalar)


def _answer_object(value: dict[str, Any]) -> Answer | None:
    if not any(key in value for key in PREDICTION_KEYS):
        raise ValueError(
            f"no prediction in {sorted(value)[:5]}; expected one of {', '.join(PREDICTION_KEYS)}"
        )
    found: dict[str, Any] = {}
    for key in SCORE_KEYS:
        if key in value and value[key] is not None:
            item = value[key]
            slot = "probabilities" if isinstance(item, list) else "score"
            found.setdefault(slot, _vector(item) if slot == "probabilities" else _score(item, key))
    for key in LABEL_KEYS:
        if key in value and value[key] is not None:
            item = value[key]
            if isinstance(item, list):
                found.setdefault("probabilities", _vector(item))
            else:
                found.setdefault("value", _scalar(item))
    found = {k: v for k, v in found.items() if v is not None}
    return Answer(**found) if found else None  # the keys are there, empty: the model answered nothing


def _vector(value: list[Any]) -> tuple[float, ...]:
    if not value:
        raise ValueError("an empty prediction")
    numbers = [_scalar(v) if not isinstance(v, (list, dict)) else v for v in value]
    if not all(isinstance(v, float) for v in numbers):
        raise ValueError(f"a prediction vector must hold numbers, got {value[:5]!r}")
    return tuple(numbers)


def _score(value: Any, key: str) -> float:
    number = _scalar(value)
    if not isinstance(number, float):
        raise ValueError(f"{key!r} must be a number, got {value!r}")
    return number


def _scalar(value: Any) -> float | str | None:
    """A number (float) where the value reads as a finite one, else its text; None for nothing."""
    if value is None:
        return None
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, str):
        return _text(value)
    raise ValueError(f"a prediction must be a number, a text label or a list, got {type(value).__name__}")


def _text(cell: str) -> float | str | None:
    text = cell.strip()
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else None  # "nan" and "inf" answer nothing


def _is_number(value: Any) -> bool:
    return isinstance(_scalar(value), float) if not isinstance(value, (list, dict)) else False


def _labels(payload: Any) -> list[float | str]:
    """Ground-truth labels: one per row, a number where the label reads as one, else its text."""
    if isinstance(payload, str):
        cells = [row[0] for row in csv.reader(io.StringIO(payload)) if row]
    elif isinstance(payload, dict):
        for key in ("labels", "label", "predictions", "outputs"):
            if key in payload:
                return _labels(payload[key])
        raise ValueError(f"no label in {sorted(payload)[:5]}")
    else:
        cells = payload if isinstance(payload, list) else [payload]
    out = []
    for cell in cells:
        if isinstance(cell, (list, dict)):
            raise ValueError(f"a label must be a number or a text, got {type(cell).__name__}")
        label = _scalar(cell)
        if label is None:
            raise ValueError(f"an empty label ({cell!r})")
        out.append(label)
    return out


def _cell(value: str) -> str | None:
    return None if value == "" else value


# --- assembling the window --------------------------------------------------------------------------


class _Builder:
    def __init__(self, features: list[str]):
        self.features = features
        self.rows: list[list[Any] | dict[str, Any]] = []
        self.answers: list[Answer | None] = []
        self.event_ids: list[str] = []
        self.row_in_event: list[int] = []
        self.times: list[str | None] = []
        self.lines = self.files = self.malformed = 0
        self.problems: list[str] = []

    def _problem(self, where: str, text: str) -> None:
        self.malformed += 1
        if len(self.problems) < MAX_EXAMPLES:
            self.problems.append(f"{where}: {text}")

    def add(self, line: str, where: str, start: pd.Timestamp | None, end: pd.Timestamp | None) -> None:
        self.lines += 1
        try:
            record = json.loads(line)
            capture = record["captureData"]
            meta = record.get("eventMetadata") or {}
            rows = _rows(_decode(capture["endpointInput"]))
            output = capture.get("endpointOutput")
            answers = _answers(_decode(output), len(rows)) if output else []
        except json.JSONDecodeError as exc:
            self._problem(where, f"not JSON ({exc.msg} at column {exc.colno})")
            return
        except KeyError as exc:
            self._problem(where, f"not a capture record: no {exc.args[0]!r}")
            return
        except (ValueError, TypeError, AttributeError) as exc:
            self._problem(where, str(exc))
            return
        when = meta.get("inferenceTime")
        if start is not None or end is not None:
            stamp = pd.to_datetime(when, utc=True, errors="coerce") if when else pd.NaT
            if pd.isna(stamp):
                self._problem(
                    where, f"no readable eventMetadata.inferenceTime ({when!r}) to place it in the window"
                )
                return
            if (start is not None and stamp < start) or (end is not None and stamp >= end):
                return
        if not rows:
            self._problem(where, "the request has no rows")
            return
        if answers and len(answers) != len(rows):
            if len(self.problems) < MAX_EXAMPLES:
                self.problems.append(
                    f"{where}: {len(rows)} request rows but {len(answers)} predictions; predictions ignored"
                )
            answers = []
        event = str(meta.get("eventId", where))
        for i, row in enumerate(rows):
            self.rows.append(row)
            self.answers.append(answers[i] if answers else None)
            self.event_ids.append(event)
            self.row_in_event.append(i)
            self.times.append(when)

    def window(self) -> Window:
        return Window(
            frame=self._frame(),
            predictions=np.asarray(
                [a.number if a is not None else np.nan for a in self.answers], dtype=np.float64
            ),
            event_ids=self.event_ids,
            row_in_event=np.asarray(self.row_in_event, dtype=np.int64),
            inference_times=pd.to_datetime(pd.Series(self.times, dtype=object), utc=True, errors="coerce"),
            lines=self.lines,
            files=self.files,
            malformed=self.malformed,
            problems=self.problems,
            answers=self.answers,
        )

    def _name(self, position: int) -> str:
        return self.features[position] if position < len(self.features) else f"_c{position}"

    def _frame(self) -> pd.DataFrame:
        if not self.rows:
            return pd.DataFrame({name: pd.Series([], dtype=object) for name in self.features})
        if all(isinstance(r, list) for r in self.rows):
            width = max(len(r) for r in self.rows)
            rows = [r if len(r) == width else [*r, *([None] * (width - len(r)))] for r in self.rows]
            frame = pd.DataFrame(rows, columns=[self._name(i) for i in range(width)], dtype=object)
        else:
            named = [
                r if isinstance(r, dict) else {self._name(i): v for i, v in enumerate(r)} for r in self.rows
            ]
            frame = pd.DataFrame.from_records(named)
            known = [c for c in self.features if c in frame.columns]
            frame = frame[known + [c for c in frame.columns if c not in self.features]]
        return frame.infer_objects()
