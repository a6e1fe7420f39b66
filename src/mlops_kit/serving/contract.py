"""SageMaker's inference contract as pure functions: content types, default handlers, errors.

SageMaker's scikit-learn container serves `code/inference.py` from a model directory and falls back to
its default handlers for whatever the script lacks: `input_fn` decodes CSV, JSON or NPY into a numpy
array, `predict_fn` calls `model.predict`, `output_fn` encodes the prediction as the `Accept` type asks.
These are those defaults, made strict: a malformed body, a non-numeric or non-finite value or a ragged
row is an `InferenceError` with status 400 that says which row and column, instead of a 500 from deep
inside numpy (or a 200 with a prediction made from `inf`). A missing value is NaN, and is said so: an
empty CSV field, a JSON `null`, a NaN in an NPY array; the literals `nan`, `inf`, `NaN`, `Infinity` and
numbers beyond a double's range (`1e309`) are refused. `screen` holds the checks every body gets before
any input_fn, the container's or a script's: no NUL byte in a text body, no JSON nested past
`MAX_JSON_DEPTH`. Nothing here does I/O, so every rule is tested without a server.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from mlops_kit.serving import bodyscan, csvparse

CSV = "text/csv"
JSON = "application/json"
NPY = "application/x-npy"
DECODABLE = (CSV, JSON, NPY)
ENCODABLE = (JSON, CSV, NPY)
DEFAULT_ACCEPT = JSON  # what the SageMaker scikit-learn container answers when Accept says nothing
# Rows are 3 levels deep ({"instances": [[...]]}); 64 leaves any script's own layout room and stays far
# below the interpreter's recursion limit (1,000 frames), where json.loads would fail with a RecursionError.
MAX_JSON_DEPTH = 64
_LARGEST = float(np.finfo(np.float64).max)


class InferenceError(Exception):
    """A request the handler refuses: carries the HTTP status and a reason for the caller."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


class UnsupportedContentType(InferenceError):
    def __init__(self, content_type: str, supported: Sequence[str] = DECODABLE):
        shown = content_type or "(none)"
        super().__init__(415, f"content type {shown} is not supported; send one of {', '.join(supported)}")


class NotAcceptable(InferenceError):
    def __init__(self, accept: str, supported: Sequence[str] = ENCODABLE):
        super().__init__(406, f"cannot answer in {accept}; accept one of {', '.join(supported)}")


class BadInput(InferenceError):
    def __init__(self, reason: str):
        super().__init__(400, reason)


class NotFinite(BadInput):
    """`nan` / `inf` written out, or a number that overflows a double (`text` empty: not known any more)."""

    def __init__(self, where: str, text: str = ""):
        if text.strip().lstrip("+-").lower() in ("inf", "infinity", "nan"):
            why = f"{text[:40]!r} is not a finite number (leave a missing value empty, or null in JSON)"
        else:
            shown = f"{text[:40]!r}" if len(text) <= 40 else f"{text[:20]!r}... ({len(text)} characters)"
            why = f"{shown if text else 'a number'} is beyond the range of a double (+-{_LARGEST:.4g})"
        super().__init__(f"{where}: {why}")


def media_type(header: str | None) -> str:
    """`text/CSV; charset=utf-8` -> `text/csv`."""
    return (header or "").split(";", 1)[0].strip().lower()


def choose_accept(
    header: str | None, supported: Sequence[str] = ENCODABLE, default: str = DEFAULT_ACCEPT
) -> str:
    """The response type for an `Accept` header: the client's most preferred type that we can produce.

    Missing, empty or `*/*` gives `default`; `text/*` matches `text/csv`; `q=0` excludes a type.
    Raises `NotAcceptable` when nothing the client accepts can be produced.
    """
    if not header or not header.strip():
        return default
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        pieces = part.split(";")
        kind = pieces[0].strip().lower()
        quality = 1.0
        for param in pieces[1:]:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if kind and quality > 0:
            ranked.append((-quality, position, kind))
    for _, _, kind in sorted(ranked):
        if kind == "*/*":
            return default if default in supported else supported[0]
        if kind.endswith("/*"):
            family = kind[:-1]
            match = [
                s
                for s in ([default] if default in supported else []) + list(supported)
                if s.startswith(family)
            ]
            if match:
                return match[0]
        elif kind in supported:
            return kind
    raise NotAcceptable(header, supported)


