"""A compiled parser for the CSV bodies servers see most: plain decimal numbers, one row per line.

Turning text into floats is most of what a CSV request costs the server besides the model: numpy and
Python both take about 100 ns a number, 50-90 microseconds for a 100-row request. This loop (numba)
reads the bytes once, checks that every row has the same number of fields, and converts each number
exactly: a number with at most 15 significant digits and a power of ten within 10^±22 is one IEEE
multiplication or division of two exact doubles, which is correctly rounded (Clinger's fast path), so
the result is the same double Python's `float()` gives. Anything else (more digits, `nan`, `inf`,
spaces, a bad byte, ragged rows) returns None and the caller's careful path decides, with its exact
error message: this module only ever makes the common case faster, never changes an answer.

An empty field is a missing value (NaN), as in the careful path; blank lines are skipped.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

log = logging.getLogger("mlops_kit.serving")
_parse: Any = None  # the compiled kernel; False once it proved unavailable
# 10^0 .. 10^22 are exact doubles: the whole table Clinger's fast path may use
_POWERS = np.array([10.0**i for i in range(23)], dtype=np.float64)


def _kernel() -> Any:
    global _parse
    if _parse is not None:
        return _parse
    from numba import njit

    @njit(cache=True, nogil=True)
    def number(buf, p, q, powers):  # pragma: no cover - compiled
        """The field buf[p:q] as a double, and whether it was a plain decimal number we convert exactly."""
        negative = False
        if buf[p] == 45 or buf[p] == 43:  # - or +
            negative = buf[p] == 45
            p += 1
        mantissa = 0
        digits = 0  # significant digits, leading zeros not counted
        exponent = 0
        seen = False
        while p < q and 48 <= buf[p] <= 57:
            digits += mantissa > 0 or buf[p] != 48
            mantissa = mantissa * 10 + (buf[p] - 48)  # may wrap past 18 digits: refused below
            seen = True
            p += 1
        if p < q and buf[p] == 46:  # .
            p += 1
            while p < q and 48 <= buf[p] <= 57:
                digits += mantissa > 0 or buf[p] != 48
                mantissa = mantissa * 10 + (buf[p] - 48)
                exponent -= 1
                seen = True
                p += 1
        if not seen:
            return 0.0, False
        if p < q and (buf[p] == 101 or buf[p] == 69):  # e or E
            p += 1
            sign = 1
            if p < q and (buf[p] == 45 or buf[p] == 43):
                sign = -1 if buf[p] == 45 else 1
                p += 1
            if p == q:
                return 0.0, False
            power = 0
            while p < q and 48 <= buf[p] <= 57:
                if power < 100000:
                    power = power * 10 + (buf[p] - 48)
                p += 1
            exponent += sign * power
        if p != q or digits > 15:
            return 0.0, False  # trailing bytes, or more digits than a double holds exactly
        if mantissa == 0:
            value = 0.0
        elif exponent > 22 or exponent < -22:
            return 0.0, False
        elif exponent >= 0:
            value = float(mantissa) * powers[exponent]
        else:
            value = float(mantissa) / powers[-exponent]
        return (-value if negative else value), True

    @njit(cache=True, nogil=True)
    def parse(buf, powers):  # pragma: no cover - runs compiled; tested through parse() against float()
        n = buf.shape[0]
        # pass 1: rows (non-blank lines, a trailing CR dropped) and their width, which must not vary
        rows = 0
        width = -1
        i = 0
        while i < n:
            j = i
            commas = 0
            while j < n and buf[j] != 10:
                commas += buf[j] == 44
                j += 1
            end = j - 1 if j > i and buf[j - 1] == 13 else j
            if end > i:
                if width < 0:
                    width = commas + 1
                elif commas + 1 != width:
                    return np.empty((0, 0)), False
                rows += 1
            i = j + 1
        if rows == 0:
            return np.empty((0, 0)), False
        out = np.empty((rows, width))
        # pass 2: the numbers; an empty field is missing (NaN)
        r = 0
        i = 0
        while i < n:
            j = i
            while j < n and buf[j] != 10:
                j += 1
            end = j - 1 if j > i and buf[j - 1] == 13 else j
            if end > i:
                col = 0
                p = i
                while True:
                    q = p
                    while q < end and buf[q] != 44:
                        q += 1
                    if q == p:
                        out[r, col] = np.nan
                    else:
                        value, ok = number(buf, p, q, powers)
                        if not ok:
                            return out, False
                        out[r, col] = value
                    col += 1
                    if q >= end:
                        break
                    p = q + 1
                r += 1
            i = j + 1
        return out, True

    _parse = parse
    return _parse


def warm() -> None:
    """Compile (or load numba's cached build) now rather than on the first request."""
    parse(b"0\n")


def parse(body: bytes) -> np.ndarray | None:
    """The body's rows as a float array, or None when the careful path must decide."""
    global _parse
    if _parse is False:
        return None
    try:
        kernel = _kernel()
    except Exception as exc:  # numba missing or unable to build here: everything takes the careful path
        log.warning(
            "compiled CSV parser unavailable (%s: %s); CSV takes the careful path", type(exc).__name__, exc
        )
        _parse = False
        return None
    values, ok = kernel(np.frombuffer(body, dtype=np.uint8), _POWERS)
    return values if ok else None
