"""The compiled CSV parser gives Python's doubles, or hands the body back to the careful path."""

from __future__ import annotations

import numpy as np
import pytest

from mlops_kit.serving import contract, csvparse


def _bits(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a, dtype=np.float64).tobytes()


def test_plain_numbers_parse_to_the_same_doubles_as_float():
    rng = np.random.default_rng(7)
    values = rng.normal(size=3000) * 10.0 ** rng.integers(-12, 12, size=3000)
    texts = (
        [f"{v:.6f}" for v in values]
        + [f"{v:.4e}" for v in values]
        + [f"{v:.12g}" for v in values]
        + [str(int(v)) for v in values * 1000 if abs(v) < 1e15]
        + ["-0", "0.000", "+4", "1.", ".25", "1E3", "5e-22", "123456789012345", "-0.0e5", "007"]
    )
    fast = 0
    for text in texts:
        got = csvparse.parse(text.encode())
        if got is None:
            continue
        fast += 1
        assert _bits(got) == _bits(np.array([[float(text)]])), text  # same bits, signed zero included
    assert fast > 0.9 * len(texts)  # the common shapes of numbers take the fast path


def test_rows_missing_values_and_line_endings():
    body = b"1,2.5,-3e2\r\n.5,,7\n\n4,5,\n"
    expected = np.array([[1, 2.5, -300], [0.5, np.nan, 7], [4, 5, np.nan]])
    got = csvparse.parse(body)
    assert got is not None and _bits(got) == _bits(expected)
    assert _bits(contract.decode_csv(body)) == _bits(expected)  # what the careful path gives too


@pytest.mark.parametrize(
    "body",
    [
        b"1,2\n3\n",  # ragged rows
        b"1,abc\n",  # not a number
        b"1.2345678901234567\n",  # more digits than a double holds exactly
        b"1e400\n",  # outside the exact powers of ten
        b"nan,inf\n",
        b" 1,2\n",  # spaces
        b"1\r2\n",  # a bare CR
        b"",
        b"\n\n",
        b"1e\n",
        b"-\n",
        b"0x10\n",
    ],
)
def test_anything_unusual_goes_to_the_careful_path(body):
    assert csvparse.parse(body) is None


def test_decode_csv_answers_the_same_either_way():
    assert _bits(contract.decode_csv(b"1.2345678901234567,2\n")) == _bits(np.array([[1.2345678901234567, 2]]))
    assert _bits(contract.decode_csv(b" 1, 2\n")) == _bits(np.array([[1.0, 2.0]]))
    with pytest.raises(contract.BadInput, match="CSV row 2 has 1 columns, row 1 has 2"):
        contract.decode_csv(b"1,2\n3\n")
    with pytest.raises(contract.BadInput, match=r"row 1, column 2: 'abc' is not a number"):
        contract.decode_csv(b"1,abc\n")


def test_without_a_compiler_csv_takes_the_careful_path(monkeypatch):
    def unavailable():
        raise ImportError("No module named 'numba'")

    monkeypatch.setattr(csvparse, "_parse", None)
    monkeypatch.setattr(csvparse, "_kernel", unavailable)
    assert csvparse.parse(b"1,2\n") is None
    assert contract.decode_csv(b"1,2\n3,\n").tolist()[0] == [1.0, 2.0]