def _ranges(header: str) -> list[tuple[str, float]]:
    """An Accept header's media ranges with their quality, in the order sent."""
    ranges = []
    for part in header.split(","):
        pieces = part.split(";")
        quality = 1.0
        for param in pieces[1:]:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if kind := pieces[0].strip().lower():
            ranges.append((kind, quality))
    return ranges


def accepts(header: str | None, content_type: str) -> bool:
    """Whether an answer of `content_type` is one the `Accept` header takes (the most specific range
    that matches decides, so `text/*, text/csv;q=0` refuses CSV). No header takes anything."""
    if not header or not header.strip():
        return True
    kind = media_type(content_type)
    family = kind.split("/", 1)[0] + "/*"
    rank = {kind: 3, family: 2, "*/*": 1}
    best = (0, 0.0)  # (specificity, quality)
    for media_range, quality in _ranges(header):
        specificity = rank.get(media_range, 0)
        if specificity > best[0]:
            best = (specificity, quality)
    return best[1] > 0


# --- what every body gets, before any input_fn ------------------------------------------------------


def screen(body: bytes, content_type: str) -> None:
    """What a body must pass before a script's own input_fn decodes it: the kit's decoders refuse the
    same as they convert (`decode_csv`, `decode_json`). No NUL byte in a text body; JSON no deeper than
    `MAX_JSON_DEPTH`, and no `NaN` / `Infinity` or number beyond a double's range outside its strings; CSV
    rows of one width, and no field reading `nan` / `inf` or beyond a double's range (`bodyscan`).
    Binary bodies pass as sent.
    """
    kind = media_type(content_type)
    json_like = "json" in kind
    if not (json_like or kind.startswith("text/")):
        return
    _no_nul(body, kind)
    if json_like:
        code, start, end = bodyscan.scan_json(body, MAX_JSON_DEPTH)
        if code == bodyscan.TOO_DEEP:
            raise _too_deep(start)
        if code != bodyscan.OK:
            raise NotFinite(f"the JSON body, byte {start}", body[start:end].decode("latin-1"))
    elif kind == CSV:
        code, row, column, start, end, fields, width = bodyscan.scan_csv(body)
        if code == bodyscan.RAGGED:
            raise BadInput(f"CSV row {row} has {fields} columns, row 1 has {width}")
        if code != bodyscan.OK:
            text = body[start:end].decode("utf-8", "replace").strip()
            raise NotFinite(f"CSV row {row}, column {column}", text)


def _no_nul(body: bytes | str, kind: str) -> None:
    nul = body.find(b"\x00" if isinstance(body, bytes) else "\x00")
    if nul >= 0:
        raise BadInput(f"the {kind} body holds a NUL byte (byte {nul}); it must be text")


def _too_deep(at: int) -> BadInput:
    return BadInput(
        f"the JSON body nests deeper than {MAX_JSON_DEPTH} levels (byte {at}); rows are lists of numbers"
    )


# --- decoding (the container's default input_fn) ---------------------------------------------------


def default_input_fn(body: bytes | str, content_type: str) -> Any:
    """Decode a request body into a 2-D float array (or, for JSON records, a DataFrame)."""
    kind = media_type(content_type)
    if kind == CSV:
        return decode_csv(body)
    if kind == JSON:
        return decode_json(body)
    if kind == NPY:
        return decode_npy(body)
    raise UnsupportedContentType(content_type)


def _text(body: bytes | str, what: str) -> str:
    if isinstance(body, str):
        return body
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(f"the {what} body is not UTF-8 text (byte {exc.start})") from None


