"""Scans of request bodies before any decoder sees them: JSON depth, numbers no model can use, ragged CSV.

The kit's own decoders (`contract`) check every value as they convert it. A script's own input_fn decodes
as it likes (pandas reads `inf`, `1e309` and a quoted `"nan"` as numbers, and pads a short CSV row with
NaN), so before it runs the server reads the body once for what is wrong whoever decodes it:

- JSON nested deeper than a limit (`json.loads` recurses once a bracket: 100,000 of them end in a
  RecursionError). A body can nest no deeper than it has opening brackets, so almost every request is
  cleared by two `bytes.count` calls before any walk.
- `NaN` / `Infinity` outside JSON strings (json.loads takes them; JSON has no such values), and in CSV a
  field (quoted or not) reading `nan`, `inf` or `infinity` in any case and sign.
- A number beyond a double's range (`1e309`): exactly, by comparing its digits with the smallest decimal
  that rounds to infinity, 2^1024 - 2^970.
- CSV rows of different widths, counting fields outside quotes; blank lines are skipped, as pandas and
  `contract.decode_csv` do.

The loops are compiled with numba, like `csvparse` (about a nanosecond a byte); without numba the same
functions run as plain Python on `bytes`, slower and with the same answers (the tests hold both equal).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

log = logging.getLogger("mlops_kit.serving")

OK, RAGGED, OVERFLOW, NOT_FINITE, TOO_DEEP = 0, 1, 2, 3, 4
# The digits of the smallest decimal that a double rounds to infinity (2^1024 - 2^970, 309 digits): a
# number of 309 integer digits overflows exactly when its digits reach these.
_MIDPOINT = str(2**1024 - 2**970)
_kernels: Any = None  # {name: compiled scan}; False once numba proved unavailable


# The scans, as plain Python that numba compiles (`_compiled`). They take the body as a uint8 array, or
# as `bytes` when they run uncompiled; both index to small integers.


def _depth(buf, limit):
    """Offset of the bracket that nests deeper than `limit` (brackets in strings do not count), or -1."""
    level = 0
    in_string = False
    escaped = False
    for i in range(len(buf)):
        c = buf[i]
        if in_string:
            if escaped:
                escaped = False
            elif c == 92:  # backslash
                escaped = True
            elif c == 34:  # "
                in_string = False
        elif c == 34:
            in_string = True
        elif c == 91 or c == 123:  # [ {
            level += 1
            if level > limit:
                return i
        elif c == 93 or c == 125:  # ] }
            level -= 1
    return -1


def _classify(buf, p, q, mid):
    """buf[p:q] (spaces around it and one pair of quotes ignored): NOT_FINITE for nan/inf/infinity,
    OVERFLOW for a number beyond a double's range, OK for anything else (a number or not)."""
    while p < q and (buf[p] == 32 or buf[p] == 9):
        p += 1
    while q > p and (buf[q - 1] == 32 or buf[q - 1] == 9 or buf[q - 1] == 13):
        q -= 1
    if q - p >= 2 and buf[p] == 34 and buf[q - 1] == 34:
        p += 1
        q -= 1
    if p < q and (buf[p] == 43 or buf[p] == 45):  # + -
        p += 1
    n = q - p
    if n == 3 or n == 8:
        low = buf[p] | 32  # ASCII lower case (for letters; other bytes only fail to match below)
        if n == 3 and low == 110 and (buf[p + 1] | 32) == 97 and (buf[p + 2] | 32) == 110:  # nan
            return 3
        if low == 105 and (buf[p + 1] | 32) == 110 and (buf[p + 2] | 32) == 102:  # inf...
            if n == 3:
                return 3
            rest = (105, 110, 105, 116, 121)  # "inity"
            same = True
            for k in range(5):
                if (buf[p + 3 + k] | 32) != rest[k]:
                    same = False
            if same:
                return 3
    # [digits][.digits][(e|E)[sign]digits], at least one digit before the exponent
    i = p
    integer = 0  # integer digits
    first = -1  # decimal exponent of the first significant digit, once seen
    start = -1  # where that digit is
    while i < q and 48 <= buf[i] <= 57:
        if first < 0 and buf[i] != 48:
            first = integer
            start = i
        integer += 1
        i += 1
    digits = integer
    e10 = 0
    if first >= 0:
        e10 = integer - 1 - first
    if i < q and buf[i] == 46:  # .
        i += 1
        fraction = 0
        while i < q and 48 <= buf[i] <= 57:
            fraction += 1
            if first < 0 and buf[i] != 48:
                first = 0
                start = i
                e10 = -fraction
            i += 1
        digits += fraction
    if digits == 0:
        return 0
    end = i  # the digits end here
    if i < q and (buf[i] == 101 or buf[i] == 69):  # e E
        i += 1
        sign = 1
        if i < q and (buf[i] == 43 or buf[i] == 45):
            sign = -1 if buf[i] == 45 else 1
            i += 1
        if i == q:
            return 0
        power = 0
        while i < q and 48 <= buf[i] <= 57:
            if power < 100000:
                power = power * 10 + (buf[i] - 48)
            i += 1
        e10 += sign * power
    if i != q or start < 0:
        return 0  # not a number, or zero
    if e10 != 308:
        return 2 if e10 > 308 else 0
    k = 0
    i = start
    while k < len(mid):
        while i < end and buf[i] == 46:
            i += 1
        if i == end:  # the number's digits ran out: below the midpoint unless the rest of it is 0s
            while k < len(mid):
                if mid[k] != 0:
                    return 0
                k += 1
            return 2
        d = buf[i] - 48
        if d != mid[k]:
            return 2 if d > mid[k] else 0
        i += 1
        k += 1
    return 2  # at or past the midpoint


