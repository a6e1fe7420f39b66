"""The emulator's state on disk: a write-ahead journal of the requests that changed it, replayed at start.

moto keeps everything in memory, so a killed emulator loses every bucket, registry entry and feature
record. The recorded emulator (`mlops emulator start`) therefore wraps moto's WSGI app in `durable()`:
each request that may change state (not GET/HEAD/OPTIONS, not a Describe/List/Get/Query/Scan operation)
is answered by moto and then appended to `<state>/emulator/journal.bin` with one `write()` before its
answer leaves, so once a client has an answer the kernel has the record and a `kill -9` cannot lose it.
At start, a fresh moto is fed the journal, request by request, before the port is announced.

Replay must rebuild the very same state, including what moto invents: ids, ARNs, upload ids, key
material, timestamps. So every request into moto runs under one lock, and a journaled request runs with
its randomness seeded from its place in the journal (moto's `mock_random`, the `random` module that
SageMaker's execution ids use, `os.urandom` for KMS keys and multipart upload ids) and its clock frozen
at the time it was first answered (moto's `utcnow`, S3's bucket creation date). A request that moto
refused (4xx/5xx) changed nothing and is not kept.

Measured (`python -m benchmarks.emulator`, 2 cores, 1,000 DynamoDB PutItem + 1,000 S3 PutObject of
1 kB): a request costs the same journaled or not (4.3 vs 5.0 ms through boto3, within the noise; the
append is one write of the request), the journal is 3.3 MB, and a restart after `kill -9` replays it at
about 470 requests/s (5.3 s against a plain start's 1.0 s). A whole pipeline run of the kit's test project
journals 45 requests (3.0 MB, mostly data and model uploads), replayed in 2.8 s with moto's imports. Pickling moto's backends works (1.4 MB of S3
state in 13 ms), but a snapshot per change costs the whole state each time, tens of MB once a pipeline
has run, so the journal is what makes each change durable; compacting it into a snapshot at a clean
stop would bound the start time of a long-lived emulator, and is not done yet.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import io
import json
import os
import random
import struct
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

JOURNAL = "journal.bin"
_HEADER = struct.Struct(">II")  # length of the record, crc32 of the record
_READ_VERBS = ("Describe", "List", "Get", "BatchGet", "Query", "Scan", "Search")
_READ_METHODS = {"GET", "HEAD", "OPTIONS"}
# The request environ moto reads; the rest (sockets, streams, server objects) is the transport's.
_KEPT = {
    "REQUEST_METHOD",
    "SCRIPT_NAME",
    "PATH_INFO",
    "QUERY_STRING",
    "CONTENT_TYPE",
    "CONTENT_LENGTH",
    "SERVER_NAME",
    "SERVER_PORT",
    "SERVER_PROTOCOL",
    "REQUEST_URI",
    "RAW_URI",
    "REMOTE_ADDR",
    "wsgi.url_scheme",
}


class JournalError(RuntimeError):
    """The journal cannot be used: held by another emulator, or unreadable."""


# --- what a request does ---------------------------------------------------------------------------


def changes_state(environ: dict[str, Any], body: bytes) -> bool:
    """Whether a request may change moto's state (and so belongs in the journal)."""
    if environ.get("REQUEST_METHOD", "GET").upper() in _READ_METHODS:
        return False
    operation = _operation(environ, body)
    return not (operation and operation.startswith(_READ_VERBS))


def _operation(environ: dict[str, Any], body: bytes) -> str:
    """The API operation of a JSON-protocol (X-Amz-Target) or query-protocol (Action=) request."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return target.rsplit(".", 1)[-1]
    for source in (environ.get("QUERY_STRING", ""), _form(environ, body)):
        for pair in source.split("&"):
            key, _, value = pair.partition("=")
            if key == "Action":
                return value
    return ""


def _form(environ: dict[str, Any], body: bytes) -> str:
    if "x-www-form-urlencoded" not in environ.get("CONTENT_TYPE", "") or len(body) > 1 << 20:
        return ""
    return body.decode("latin-1")


# --- determinism ---------------------------------------------------------------------------------------


class _Request(threading.local):
    """The journaled request being served on this thread: its clock and whether randomness is seeded."""

    at: dt.datetime | None = None


_current = _Request()
_real_urandom = os.urandom


def _urandom(n: int) -> bytes:
    if _current.at is None:
        return _real_urandom(n)
    from moto.moto_api._internal import mock_random

    return mock_random.randbytes(n)


class _SeededOs:
    """`os` with `urandom` drawn from the request's seed while a journaled request is served."""

    urandom = staticmethod(_urandom)

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)


def _utcnow() -> dt.datetime:
    at = _current.at
    return at if at is not None else dt.datetime.now(dt.UTC).replace(tzinfo=None)


