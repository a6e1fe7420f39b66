"""The inference server: SageMaker's container contract over HTTP/1.1, on uvloop + httptools.

Routes (SageMaker's, plus metrics):
  GET  /ping                   200 once the model is loaded
  POST /invocations            the handler (`handler.Handler`): CSV / JSON / NPY in, Accept honoured
  GET  /execution-parameters   what batch transform asks a container for
  GET  /metrics                Prometheus text (`metrics`): every answer by method, path and status
                               with its duration, predict time, what is served, capture

Every refused request (a 4xx, and the 503 of a worker at its connection limit) is one log line with
its method, path, status and reason; `MLOPS_LOG_FORMAT=json` (or `--log-format json`) makes each log
line one JSON object.

Why this stack: a request is a few hundred microseconds of model work, so the HTTP layer must cost far
less. An asyncio `Protocol` per connection with httptools' C parser on uvloop calls the handler straight
from the parser's callback: no ASGI/WSGI scope dicts, no thread hop, no per-request task. The model is
CPU-bound and holds the GIL anyway, so one process per core (`--workers`, forked after the model is
loaded, sharing one listening socket) is how it scales; a worker that dies is replaced. Keep-alive and
pipelining work (answers go out in order because each is computed inside `on_message_complete`).
`benchmarks/serving` measures this against `mlflow models serve` and a bare echo server.

Bad input never stops the server: 400/406/413/415 answer the request and the connection goes on (413
closes it, as the body was not read); a model error is a 500 with an error id that the log repeats with
the traceback. SIGTERM stops accepting, finishes requests in progress, flushes data capture, and exits.

Connections are held to limits, with the defaults of the nginx that SageMaker's framework containers put
in front of their model server (and nginx's own where that file sets none), so a client that opens
connections and sends little cannot starve the others: header fields over `max_header_kb` are a 431;
headers not complete `header_timeout_s` after the request (or the connection) began, or a body that
receives nothing for as long, close the connection (a 408 if a request had begun); an idle keep-alive
connection closes after `keep_alive_s`; a worker holding `max_connections` answers a new one 503 and
closes it. Timeouts are enforced by one sweep over the connections a fraction of a second apart, not a
timer per request: the request path pays nothing for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from typing import Any

from mlops_kit import logs
from mlops_kit.serving import bodyscan, contract, csvparse
from mlops_kit.serving import capture as capture_mod
from mlops_kit.serving.handler import Handler, Response, error_response
from mlops_kit.serving.metrics import Metrics

log = logging.getLogger("mlops_kit.serving")

REASONS = {
    100: "Continue",
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    408: "Request Timeout",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
GRACE_SECONDS = 10.0  # how long a stopping worker waits for requests in progress
BACKLOG = 2048  # connections the kernel holds for accept(); the kernel caps it at net.core.somaxconn


@dataclass(frozen=True)
class ServerOptions:
    model_dir: Path
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    max_payload_mb: float = 6.0
    capture_to: str = ""  # s3://bucket[/prefix] or a folder; empty: no capture
    capture_percent: float = 0.0
    # the folder of the workers' capture files, written as requests are answered and uploaded from (a
    # worker or server started after one that died uploads what it left); empty: one for this endpoint
    # and destination under the machine's temp folder
    capture_spool: str = ""
    endpoint_name: str = "local-endpoint"
    model_package: str = ""  # the model package ARN served, if any (`mlops_model_info`)
    feature_lookup: str = ""  # "package.module:callable"
    feature_store_env: str = ""  # fill missing features from this environment's online store
    ready_file: Path | None = None  # the bound port is written here once the socket listens
    compile_trees: bool = True  # gradient-boosted trees predicted by `trees` (same numbers, checked)
    batch: bool = True  # requests that arrive together share one predict call (default predict_fn only)
    # A worker busy on one batch longer than this is replaced (gunicorn's --timeout, which SageMaker's
    # framework images set from SAGEMAKER_MODEL_SERVER_TIMEOUT); 0: never. Needs the supervisor.
    timeout_s: float = 0.0
    # Connection limits, as the nginx.conf of SageMaker's framework containers has them (nginx's defaults
    # where it sets none): the request line and header fields (nginx: 4 buffers of 8 KB); complete headers
    # within (client_header_timeout 60s), which is also the longest a body may receive nothing
    # (client_body_timeout 60s); idle keep-alive (keepalive_timeout 3); open connections per worker
    # (worker_connections 2048).
    max_header_kb: float = 32.0
    header_timeout_s: float = 60.0
    keep_alive_s: float = 3.0
    max_connections: int = 2048
    max_model_mb: float = 0.0  # how far a model.tar.gz may unpack; 0: 100x its size, at least 64 MiB

    def __post_init__(self) -> None:
        for name in (
            "max_payload_mb",
            "max_header_kb",
            "header_timeout_s",
            "keep_alive_s",
            "max_connections",
        ):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")

    @property
    def max_body(self) -> int:
        return int(self.max_payload_mb * 1024 * 1024)

    @property
    def sweep_s(self) -> float:
        """How often the timeouts are checked: a timeout is enforced between its value and this later."""
        return min(1.0, max(0.05, min(self.header_timeout_s, self.keep_alive_s) / 4))


def resolve(reference: str) -> Any:
    """`package.module:attribute` -> the attribute (the feature lookup hook)."""
    module, _, attribute = reference.partition(":")
    if not module or not attribute:
        raise ValueError(f"expected package.module:attribute, got {reference!r}")
    try:
        target = getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot load {reference!r}: {exc}") from None
    if not callable(target):
        raise ValueError(f"{reference!r} is not callable")
    return target


def feature_store_lookup(env: str) -> Callable[[Any], Any]:
    """The `feature_lookup` hook over `env`'s online feature store (`features.store.request_filler`).

    On an embedded environment the store lives in the emulator: the recorded one (`mlops emulator
    start`), else the one `AWS_ENDPOINT_URL` names (a local deploy runs its server so). In AWS, boto3's
    own credentials and the environment's region. The store is connected here, so a missing emulator or
    online store fails at start, and again in each worker process on its first request, since boto3
    connections must not cross a fork.
    """
    from mlops_kit import emulator, settings
    from mlops_kit.features.store import connect, request_filler

    config = settings.load(env)
    current = emulator.running() if config.embedded else None
    endpoint = None if current is not None or not config.embedded else os.environ.get("AWS_ENDPOINT_URL")
    if config.embedded and current is None and not endpoint:
        raise emulator.EmulatorError(
            f"no emulator running for {env}'s feature store; run `mlops emulator start` first"
        )

    def client(service: str) -> Any:
        if current is not None:
            return current.client(service)
        return emulator.client(service, endpoint_url=endpoint, region=config.region)  # None: plain boto3

    fills = {os.getpid(): request_filler(connect(config, client))}

    def fill(data: Any) -> Any:
        pid = os.getpid()
        if pid not in fills:
            fills.clear()
            fills[pid] = request_filler(connect(config, client))
        return fills[pid](data)

    return fill


# --- one worker's request path -------------------------------------------------------------------


class _Date:
    """The Date header, formatted once a second rather than once a request."""

    second = -1
    value = b""

    @classmethod
    def header(cls) -> bytes:
        now = int(time.time())
        if now != cls.second:
            cls.second, cls.value = now, formatdate(now, usegmt=True).encode()
        return cls.value


def head(status: int, content_type: str, length: int, close: bool = False) -> bytes:
    return b"HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s\r\n" % (
        status,
        REASONS.get(status, "Unknown").encode(),
        _Date.header(),
        content_type.encode(),
        length,
        b"Connection: close\r\n" if close else b"",
    )


class Worker:
    """The routes, for one process: the handler, its metrics row and its capture buffer.

    Requests are answered in batches: each complete request joins a queue, and the queue is answered
    once the event loop has read everything that arrived together (`call_soon` runs after the loop's
    I/O callbacks). A lone request waits for nothing; eight requests that arrived during the previous
    prediction share one `predict` (`Handler.invoke_many`). Answers go out in the order requests came.
    """

    def __init__(self, handler: Handler, metrics: Metrics, options: ServerOptions, capture: Any = None):
        self.handler = handler
        self.metrics = metrics
        handler.on_predict = metrics.predicted  # this process's row (the handler was loaded before the fork)
        self.options = options
        self.capture = capture
        self.max_body = options.max_body
        self.max_header = int(options.max_header_kb * 1024)
        self.batch = options.batch
        self.connections: set[_Connection] = set()
        self.stopping = False
        self.queue: list[_Request] = []
        self._parameters = contract.encode_json(
            {
                "MaxConcurrentTransforms": max(1, options.workers),
                "BatchStrategy": "MULTI_RECORD",
                "MaxPayloadInMB": int(options.max_payload_mb),
            }
        )

    def submit(self, request: _Request) -> None:
        if not self.queue:
            asyncio.get_running_loop().call_soon(self.flush)
        self.queue.append(request)
        request.connection.unanswered += 1

    def flush(self) -> None:
        """Answer every queued request, in order; invocations share predict calls where they can."""
        queue, self.queue = self.queue, []
        if not queue:
            return
        calls = [r for r in queue if r.path == b"/invocations" and r.method == b"POST"]
        if calls and self.options.timeout_s > 0:
            # SIGALRM's default action ends this worker even inside compiled code; the supervisor
            # starts a new one, and the clients of the stuck batch see their connection closed.
            signal.setitimer(signal.ITIMER_REAL, self.options.timeout_s)
        try:
            if self.batch and len(calls) > 1:
                answers = self.handler.invoke_many(
                    [(r.body, r.content_type, r.accept) for r in calls], on_shared=self.metrics.shared_predict
                )
            else:
                answers = [self.handler.invoke(r.body, r.content_type, r.accept) for r in calls]
        except Exception as exc:  # the handler answers every failure itself; this is a bug, not a hang
            answers = [self.handler.server_error(exc) for _ in calls]
        finally:
            if calls and self.options.timeout_s > 0:
                signal.setitimer(signal.ITIMER_REAL, 0)
        by_request = dict(zip(map(id, calls), answers, strict=True))
        now = time.perf_counter()
        for request in queue:
            response = by_request.get(id(request))
            if response is None:
                response = self.route(request.method, request.path)
            elif response.status == 200 and self.capture is not None:  # before the answer goes out
                self.capture.offer(request.content_type, request.body, response.content_type, response.body)
            self.answered(request.method, request.path, response, now - request.started)
            connection = request.connection
            connection.unanswered -= 1
            connection.last_answer = now
            connection._send(response, close=request.close or self.stopping)

    def route(self, method: bytes, path: bytes) -> Response:
        """Everything but a POST to /invocations."""
        if path == b"/invocations":
            return error_response(405, "use POST for /invocations")
        if method != b"GET":
            known = path in (b"/ping", b"/metrics", b"/execution-parameters")
            return error_response(405 if known else 404, f"{method.decode()} {path.decode(errors='replace')}")
        if path == b"/ping":
            return Response(200, b"", contract.JSON)
        if path == b"/metrics":
            return Response(200, self.metrics.render(), "text/plain; version=0.0.4; charset=utf-8")
        if path == b"/execution-parameters":
            return Response(200, self._parameters, contract.JSON)
        return error_response(404, f"no route {path.decode(errors='replace')}; try POST /invocations")

    def answered(self, method: bytes, path: bytes, response: Response, seconds: float) -> None:
        """Count every answer; log each refusal (4xx) with its reason, one line."""
        self.metrics.observe(method, path, response.status, seconds)
        if 400 <= response.status < 500:
            refused(method, path, response)

    def too_large(self, method: bytes, path: bytes, started: float) -> Response:
        limit = self.options.max_payload_mb
        response = error_response(413, f"the body is over the {limit:g} MB limit (serving.max_payload_mb)")
        self.answered(method, path, response, time.perf_counter() - started)
        return response

    def accept(self, connection: _Connection, transport: asyncio.Transport) -> bool:
        """Whether a new connection is served: beyond `max_connections` it is answered 503 and closed."""
        if len(self.connections) < self.options.max_connections:
            self.connections.add(connection)
            return True
        self.metrics.closed("limit")
        reason = f"this worker holds its limit of {self.options.max_connections} connections; retry"
        response = error_response(503, reason)
        self.metrics.observe(b"", b"", 503, 0.0)  # answered before any request was read
        refused(b"", b"", response)
        transport.write(head(503, response.content_type, len(response.body), close=True) + response.body)
        transport.close()
        return False

    def sweep(self) -> None:
        """Close the connections past a time limit (run every `options.sweep_s` seconds)."""
        now = time.perf_counter()
        for connection in list(self.connections):
            reason = connection.overdue(now, self.options)
            if reason:
                self.metrics.closed(reason)
                connection.expire(reason)


@dataclass
class _Request:
    connection: _Connection
    method: bytes
    path: bytes
    content_type: str
    accept: str
    body: bytes
    started: float
    close: bool


class _Connection(asyncio.Protocol):
    """One client connection: httptools feeds it, each complete request is answered in place."""

    def __init__(self, worker: Worker):
        import httptools

        self.worker = worker
        self.parser = httptools.HttpRequestParser(self)
        self.parser_error = (httptools.HttpParserError, httptools.HttpParserUpgrade)
        self.transport: asyncio.Transport | None = None
        self.in_message = False
        self.unanswered = 0  # requests of this connection waiting in the worker's queue
        self.messages = 0  # requests begun on this connection
        self.head_since = (
            0.0  # since when headers are awaited (the connection's or a request's start); 0: not
        )
        self.head_bytes = 0  # bytes of reads that held nothing but the awaited headers
        self.last_answer = 0.0
        self.body_seen = (0, -1, 0.0)  # (request, body size, when first seen): a stalled body's clock
        self._reset()

    def _reset(self) -> None:
        self.url = b""
        self.content_type = b""
        self.accept = b""
        self.chunks: list[bytes] = []
        self.size = 0
        self.header_size = 0  # the URL and header fields, as `max_header_kb` counts them
        self.refused = False  # answered 413 or 431: the rest of the request is read and dropped
        self.expect_continue = False
        self.started = 0.0

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.worker.accept(self, transport):  # type: ignore[arg-type]  # a stream server's transport
            self.transport = transport  # type: ignore[assignment]
            self.head_since = self.last_answer = time.perf_counter()

    def connection_lost(self, exc: Exception | None) -> None:
        self.worker.connections.discard(self)
        self.transport = None

    def data_received(self, data: bytes) -> None:
        if self.transport is None:
            return
        # The request this read's first byte belongs to, unless it is in a body: the one in progress, or
        # the next. A read that leaves that same request's headers incomplete held nothing else.
        first = self.messages if self.in_message else self.messages + 1
        try:
            self.parser.feed_data(data)
        except self.parser_error as exc:
            if self.transport is not None and not self.refused:
                response = error_response(400, f"malformed HTTP request: {exc}")
                self.worker.answered(self._method(), self._path(), response, self._elapsed())
                self._send_now(response, close=True)
            return
        if self.head_since and self.messages == first:
            # httptools keeps a header it has not seen the end of: count it here, not in on_header
            self.head_bytes += len(data)
            if self.head_bytes > self.worker.max_header:
                self._headers_too_large()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.in_message = True
        self._reset()
        self.messages += 1
        self.started = self.head_since = time.perf_counter()
        self.head_bytes = 0

    def on_url(self, url: bytes) -> None:
        self.url += url
        self.header_size += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_size += len(name) + len(value) + 4  # "name: value\r\n"
        name = name.lower()
        if name == b"content-type":
            self.content_type = value
        elif name == b"accept":
            self.accept = value
        elif name == b"content-length":
            with contextlib.suppress(ValueError):
                if int(value) > self.worker.max_body:
                    self.refused = True
        elif name == b"expect" and value.lower() == b"100-continue":
            self.expect_continue = True

    def on_headers_complete(self) -> None:
        self.head_since = 0.0
        if self.header_size > self.worker.max_header:
            self._headers_too_large()
            return
        if self.refused:
            # Answer now: a client that waits for 100-continue sends no body; one that does not is read
            # to the end (and dropped) so that it sees this answer instead of a reset connection.
            too_large = self.worker.too_large(self._method(), self._path(), self.started)
            self._send_now(too_large, close=self.expect_continue)
        elif self.expect_continue and self.transport is not None:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.refused:
            if self.size > 4 * self.worker.max_body + (1 << 20) and self.transport is not None:
                self.transport.close()  # reading a huge body to the end is not worth it
            return
        if self.size > self.worker.max_body:  # a chunked body has no Content-Length to refuse early
            self.refused = True
            self.chunks = []
            self._send_now(self.worker.too_large(self._method(), self._path(), self.started), close=False)
            return
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        self.in_message = False
        if self.transport is None:
            return
        if self.refused:
            self.transport.close()
            return
        body = self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
        self.worker.submit(
            _Request(
                self,
                self.parser.get_method(),
                self.url.split(b"?", 1)[0],
                self.content_type.decode("latin-1"),
                self.accept.decode("latin-1"),
                body,
                self.started,
                not self.parser.should_keep_alive(),
            )
        )

    def _send_now(self, response: Response, close: bool) -> None:
        """An answer decided outside the queue (413, 431, malformed HTTP): after the ones already queued."""
        if self.unanswered:
            self.worker.flush()
        self.last_answer = time.perf_counter()
        self._send(response, close)

    def _headers_too_large(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.refused = True
        self.worker.metrics.closed("header_size")
        limit = self.worker.options.max_header_kb
        reason = f"the request line and header fields are over the {limit:g} KB limit (max_header_kb)"
        response = error_response(431, reason)
        self.worker.answered(self._method(), self._path(), response, self._elapsed())
        self._send_now(response, close=True)

    # What a refusal outside the queue is counted and logged under: the request as far as it was read.
    def _method(self) -> bytes:
        try:
            return self.parser.get_method()
        except Exception:  # httptools has not read a method yet
            return b""

    def _path(self) -> bytes:
        return self.url.split(b"?", 1)[0]

    def _elapsed(self) -> float:
        return time.perf_counter() - self.started if self.started else 0.0

    def overdue(self, now: float, options: ServerOptions) -> str:
        """Which time limit this connection is past, if any ("" if none)."""
        if self.transport is None:
            return ""
        if self.head_since:
            return "header_timeout" if now - self.head_since > options.header_timeout_s else ""
        if self.in_message:  # reading a body: the time since it last grew
            request, size, since = self.body_seen
            if (request, size) != (self.messages, self.size):
                self.body_seen = (self.messages, self.size, now)
                return ""
            return "body_timeout" if now - since > options.header_timeout_s else ""
        if not self.unanswered and now - self.last_answer > options.keep_alive_s:
            return "idle"
        return ""

    def expire(self, reason: str) -> None:
        """Close for `reason`: with a 408 if a request had begun (its client may be waiting), else quietly."""
        if self.transport is None:
            return
        if self.in_message and not self.refused:
            self.refused = True
            limit = self.worker.options.header_timeout_s
            what = "complete headers" if reason == "header_timeout" else "more of the body"
            response = error_response(408, f"no {what} within {limit:g}s (header_timeout_s)")
            self.worker.answered(self._method(), self._path(), response, self._elapsed())
            self._send(response, close=True)
        self.transport.close()

    def _send(self, response: Response, close: bool) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(
            head(response.status, response.content_type, len(response.body), close) + response.body
        )
        if close:
            self.transport.close()

    def close_if_idle(self) -> None:
        if not self.in_message and not self.unanswered and self.transport is not None:
            self.transport.close()


# --- processes -----------------------------------------------------------------------------------


def bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror}; pick another --port") from None
    sock.listen(BACKLOG)
    sock.setblocking(False)
    return sock


def _capture_buffer(options: ServerOptions, metrics: Metrics) -> capture_mod.CaptureBuffer | None:
    if not options.capture_to or options.capture_percent <= 0:
        return None
    counters = capture_mod.CaptureCounters(
        written=metrics.captured, dropped=metrics.capture_dropped, failed=metrics.capture_failed
    )
    sink = capture_mod.sink_for(options.capture_to)
    spool = (
        Path(options.capture_spool)
        if options.capture_spool
        else capture_mod.default_spool(options.endpoint_name, options.capture_to)
    )
    return capture_mod.CaptureBuffer(
        sink, options.endpoint_name, options.capture_percent, spool=spool, counters=counters
    ).start()


def run_worker(sock: socket.socket, handler: Handler, metrics: Metrics, options: ServerOptions) -> None:
    """Serve on `sock` until SIGTERM/SIGINT, then drain and flush capture."""
    import uvloop

    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    worker = Worker(handler, metrics, options, _capture_buffer(options, metrics))
    stop = asyncio.Event()
    _stop_on_signals(loop, stop)

    async def sweep() -> None:
        while True:
            await asyncio.sleep(options.sweep_s)
            worker.sweep()

    async def main() -> None:
        # create_server listens again, with a backlog of 100 unless told: a burst of new connections past
        # that waited a second each for the client's SYN to be sent again
        server = await loop.create_server(lambda: _Connection(worker), sock=sock, backlog=BACKLOG)
        sweeper = loop.create_task(sweep())
        await stop.wait()
        worker.stopping = True
        server.close()
        deadline = loop.time() + GRACE_SECONDS
        while worker.connections and loop.time() < deadline:
            for connection in list(worker.connections):
                connection.close_if_idle()
            await asyncio.sleep(0.01)
        sweeper.cancel()

    try:
        loop.run_until_complete(main())
    finally:
        if worker.capture is not None:
            worker.capture.close()
            if worker.capture.waiting:
                log.error(
                    "capture: %d records could not be written to %s; they wait in %s for the next start",
                    worker.capture.waiting,
                    options.capture_to,
                    worker.capture.folder,
                )
        loop.close()


def _stop_on_signals(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """SIGTERM and SIGINT set `stop`, whenever they arrive. Not `loop.add_signal_handler`: uvloop makes the
    pipe a signal wakes it through only when the loop starts running, so a SIGTERM between that call and
    the start was kept unseen and the server never stopped (SageMaker, or `emulator stop`, then kills it
    undrained). A Python handler runs whether the loop runs yet or not; the callback waits for the loop."""

    def on_signal(_signum: int, _frame: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop has closed: the worker is ending anyway
            loop.call_soon_threadsafe(stop.set)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    if _EARLY_STOP:  # asked to stop before this handler was there
        stop.set()


def serve(options: ServerOptions, on_ready: Callable[[int], None] | None = None) -> None:
    """Load the model, listen, and run `options.workers` worker processes until told to stop."""
    if options.feature_lookup and options.feature_store_env:
        raise ValueError("give --feature-lookup or --feature-store-env, not both")
    lookup = resolve(options.feature_lookup) if options.feature_lookup else None
    if options.feature_store_env:
        lookup = feature_store_lookup(options.feature_store_env)
    # before the fork: workers share its pages
    handler = Handler(
        options.model_dir,
        feature_lookup=lookup,
        compile_trees=options.compile_trees,
        max_model_mb=options.max_model_mb,
    )
    csvparse.warm()  # numba's builds of the CSV parser and the body scans now, not in a request's latency
    bodyscan.warm()
    _allow_open_files(options.max_connections + 64)  # each worker's connections, and its own files
    sock = bind(options.host, options.port)
    port = sock.getsockname()[1]
    log.info(
        "serving %s on http://%s:%d with %d worker(s)", options.model_dir, options.host, port, options.workers
    )
    metrics = Metrics(options.workers, info=model_info(options))
    # A stop asked for between the ready file and the workers' own handlers must not kill the server
    # undrained (SIGTERM's default): it is noted here and honoured once they are installed.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _note_early_stop)
    if options.ready_file is not None:
        tmp = options.ready_file.with_name(options.ready_file.name + ".tmp")
        tmp.write_text(json.dumps({"port": port, "pid": os.getpid()}))
        tmp.replace(options.ready_file)
    if on_ready is not None:
        on_ready(port)
    if options.workers <= 1 and options.timeout_s <= 0:
        run_worker(sock, handler, metrics, options)
        return
    _supervise(sock, handler, metrics, options)


_EARLY_STOP: list[int] = []


def _note_early_stop(signum: int, _frame: Any) -> None:
    _EARLY_STOP.append(signum)


def model_info(options: ServerOptions) -> dict[str, str]:
    """The labels of `mlops_model_info`: the endpoint, the model package (if any) and the model, which is
    the package's group/version, or the model directory's name when no package is named."""
    model = options.model_package.rsplit(":model-package/", 1)[-1] if options.model_package else ""
    return {
        "endpoint": options.endpoint_name,
        "package": options.model_package,
        "model": model or Path(options.model_dir).name,
    }


def refused(method: bytes, path: bytes, response: Response) -> None:
    """One log line for a refused request: what was asked, the status, and the reason it was given."""
    try:
        reason = json.loads(response.body).get("error", "")
    except (ValueError, AttributeError):
        reason = response.body[:200].decode(errors="replace")
    where = f"{method.decode('latin-1') or '-'} {path.decode('latin-1', errors='replace') or '-'}"
    log.warning(
        "refused %s: %d %s",
        where,
        response.status,
        reason,
        extra={
            "method": method.decode("latin-1"),
            "path": path.decode("latin-1"),
            "status": response.status,
            "reason": reason,
        },
    )


def _allow_open_files(needed: int) -> None:
    """Raise this process's open-file limit (inherited by the workers) to what `max_connections` needs."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < needed:
        log.warning(
            "open files are limited to %d (ulimit -n); max_connections needs about %d per worker",
            target,
            needed,
        )