def decode_csv(body: bytes | str) -> np.ndarray:
    """CSV without a header, one row per line, into a float array; an empty field is NaN (missing)."""
    if isinstance(body, bytes) and (parsed := csvparse.parse(body)) is not None:
        return parsed  # plain decimal numbers: the compiled parser, same doubles as float()
    _no_nul(body, CSV)  # (the compiled parser takes digits only: a body with a NUL is always here)
    text = _text(body, "CSV")
    lines = [line for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n") if line.strip()]
    if not lines:
        raise BadInput("the CSV body has no rows")
    rows = [line.split(",") for line in lines]
    width = len(rows[0])
    for number, row in enumerate(rows, start=1):
        if len(row) != width:
            raise BadInput(f"CSV row {number} has {len(row)} columns, row 1 has {width}")
    try:
        values = np.array(rows, dtype=np.float64)  # numpy parses the numbers in C: the fast path
    except ValueError:
        pass
    else:  # no field was empty here, so every NaN or infinity was written as such (nan, inf, 1e309)
        if not np.isfinite(values).all():
            r, c = np.argwhere(~np.isfinite(values))[0]
            raise NotFinite(f"CSV row {r + 1}, column {c + 1}", rows[r][c].strip())
        return values
    # Slow path, only for bodies with an empty field or a bad value: find it, or fill NaN for empties.
    values = np.empty((len(rows), width), dtype=np.float64)
    for r, row in enumerate(rows):
        for c, field in enumerate(row):
            stripped = field.strip()
            if not stripped:
                values[r, c] = math.nan
                continue
            try:
                value = float(stripped)
            except ValueError:
                hint = " (text/csv takes no header row)" if r == 0 else ""
                raise BadInput(
                    f"CSV row {r + 1}, column {c + 1}: {stripped[:40]!r} is not a number{hint}"
                ) from None
            if not math.isfinite(value):
                raise NotFinite(f"CSV row {r + 1}, column {c + 1}", stripped)
            values[r, c] = value
    return values


def decode_json(body: bytes | str) -> Any:
    """JSON rows: `[[...], ...]`, one row `[...]`, `{"instances": ...}`, or records `[{"col": v}, ...]`."""
    raw = body if isinstance(body, bytes) else body.encode()
    if (at := bodyscan.too_deep(raw, MAX_JSON_DEPTH)) >= 0:  # before json.loads recurses into it
        raise _too_deep(at)
    text = _text(body, "JSON")
    try:
        document = _DECODER.decode(text)
    except ValueError as exc:
        _no_nul(text, JSON)  # a NUL is never valid JSON: name it rather than the parser's complaint
        raise BadInput(f"the JSON body is malformed: {exc}") from None
    if isinstance(document, dict):
        if "instances" not in document:
            keys = ", ".join(sorted(map(str, document))[:5]) or "none"
            raise BadInput(f'a JSON object body needs an "instances" list; it has keys: {keys}')
        document = document["instances"]
    if not isinstance(document, list) or not document:
        raise BadInput('the JSON body holds no rows: send a list of rows, or {"instances": [...]}')
    if all(isinstance(item, dict) for item in document):
        return _records(document)
    if all(not isinstance(item, (list, dict)) for item in document):
        document = [document]  # a single row
    width = len(document[0]) if type(document[0]) is list else -1
    for number, row in enumerate(document, start=1):
        if type(row) is not list:
            raise BadInput(f"JSON row {number} is {type(row).__name__}, expected a list of numbers")
        if len(row) != width:
            raise BadInput(f"JSON row {number} has {len(row)} values, row 1 has {width}")
        if not _NUMBER_TYPES.issuperset(map(type, row)):  # a row at a time in C; the culprit only if any
            for column, value in enumerate(row, start=1):
                if type(value) not in _NUMBER_TYPES:
                    raise BadInput(f"JSON row {number}, column {column}: {value!r} is not a number")
        if math.inf in row or -math.inf in row:  # an overflow (1e309): the constants were refused
            column = next(i for i, v in enumerate(row, start=1) if v in (math.inf, -math.inf))
            raise NotFinite(f"JSON row {number}, column {column}")
    try:
        return np.array(document, dtype=np.float64)  # a null is NaN: a missing value
    except OverflowError:  # an integer past a double's range
        for number, row in enumerate(document, start=1):
            for column, value in enumerate(row, start=1):
                if math.isinf(_bounded(value)):
                    raise NotFinite(f"JSON row {number}, column {column}") from None
        raise


_NUMBER_TYPES = frozenset((int, float, type(None)))  # bool, a subclass of int, is not among them


def _refuse_constant(name: str) -> Any:
    raise NotFinite("the JSON body", name)


# json.loads with its default decoder but for the constants NaN, Infinity and -Infinity (not JSON, and
# not numbers a model can use): one decoder, made once, is as fast as json.loads.
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


def _bounded(value: Any) -> Any:
    """An integer beyond a double's range as infinity, anything else as it is."""
    if isinstance(value, int) and not -_LARGEST <= value <= _LARGEST:
        return math.inf
    return value


def _records(records: list[dict[str, Any]]) -> Any:
    import pandas as pd

    for number, record in enumerate(records, start=1):
        for name, value in record.items():
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float, str))):
                raise BadInput(f"JSON record {number}, field {name!r}: {value!r} is not a scalar")
            if isinstance(value, (int, float)) and math.isinf(_bounded(value)):
                raise NotFinite(f"JSON record {number}, field {name!r}")
    return pd.DataFrame.from_records(records)