def _scan_csv(buf, mid):
    """(code, row, column, start, end, fields, width): the first ragged row or unusable field."""
    n = len(buf)
    row = 0
    width = -1
    i = 0
    while i < n:
        fields = 0
        blank = True
        in_quote = False
        field = i
        while i < n:
            c = buf[i]
            if in_quote:
                if c == 34:
                    if i + 1 < n and buf[i + 1] == 34:
                        i += 1  # "" inside quotes
                    else:
                        in_quote = False
            elif c == 34 and i == field:  # a quote opens a field only as its first byte, as in pandas
                in_quote = True
                blank = False
            elif c == 44 or c == 10:  # , or the end of the line
                if c == 44:
                    blank = False
                found = _classify(buf, field, i, mid)
                if found != 0:
                    return found, row + 1, fields + 1, field, i, 0, 0
                fields += 1
                field = i + 1
                if c == 10:
                    break
            elif c != 32 and c != 9 and c != 13:
                blank = False
            i += 1
        if i >= n:  # the last line has no newline
            found = _classify(buf, field, n, mid)
            if found != 0:
                return found, row + 1, fields + 1, field, n, 0, 0
            fields += 1
        if not blank:
            row += 1
            if width < 0:
                width = fields
            elif fields != width:
                return 1, row, 0, 0, 0, fields, width
        i += 1
    return 0, 0, 0, 0, 0, 0, 0


def _scan_json(buf, mid, limit):
    """(code, start, end): the first bracket nesting past `limit`, NaN/Infinity, or overflowing number."""
    n = len(buf)
    level = 0
    in_string = False
    escaped = False
    i = 0
    while i < n:
        c = buf[i]
        if in_string:
            if escaped:
                escaped = False
            elif c == 92:
                escaped = True
            elif c == 34:
                in_string = False
        elif c == 34:
            in_string = True
        elif c == 91 or c == 123:
            level += 1
            if level > limit:
                return 4, i, i + 1
        elif c == 93 or c == 125:
            level -= 1
        elif c == 45 or 48 <= c <= 57:  # a number
            j = i + 1
            while j < n and (
                48 <= buf[j] <= 57 or buf[j] == 43 or buf[j] == 45 or buf[j] == 46 or buf[j] | 32 == 101
            ):
                j += 1
            if _classify(buf, i, j, mid) == 2:
                return 2, i, j
            i = j
            continue
        elif c == 78 or c == 73:  # N I: NaN, Infinity (json.loads takes them; JSON has neither)
            j = i
            while j < n and (65 <= buf[j] <= 90 or 97 <= buf[j] <= 122):
                j += 1
            if _classify(buf, i, j, mid) == 3:
                return 3, i - 1 if i > 0 and buf[i - 1] == 45 else i, j
            i = j
            continue
        i += 1
    return 0, 0, 0


_PYTHON = {"depth": _depth, "classify": _classify, "csv": _scan_csv, "json": _scan_json}
_MID_BYTES = bytes(int(d) for d in _MIDPOINT)
_MID_ARRAY = np.frombuffer(_MID_BYTES, dtype=np.uint8)


def _compiled() -> dict[str, Any] | None:
    """The scans compiled (numba's cache keeps the build across processes), or None without numba."""
    global _kernels
    if _kernels is None:
        try:
            from numba import njit

            jit = njit(cache=True, nogil=True)
            # The scans call `_classify` by its global name: numba compiles the call against whatever
            # that name holds, so it must hold the compiled one before they compile.
            globals()["_classify"] = jit(_PYTHON["classify"])
            _kernels = {name: jit(_PYTHON[name]) for name in ("depth", "csv", "json")}
        except Exception as exc:  # numba missing or unable to build here: the same code, interpreted
            _interpreted(exc)
    return _kernels or None


def _interpreted(exc: Exception) -> None:
    global _kernels
    log.warning("compiled body scans unavailable (%s: %s); scanning in Python", type(exc).__name__, exc)
    globals()["_classify"] = _PYTHON["classify"]
    _kernels = False


def _call(name: str, body: bytes, *args: Any) -> Any:
    """Scan `name` over `body`; the csv and json scans get the midpoint digits first."""
    kernels = _compiled()
    if kernels is not None:
        try:
            mid = (_MID_ARRAY,) if name != "depth" else ()
            return kernels[name](np.frombuffer(body, dtype=np.uint8), *mid, *args)
        except Exception as exc:  # a build that fails at its first call: interpret from now on
            _interpreted(exc)
    return _PYTHON[name](body, *((_MID_BYTES,) if name != "depth" else ()), *args)


def too_deep(body: bytes, limit: int) -> int:
    """The offset of the bracket that nests deeper than `limit`, or -1 when the body stays within it."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return -1
    return int(_call("depth", body, limit))


def scan_csv(body: bytes) -> tuple[int, ...]:
    """(code, row, column, start, end, fields, width) of the first problem; code OK if there is none."""
    return tuple(int(v) for v in _call("csv", body))


def scan_json(body: bytes, limit: int) -> tuple[int, int, int]:
    """(code, start, end) of the first problem: TOO_DEEP, NOT_FINITE or OVERFLOW; code OK if none."""
    code, start, end = _call("json", body, limit)
    return int(code), int(start), int(end)


def warm() -> None:
    """Compile (or load numba's cached build) now rather than in a request's latency."""
    too_deep(b"[[]]", 1)
    scan_csv(b"1\n")
    scan_json(b"[1]", 1)