def _supervise(sock: socket.socket, handler: Handler, metrics: Metrics, options: ServerOptions) -> None:
    children: dict[int, int] = {}  # pid -> worker index
    stopping = {"now": False}

    def spawn(index: int) -> None:
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                run_worker(sock, handler, metrics.for_worker(index), options)
            except BaseException:
                log.exception("worker %d failed", index)
                code = 1
            finally:
                logging.shutdown()
                os._exit(code)
        children[pid] = index

    def on_signal(signum: int, _frame: Any) -> None:
        stopping["now"] = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    for index in range(options.workers):
        spawn(index)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if _EARLY_STOP:  # asked to stop before this handler was there (workers forked since were told now)
        on_signal(_EARLY_STOP[0], None)
    while children:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        index = children.pop(pid, None)
        if index is not None and not stopping["now"]:
            if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGALRM:
                log.error(
                    "worker %d (pid %d) spent more than %gs on one batch; starting a new one",
                    index,
                    pid,
                    options.timeout_s,
                )
            else:
                log.error("worker %d (pid %d) exited with status %d; starting a new one", index, pid, status)
            time.sleep(0.2)
            spawn(index)
    sock.close()


def main(argv: list[str] | None = None) -> int:
    """`python -m mlops_kit.serving ...`: the server without the CLI's imports (used by local deploys)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m mlops_kit.serving")
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--timeout-s", type=float, default=0.0)
    parser.add_argument("--max-payload-mb", type=float, default=6.0)
    parser.add_argument("--capture-to", default="")
    parser.add_argument("--capture-percent", type=float, default=0.0)
    parser.add_argument("--capture-spool", default="")
    parser.add_argument("--endpoint-name", default="local-endpoint")
    parser.add_argument("--model-package", default="")
    parser.add_argument("--feature-lookup", default="")
    parser.add_argument("--feature-store-env", default="")
    parser.add_argument("--ready-file", type=Path, default=None)
    parser.add_argument("--no-compile-trees", dest="compile_trees", action="store_false")
    parser.add_argument("--no-batch", dest="batch", action="store_false")
    parser.add_argument("--max-header-kb", type=float, default=32.0)
    parser.add_argument("--header-timeout-s", type=float, default=60.0)
    parser.add_argument("--keep-alive-s", type=float, default=3.0)
    parser.add_argument("--max-connections", type=int, default=2048)
    parser.add_argument("--max-model-mb", type=float, default=0.0)
    parser.add_argument("--log-format", choices=logs.FORMATS, default=None)
    args = vars(parser.parse_args(argv))
    configure_logging(args.pop("log_format"))
    try:
        serve(ServerOptions(**args))
    except Exception as exc:  # a model that cannot load, a port in use: one line, exit 1
        log.error("%s", exc)
        return 1
    return 0


def configure_logging(log_format: str | None = None) -> None:
    """The server's log lines on stderr: text, or one JSON object a line (`--log-format`, else
    `MLOPS_LOG_FORMAT`)."""
    logs.configure(
        log_format, text_format="%(asctime)s %(levelname)s [pid %(process)d] %(name)s: %(message)s"
    )
