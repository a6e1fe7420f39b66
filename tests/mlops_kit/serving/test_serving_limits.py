"""Connection limits, against a real server on 127.0.0.1: header size and time, idle keep-alive, open
connections, and /ping answering while a thousand slow clients hold theirs open."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from serving_helpers import RunningServer, start_server

from mlops_kit.serving import metrics
from mlops_kit.serving.server import ServerOptions

PING = b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture(scope="module")
def limited(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(
        model_dir,
        tmp_path_factory.mktemp("limited"),
        "--max-header-kb",
        "1",
        "--header-timeout-s",
        "1",
        "--keep-alive-s",
        "1",
        "--max-connections",
        "40",
    )
    yield running
    running.stop()


def connect(server: RunningServer, timeout: float = 10) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=timeout)


def read_all(raw: socket.socket) -> bytes:
    """Everything until the server closes the connection (or the socket's timeout)."""
    data = b""
    while chunk := raw.recv(65536):
        data += chunk
    return data


def still_open(raw: socket.socket, seconds: float) -> bool:
    raw.settimeout(seconds)
    try:
        return raw.recv(1, socket.MSG_PEEK) != b""
    except TimeoutError:
        return True
    finally:
        raw.settimeout(10)


def closed_count(server: RunningServer, reason: str) -> float:
    text = server.request("GET", "/metrics")[2].decode()
    return metrics.parse(text)[f'mlops_serving_connections_closed_total{{reason="{reason}"}}']


def header_of(size: int) -> bytes:
    """A request whose URL and header fields come to exactly `size` bytes as the limit counts them."""
    padding = size - len("/ping") - (len("Host") + len("x") + 4) - (len("X-Pad") + 4)
    return b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * padding + b"\r\n\r\n"


def test_header_fields_at_the_limit_pass_and_one_byte_more_is_431(limited: RunningServer) -> None:
    with connect(limited) as raw:
        raw.sendall(header_of(1024))
        assert raw.recv(4096).startswith(b"HTTP/1.1 200")
    with connect(limited) as raw:
        raw.sendall(header_of(1025))
        answer = read_all(raw)  # answered, then closed
    assert answer.startswith(b"HTTP/1.1 431") and b"over the 1 KB limit (max_header_kb)" in answer


def test_a_header_that_never_ends_is_refused_as_it_grows(limited: RunningServer) -> None:
    before = closed_count(limited, "header_size")
    with connect(limited) as raw:
        raw.sendall(b"GET /ping HTTP/1.1\r\nX-Endless: ")
        with pytest.raises(OSError):  # the server closes the connection while it is still being fed
            for _ in range(2000):  # 8 MB at most, in writes the server reads one by one
                raw.sendall(b"e" * 4096)
                time.sleep(0.001)
    assert closed_count(limited, "header_size") == before + 1


def test_headers_not_complete_in_time_are_closed_with_408(limited: RunningServer) -> None:
    with connect(limited) as raw:
        started = time.monotonic()
        raw.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        assert still_open(raw, 0.5)  # before the limit
        while time.monotonic() - started < 0.9:  # bytes trickling in do not extend it
            raw.sendall(b"s")
            time.sleep(0.1)
        answer = read_all(raw)
        waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408") and b"no complete headers within 1s" in answer
    assert 1.0 <= waited < 3.0


def test_the_header_time_restarts_with_each_request_of_a_kept_alive_connection(
    limited: RunningServer,
) -> None:
    with connect(limited) as raw:
        raw.sendall(PING)
        assert raw.recv(4096).startswith(b"HTTP/1.1 200")
        time.sleep(0.6)  # within the keep-alive time; the connection's own start is 0.6 s ago
        started = time.monotonic()
        raw.sendall(b"GET /ping HTTP/1.1\r\nHost:")  # a second request whose headers never end
        assert still_open(raw, 0.7)  # 1.3 s after the connection began, 0.7 s after this request did
        answer = read_all(raw)
        assert 1.0 <= time.monotonic() - started < 3.0
    assert answer.startswith(b"HTTP/1.1 408") and b"no complete headers within 1s" in answer


def test_a_connection_that_sends_nothing_is_closed_quietly_at_the_header_time(limited: RunningServer) -> None:
    with connect(limited) as raw:
        started = time.monotonic()
        assert still_open(raw, 0.5)
        assert read_all(raw) == b""
        assert 1.0 <= time.monotonic() - started < 3.0


def test_a_body_that_stalls_is_closed_with_408(limited: RunningServer) -> None:
    with connect(limited) as raw:
        raw.sendall(
            b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nContent-Length: 20\r\n\r\n1,2"
        )
        started = time.monotonic()
        assert still_open(raw, 0.5)
        answer = read_all(raw)
        assert 1.0 <= time.monotonic() - started < 3.0
    assert answer.startswith(b"HTTP/1.1 408") and b"no more of the body within 1s" in answer


def test_an_idle_keep_alive_connection_is_closed_after_its_time(limited: RunningServer) -> None:
    with connect(limited) as raw:
        for _ in range(3):  # each request restarts the idle time: 3 x 0.6 s, past the 1 s limit in all
            raw.sendall(PING)
            assert raw.recv(4096).startswith(b"HTTP/1.1 200")
            assert still_open(raw, 0.6)
        started = time.monotonic()
        assert read_all(raw) == b""  # closed without a word: nothing was asked
        assert time.monotonic() - started < 2.5


def test_connections_past_the_limit_get_503_and_the_rest_are_served(limited: RunningServer) -> None:
    held = []
    try:
        for _ in range(40):  # the worker's limit; each one answered, so each one counted
            raw = connect(limited)
            raw.sendall(PING)
            assert raw.recv(4096).startswith(b"HTTP/1.1 200")
            held.append(raw)
        with connect(limited) as extra:
            answer = read_all(extra)
        assert answer.startswith(b"HTTP/1.1 503") and b"limit of 40 connections" in answer
        held.pop().close()
        time.sleep(0.2)
        with connect(limited) as raw:
            raw.sendall(PING)
            assert raw.recv(4096).startswith(b"HTTP/1.1 200")
    finally:
        for raw in held:
            raw.close()


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_header_kb", 0), ("header_timeout_s", -1), ("keep_alive_s", 0), ("max_connections", 0)],
)
def test_limits_must_be_positive(tmp_path: Path, field: str, value: float) -> None:
    with pytest.raises(ValueError, match=f"{field} must be positive"):
        ServerOptions(model_dir=tmp_path, **{field: value})