def decode_npy(body: bytes | str) -> np.ndarray:
    if isinstance(body, str):
        raise BadInput("an NPY body must be binary")
    try:
        array = np.load(io.BytesIO(body), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise BadInput(f"the NPY body is malformed: {exc}") from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf":
        what = array.dtype if isinstance(array, np.ndarray) else type(array).__name__
        raise BadInput(f"the NPY body holds {what} values; send an array of numbers")
    if array.size == 0:
        raise BadInput(f"the NPY body holds no values (shape {array.shape})")
    if array.dtype.kind == "f" and np.isinf(array).any():  # NaN stands for a missing value, as in CSV
        at = tuple(int(i) for i in np.argwhere(np.isinf(array))[0])
        raise BadInput(f"the NPY array holds {array[at]} at index {at}; values must be finite")
    return array.reshape(1, -1) if array.ndim == 1 else array


def check_columns(data: Any, model: Any) -> Any:
    """Refuse rows whose width or columns differ from what the model was fitted on (400, not 500)."""
    expected = getattr(model, "n_features_in_", None)
    names = getattr(model, "feature_names_in_", None)
    if hasattr(data, "columns"):  # a DataFrame from JSON records
        if names is not None:
            missing = [n for n in names if n not in data.columns]
            if missing:
                raise BadInput(f"records lack the model's feature(s): {', '.join(map(str, missing))}")
            return data[list(names)]
        if expected is not None and data.shape[1] != expected:
            raise BadInput(f"records have {data.shape[1]} fields, the model expects {expected}")
        return data
    if isinstance(data, np.ndarray):
        if data.ndim != 2:
            raise BadInput(f"expected rows of numbers (2 dimensions), got {data.ndim} dimension(s)")
        if expected is not None and data.shape[1] != expected:
            raise BadInput(f"rows have {data.shape[1]} columns, the model expects {expected}")
        # Rows without a header are positional: column i is feature i, so the array goes to the model as
        # it is. Wrapping it in a DataFrame would only buy a name check that costs more than the predict.
    return data


# --- predicting and encoding (the container's default predict_fn and output_fn) ----------------------


def default_predict_fn(data: Any, model: Any) -> Any:
    return model.predict(data)


def default_output_fn(prediction: Any, accept: str) -> tuple[bytes, str]:
    """Encode a prediction as `accept` (already chosen by `choose_accept`)."""
    kind = media_type(accept)
    if kind == JSON:
        return encode_json(prediction), JSON
    if kind == CSV:
        return encode_csv(prediction), CSV
    if kind == NPY:
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(prediction), allow_pickle=False)
        return buffer.getvalue(), NPY
    raise NotAcceptable(accept)


def _plain(prediction: Any) -> Any:
    if hasattr(prediction, "tolist"):
        return prediction.tolist()
    if hasattr(prediction, "to_numpy"):
        return prediction.to_numpy().tolist()
    return prediction


def encode_json(prediction: Any) -> bytes:
    return json.dumps(_plain(prediction), separators=(",", ":")).encode()


def encode_csv(prediction: Any) -> bytes:
    """One line per row: a 1-D prediction gives one value a line, a 2-D one comma-joined rows."""
    values = _plain(prediction)
    if not isinstance(values, list):
        values = [values]
    lines = [",".join(map(_cell, row)) if isinstance(row, list) else _cell(row) for row in values]
    return ("\n".join(lines) + "\n").encode()


def _cell(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)