def install() -> None:
    """Make moto's ids and clock follow the journaled request being served (idempotent)."""
    from moto.core import utils
    from moto.s3 import models as s3_models

    if getattr(utils, "_mlops_clock", None) is _utcnow:  # installed already
        return
    # Every module that imported moto's `utcnow` holds this one function: change what it runs.
    utils._mlops_clock = _utcnow
    utils.utcnow.__code__ = (lambda: _mlops_clock()).__code__  # noqa: F821 - found in moto.core.utils
    # Key material (KMS), multipart upload ids (S3) and session tokens (STS) come from os.urandom in
    # these modules only; the stdlib's own uses (uuid4 of a backend being created) stay truly random.
    import importlib

    for name in (
        "moto.kms.utils",
        "moto.kms.models",
        "moto.kms.responses",
        "moto.s3.models",
        "moto.sts.utils",
    ):
        module = importlib.import_module(name)
        if getattr(module, "os", None) is os:
            module.os = _SeededOs()  # type: ignore[attr-defined]
    original = s3_models.FakeBucket.__init__

    def bucket_init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        if _current.at is not None:  # S3 stamps a bucket with datetime.now, not utcnow
            self.creation_date = _current.at.replace(tzinfo=dt.UTC)

    s3_models.FakeBucket.__init__ = bucket_init

    # moto creates a service's backends for an account and region on the first request there, which may
    # be a read (not journaled): their random draws must not shift those of the request that caused them.
    from moto.core.base_backend import AccountSpecificBackend, BackendDict

    AccountSpecificBackend.__getitem__ = _isolated(AccountSpecificBackend.__getitem__)
    BackendDict.__getitem__ = _isolated(BackendDict.__getitem__)


def _isolated(lookup: Callable[[Any, str], Any]) -> Callable[[Any, str], Any]:
    def getitem(self: Any, key: str) -> Any:
        if dict.__contains__(self, "aws" if key == "global" else key):
            return lookup(self, key)
        from moto.moto_api._internal import mock_random

        states = mock_random.getstate(), random.getstate(), _current.at
        _current.at = None  # stdlib uuid4s of the new backend come from the real os.urandom
        try:
            return lookup(self, key)
        finally:
            mock_random.setstate(states[0])
            random.setstate(states[1])
            _current.at = states[2]

    return getitem


@contextlib.contextmanager
def _as_recorded(seed: str, seq: int, at: float) -> Iterator[None]:
    from moto.moto_api._internal import mock_random

    mock_random.seed(f"{seed}:{seq}")
    random.seed(f"{seed}:{seq}")
    _current.at = dt.datetime.fromtimestamp(at, dt.UTC).replace(tzinfo=None)
    try:
        yield
    finally:
        _current.at = None


# --- the journal file --------------------------------------------------------------------------------


class Journal:
    """An append-only file of framed records, held by one emulator at a time (an exclusive lock)."""

    def __init__(self, folder: Path, fsync: bool = False):
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = folder / JOURNAL
        self.fsync = fsync
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            raise JournalError(
                f"{self.path} is held by another running emulator; stop that one first"
            ) from None
        self.seed, self.next_seq = "", 0

    def records(self) -> Iterator[dict[str, Any]]:
        """The complete records in order; a torn last record (killed mid-write) is cut off the file."""
        data = self.path.read_bytes()
        offset = 0
        while offset + _HEADER.size <= len(data):
            length, crc = _HEADER.unpack_from(data, offset)
            start, end = offset + _HEADER.size, offset + _HEADER.size + length
            if end > len(data) or zlib.crc32(data[start:end]) != crc:
                break
            yield _decode(data[start:end])
            offset = end
        if offset != len(data):
            print(f"{self.path}: dropped a torn record at byte {offset} of {len(data)}", file=sys.stderr)
            os.truncate(self.path, offset)

    def append(self, record: dict[str, Any]) -> None:
        payload = _encode(record)
        frame = _HEADER.pack(len(payload), zlib.crc32(payload)) + payload
        written = os.write(self.fd, frame)  # one write: in the kernel before the answer goes out
        if written != len(frame):
            raise OSError(f"{self.path}: short write ({written} of {len(frame)} bytes)")
        if self.fsync:
            os.fsync(self.fd)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


def _encode(record: dict[str, Any]) -> bytes:
    head = json.dumps({k: v for k, v in record.items() if k != "body"}, separators=(",", ":")).encode()
    return struct.pack(">I", len(head)) + head + record.get("body", b"")


def _decode(payload: bytes) -> dict[str, Any]:
    (size,) = struct.unpack_from(">I", payload)
    record = json.loads(payload[4 : 4 + size])
    record["body"] = payload[4 + size :]
    return record


# --- the WSGI layer ----------------------------------------------------------------------------------


