"""The body scans a script's input_fn is guarded by: exact at a double's range, and the same compiled or not."""

from __future__ import annotations

import math
import random

import pytest

from mlops_kit.serving import bodyscan
from mlops_kit.serving.bodyscan import NOT_FINITE, OK, OVERFLOW, RAGGED, TOO_DEEP

MIDPOINT = 2**1024 - 2**970  # the smallest decimal a double rounds to infinity


def compiled_and_python(name: str, body: bytes, *args):
    """The scan's answer, checked equal between numba's build and the plain Python it is built from."""
    compiled = bodyscan._call(name, body, *args)
    python = bodyscan._PYTHON[name](body, *((bodyscan._MID_BYTES,) if name != "depth" else ()), *args)
    assert tuple(compiled) == tuple(python) if isinstance(python, tuple) else compiled == python
    return compiled


def number(text: str) -> int:
    code = compiled_and_python("csv", text.encode())[0]
    assert code in (OK, OVERFLOW, NOT_FINITE)
    return code


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (str(MIDPOINT - 1), OK),  # the largest integer that still rounds to the largest double
        (str(MIDPOINT), OVERFLOW),
        ("1.7976931348623157e308", OK),  # repr of the largest double
        ("1.7976931348623158e308", OK),  # below the midpoint 1.797693134862315807937...e308
        ("1.797693134862315807937e308", OK),
        ("1.797693134862315807938e308", OVERFLOW),
        ("1.8e308", OVERFLOW),
        ("1e309", OVERFLOW),
        ("-1E+309", OVERFLOW),
        ("0.0001e313", OVERFLOW),
        ("0.0001e312", OK),  # 1e308
        ("000179769313486231580793e288", OK),  # its digits end below the midpoint's
        ("000179769313486231580794e288", OVERFLOW),
        (" 1e309 ", OVERFLOW),
        ('"1e309"', OVERFLOW),  # pandas reads a quoted number as a number
        ("1e-400", OK),  # underflows to 0: finite
        ("0e999999", OK),
        ("1e99999999999", OVERFLOW),
        ("inf", NOT_FINITE),
        ("-Infinity", NOT_FINITE),
        ("+INF", NOT_FINITE),
        ("NaN", NOT_FINITE),
        ('"nan"', NOT_FINITE),
        ("nana", OK),  # a word, not a number: the decoder decides
        ("infinite", OK),
        ("12.5", OK),
        ("", OK),
    ],
)
def test_numbers_are_judged_exactly_at_a_doubles_range(text: str, code: int) -> None:
    assert number(text) == code


def test_overflow_agrees_with_float_on_random_numbers_near_the_limit() -> None:
    rng = random.Random(7)
    for _ in range(400):
        mantissa = f"{rng.randint(1, 9)}.{rng.randint(0, 10 ** rng.randint(1, 20))}"
        exponent = rng.choice([307, 308, 308, 308, 309])
        text = f"{'-' if rng.random() < 0.5 else ''}{mantissa}e{exponent}"
        assert (number(text) == OVERFLOW) == math.isinf(float(text)), text


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"1,2,3\n4,5,6\n", (OK, 0, 0)),
        (b"1,2,3\n\n  \r\n4,5,6", (OK, 0, 0)),  # blank lines are skipped, as pandas does
        (b"1,,3\n4,5,\n", (OK, 0, 0)),  # empty fields are missing values
        (b"amount,kind\n1,a\n", (OK, 0, 0)),  # words are the decoder's to judge
        (b'1,"a,b"\n2,c\n', (OK, 0, 0)),  # a quoted comma is not a field separator
        (b'1,"a\nb"\n2,c\n', (OK, 0, 0)),  # nor a quoted newline a row
        (b'1"2,3"4,5\n6,7,8\n', (OK, 0, 0)),  # quotes inside a field are characters, not quoting
        (b"1,2,3\n4,5\n", (RAGGED, 2, 0)),
        (b"1,2\n\n4,5,6\n", (RAGGED, 2, 0)),  # rows count without blank lines
        (b"1,2,3\n4,inf,6\n", (NOT_FINITE, 2, 2)),
        (b'1,"-Inf"\n', (NOT_FINITE, 1, 2)),
        (b"1e309,2\n", (OVERFLOW, 1, 1)),
    ],
)
def test_csv_scan_finds_the_first_problem(body: bytes, expected: tuple[int, int, int]) -> None:
    code, row, column, *_ = compiled_and_python("csv", body)
    assert (code, row, column) == expected


def test_ragged_rows_report_both_widths() -> None:
    assert compiled_and_python("csv", b"1,2,3\n4,5\n")[5:] == (2, 3)


@pytest.mark.parametrize(
    ("body", "code", "token"),
    [
        (b'{"instances": [[1, 2.5e3, -4, null]]}', OK, b""),
        (b'[{"name": "NaN", "x": "Infinity 1e999"}]', OK, b""),  # inside strings: text
        (b'["a \\" NaN", 1]', OK, b""),  # an escaped quote does not end the string
        (b"[1, NaN]", NOT_FINITE, b"NaN"),
        (b"[1, -Infinity]", NOT_FINITE, b"-Infinity"),
        (b'{"a": Infinity}', NOT_FINITE, b"Infinity"),
        (b"[[1, 1e309]]", OVERFLOW, b"1e309"),
        (b"[-2E+308]", OVERFLOW, b"-2E+308"),
        (b"[1.7976931348623157e308]", OK, b""),
    ],
)
def test_json_scan_finds_non_numbers_outside_strings(body: bytes, code: int, token: bytes) -> None:
    found, start, end = compiled_and_python("json", body, 64)
    assert found == code
    if code:
        assert body[start:end] == token


@pytest.mark.parametrize("opener", [b"[", b'{"a":'])
def test_depth_is_refused_one_past_the_limit_and_not_at_it(opener: bytes) -> None:
    closer = b"]" if opener == b"[" else b"}"
    at_limit = opener * 64 + b"1" + closer * 64
    past = opener * 65 + b"1" + closer * 65
    assert bodyscan.too_deep(at_limit, 64) == -1 and compiled_and_python("depth", at_limit, 64) == -1
    assert bodyscan.too_deep(past, 64) >= 0 and compiled_and_python("depth", past, 64) >= 0
    assert compiled_and_python("json", at_limit, 64)[0] == OK
    assert compiled_and_python("json", past, 64)[0] == TOO_DEEP
    brackets_in_strings = b'["' + b"[" * 1000 + b'"]'
    assert bodyscan.too_deep(brackets_in_strings, 64) == -1


def test_a_hundred_thousand_brackets_are_refused_without_recursion() -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    assert bodyscan.too_deep(body, 64) == 64
    assert bodyscan.scan_json(body, 64) == (TOO_DEEP, 64, 65)