def durable(app: Callable[..., Any], folder: Path, *, fsync: bool = False) -> Callable[..., Any]:
    """moto's app with its state journaled in `folder` and rebuilt from it now (before serving)."""
    install()
    journal = Journal(folder, fsync=fsync)
    lock = threading.Lock()
    replayed = replay(app, journal)
    if not journal.seed:
        journal.seed = os.urandom(8).hex()
        journal.append({"seed": journal.seed})
        journal.next_seq = 1
    if replayed:
        print(f"emulator: replayed {replayed} requests from {journal.path}", file=sys.stderr)

    def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
        body = _read_body(environ)
        if not changes_state(environ, body):
            with lock:  # one request in moto at a time: a reader must not draw a writer's random numbers
                return _materialized(app, environ, start_response)
        status: list[str] = []

        def capture(code: str, headers: Any, exc_info: Any = None) -> Any:
            status.append(code)
            return start_response(code, headers, exc_info) if exc_info else None

        with lock:
            seq, at = journal.next_seq, time.time()
            target = _service_app(app, environ)
            with _as_recorded(journal.seed, seq, at):
                answer = _collect(target, environ, capture)
            if int(status[0].split()[0]) < 400:
                try:
                    journal.append({"seq": seq, "at": at, "environ": _kept(environ), "body": body})
                except OSError as exc:
                    # moto has applied a change the journal does not hold: answering would promise what
                    # a restart cannot give back. Stop instead; the restart replays what was written.
                    _fail_stop(f"emulator: cannot write {journal.path} ({exc}); stopping unanswered")
                journal.next_seq = seq + 1
        start_response(status[0], answer[0])
        return [answer[1]]

    wsgi.journal = journal  # type: ignore[attr-defined]
    return wsgi


def one_at_a_time(app: Callable[..., Any]) -> Callable[..., Any]:
    """moto's app with one request inside it at a time (the body read first, outside the lock), as
    `durable` runs it. moto is not thread-safe: a DescribeTable counting a table's items while another
    request added some failed with a 500 ("dictionary changed size during iteration"), which ended a
    sharded Features job at 10M rows."""
    lock = threading.Lock()

    def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
        _read_body(environ)
        with lock:
            return _materialized(app, environ, start_response)

    return wsgi


def _fail_stop(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
    os._exit(75)  # EX_TEMPFAIL: no answer leaves, no later request runs on a state the journal lacks


def replay(app: Callable[..., Any], journal: Journal) -> int:
    """Feed the journal's requests to a fresh moto; returns how many were replayed."""
    count = 0
    for record in journal.records():
        if "seed" in record:
            journal.seed, journal.next_seq = record["seed"], 1
            continue
        environ = dict(record["environ"])
        environ.update(_transport(record["body"]))
        target = _service_app(app, environ)
        with _as_recorded(journal.seed, record["seq"], record["at"]):
            _collect(target, environ, lambda *_: None)
        journal.next_seq = record["seq"] + 1
        count += 1
    return count


def _service_app(app: Callable[..., Any], environ: dict[str, Any]) -> Callable[..., Any]:
    """The service's own app: moto builds it on a service's first request (drawing random numbers),
    which, live, was often a read; built here, before the request's seed, it never shifts its draws."""
    resolve = getattr(app, "get_application", None)
    return resolve(environ) if resolve is not None else app


def _read_body(environ: dict[str, Any]) -> bytes:
    stream = environ.get("wsgi.input")
    length = environ.get("CONTENT_LENGTH") or ""
    if stream is None:
        return b""
    if length.isdigit():
        body = stream.read(int(length))
    elif (
        environ.get("wsgi.input_terminated") or environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked"
    ):
        body = stream.read()
    else:
        body = b""
    environ.update(_transport(body))
    environ.pop("HTTP_TRANSFER_ENCODING", None)
    return body


def _transport(body: bytes) -> dict[str, Any]:
    return {
        "wsgi.input": io.BytesIO(body),
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
    }


def _kept(environ: dict[str, Any]) -> dict[str, str]:
    return {k: v for k, v in environ.items() if isinstance(v, str) and (k in _KEPT or k.startswith("HTTP_"))}


def _collect(app: Callable[..., Any], environ: dict[str, Any], start_response: Any) -> tuple[Any, bytes]:
    """Run the app to the end of its answer (inside the lock); returns (headers, body)."""
    headers: list[Any] = []

    def keep(status: str, response_headers: Any, exc_info: Any = None) -> Any:
        headers[:] = [response_headers]
        return start_response(status, response_headers, exc_info)

    iterable = app(environ, keep)
    try:
        body = b"".join(iterable)
    finally:
        close = getattr(iterable, "close", None)
        if close is not None:
            close()
    return (headers[0] if headers else [], body)


def _materialized(app: Callable[..., Any], environ: dict[str, Any], start_response: Any) -> list[bytes]:
    status: list[tuple[str, Any]] = []
    headers, body = _collect(app, environ, lambda code, hdrs, exc=None: status.append((code, hdrs)))
    start_response(status[0][0], headers)
    return [body]
