"""The inference server attacked: SIGKILL under load (captured = answered), 2,000 connections of which
1,000 trickle a header that never ends (closed at the header time, /ping answering throughout), a
gzip-bomb model archive, and a hostile client's table of bad requests (each a 4xx with its reason)."""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import resource
import selectors
import signal
import socket
import statistics
import tarfile
import threading
import time
from pathlib import Path

import faults_summary
import numpy as np
import pytest
from serving_helpers import RunningServer, start_server
from test_serving_http import HOSTILE, _body

from mlops_kit.serving import capture, metrics

PING = b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"


def captured(folder: Path) -> list[dict]:
    files = sorted(folder.rglob("*.jsonl"))
    for path in files:
        parts = path.relative_to(folder).parts
        assert parts[0] == "AllTraffic" and re.fullmatch(r"\d{4}/\d\d/\d\d/\d\d", "/".join(parts[1:5]))
    return [record for path in files for record in capture.parse_lines(path.read_text())]


def closed_count(server: RunningServer, reason: str) -> float:
    text = server.request("GET", "/metrics")[2].decode()
    return metrics.parse(text)[f'mlops_serving_connections_closed_total{{reason="{reason}"}}']


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _serve_with_capture(model_dir: Path, tmp_path: Path, *extra: str):
    return start_server(
        model_dir,
        tmp_path,
        "--capture-to",
        str(tmp_path / "capture"),
        "--capture-percent",
        "100",
        "--capture-spool",
        str(tmp_path / "spool"),
        "--endpoint-name",
        "ep",
        *extra,
    )


@pytest.mark.fault("server SIGKILLed after 300 answers, then restarted")
def test_sigkill_loses_no_answered_request(model_dir: Path, tmp_path: Path) -> None:
    """Answered == captured: N answers, kill -9, and the next start uploads all N, none twice."""
    server = _serve_with_capture(model_dir, tmp_path)
    sent = {}
    statuses = []
    for i in range(300):
        body = f"{i},{i % 5},-1"
        status, _, answer = server.invoke(body)
        statuses.append(status)
        sent[body] = answer.decode()
    faults_summary.count_5xx(len(statuses), sum(s >= 500 for s in statuses))
    assert statuses == [200] * 300
    server.process.kill()  # SIGKILL: no drain, no last flush
    server.process.wait()
    assert sum(1 for _ in tmp_path.joinpath("spool").glob("*.spool")) == 1
    restarted = _serve_with_capture(model_dir, tmp_path)
    assert restarted.stop() == 0
    records = captured(tmp_path / "capture" / "ep")
    got = {
        r["captureData"]["endpointInput"]["data"]: r["captureData"]["endpointOutput"]["data"] for r in records
    }
    assert len(records) == len(sent) == 300 and got == sent
    assert len({r["eventMetadata"]["eventId"] for r in records}) == 300
    assert list(tmp_path.joinpath("spool").glob("*.spool")) == []


@pytest.mark.fault("a server worker SIGKILLed under load from 8 clients")
def test_a_worker_killed_under_load_loses_nothing_it_answered(model_dir: Path, tmp_path: Path) -> None:
    """Two workers under 8 clients; one is SIGKILLed mid-load. Its replacement uploads what it left:
    every answered request is captured once; at most the requests in flight at the kill are captured
    without their answer having reached the client."""
    server = _serve_with_capture(model_dir, tmp_path, "--workers", "2")
    answered: set[str] = set()
    counts = {"requests": 0, "5xx": 0}
    lock = threading.Lock()
    stop = threading.Event()

    def client(n: int) -> None:
        for i in range(100_000):
            if stop.is_set():
                return
            body = f"{n},{i},0"
            try:
                status, _, _ = server.invoke(body)
            except (OSError, http.client.HTTPException):
                continue  # the killed worker's connection: not answered
            with lock:
                counts["requests"] += 1
                counts["5xx"] += status >= 500
                if status == 200:
                    answered.add(body)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.5)
        victim = _children(server.process.pid)[0]
        os.kill(victim, signal.SIGKILL)
        time.sleep(2.0)  # the supervisor starts another worker, which takes over the spool
        stop.set()
        for thread in threads:
            thread.join(30)
    finally:
        assert server.stop() == 0
    faults_summary.count_5xx(counts["requests"], counts["5xx"])
    records = captured(tmp_path / "capture" / "ep")
    bodies = [r["captureData"]["endpointInput"]["data"] for r in records]
    assert len(bodies) == len(set(bodies))  # nothing twice
    assert answered <= set(bodies)  # nothing answered is missing
    assert len(set(bodies) - answered) <= len(threads)  # at most one in flight per client
    assert len(answered) > 200
    assert counts["5xx"] == 0
    assert victim not in _children(server.process.pid)
    print(f"answered {len(answered)}, captured {len(bodies)} with a worker SIGKILLed under load")


STOP_AT_READY = """
import os, signal, sys
from pathlib import Path
from mlops_kit.serving.server import ServerOptions, serve
options = ServerOptions(model_dir=Path(sys.argv[1]), port=0, workers=int(sys.argv[2]), timeout_s=float(sys.argv[3]))
serve(options, on_ready=lambda port: os.kill(os.getpid(), signal.SIGTERM))
print("drained and stopped")
"""


@pytest.mark.fault("SIGTERM the moment the server says it is ready")
@pytest.mark.parametrize(("workers", "timeout_s"), [(1, 0), (2, 30)])
def test_a_stop_at_the_moment_of_ready_drains_instead_of_killing(
    model_dir: Path, workers: int, timeout_s: float
) -> None:
    """A supervisor (or a test) that stops the server as soon as its ready file appears: the signal lands
    before the workers' handlers exist. It is noted and honoured, so the server drains (and uploads its
    capture) and exits 0, rather than dying by SIGTERM's default action (-15)."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", STOP_AT_READY, str(model_dir), str(workers), str(timeout_s)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (done.returncode, done.stdout.strip()) == (0, "drained and stopped"), done.stderr[-2000:]


HEADER_TIME = 6.0


@pytest.mark.fault("2,000 connections: 1,000 trickling a header that never ends, 1,000 idle keep-alive")
def test_slow_headers_are_closed_at_the_limit_and_ping_answers_throughout(
    model_dir: Path, tmp_path: Path
) -> None:
    """Slowloris on loopback. Asserted on counts and limits, which a loaded machine cannot bend: every
    connection is accepted, no slow one is closed before the header time (the server's own count is 0
    after the pings), all 1,000 are closed with a 408 at it (counted by reason), the idle ones stay and
    are served, and every /ping is a 200. /ping's latency is measured as percentiles: the median must be
    under 50 ms; the 95th percentile and the worst are reported (a 2-core machine shared with other jobs
    can stall any one request)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2200:
        if hard != resource.RLIM_INFINITY and hard < 2200:
            pytest.fail(f"needs 2,200 open files; ulimit -n allows {hard}: raise the hard limit")
        resource.setrlimit(resource.RLIMIT_NOFILE, (2200, hard))
    server = start_server(model_dir, tmp_path, "--header-timeout-s", str(HEADER_TIME), "--keep-alive-s", "60")
    slow: list[socket.socket] = []
    idle: list[socket.socket] = []
    pings = 0
    try:
        opened = time.monotonic()
        for _ in range(1000):
            raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            raw.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            slow.append(raw)
        for _ in range(1000):
            raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            raw.sendall(PING)
            idle.append(raw)
        for raw in idle:
            assert raw.recv(4096).startswith(b"HTTP/1.1 200")
        latencies = []
        for round_ in range(20):
            for raw in slow[round_ * 50 : (round_ + 1) * 50]:
                raw.sendall(b"s")  # still sending, slowly
            started = time.perf_counter()
            assert server.request("GET", "/ping")[0] == 200
            latencies.append(time.perf_counter() - started)
            time.sleep(0.05)
        pings = len(idle) + len(latencies)
        held = time.monotonic() - opened
        assert held < HEADER_TIME, f"opening 2,000 connections and pinging took {held:.1f}s: inconclusive"
        assert closed_count(server, "header_timeout") == 0  # none closed before its time
        median, p95 = statistics.median(latencies), float(np.percentile(latencies, 95))
        print(
            f"/ping under 2,000 held connections: median {median * 1000:.2f} ms, "
            f"p95 {p95 * 1000:.2f} ms, worst {max(latencies) * 1000:.2f} ms"
        )
        assert median < 0.050, f"/ping's median {median * 1000:.1f} ms"

        selector = selectors.DefaultSelector()
        for raw in slow:
            raw.setblocking(False)
            selector.register(raw, selectors.EVENT_READ)
        answers, first = [], 0.0
        while len(answers) < len(slow) and time.monotonic() - opened < HEADER_TIME + 20:
            for key, _ in selector.select(1.0):
                first = first or time.monotonic()
                answers.append(key.fileobj.recv(4096))
                selector.unregister(key.fileobj)
        assert len(answers) == len(slow) and all(a.startswith(b"HTTP/1.1 408") for a in answers)
        assert first - opened >= HEADER_TIME  # at the header time, not before
        assert closed_count(server, "header_timeout") == len(slow)
        for raw in idle[:100]:
            raw.sendall(PING)
            assert raw.recv(4096).startswith(b"HTTP/1.1 200")
        pings += 100
    finally:
        faults_summary.count_5xx(pings, 0)
        for raw in slow + idle:
            raw.close()
        server.stop()


@pytest.mark.fault("a 3 MiB-of-zeros gzip bomb as the model archive")
def test_the_server_will_not_start_on_a_gzip_bomb(model_dir: Path, tmp_path: Path) -> None:
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as packed:
        for path in sorted(model_dir.rglob("*")):
            packed.add(path, arcname=str(path.relative_to(model_dir)), recursive=False)
        zeros = tarfile.TarInfo("padding.bin")
        zeros.size = 3 * 2**20
        packed.addfile(zeros, io.BytesIO(bytes(zeros.size)))
    with pytest.raises(AssertionError, match="unpacks to more than 2,097,152 bytes"):
        start_server(archive, tmp_path, "--max-model-mb", "2")
    server = start_server(archive, tmp_path, "--max-model-mb", "4")  # the nearest case: within the limit
    try:
        assert server.invoke("1,2,3")[0] == 200
    finally:
        server.stop()


@pytest.fixture(scope="module")
def plain_server(model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    running = start_server(model_dir, tmp_path_factory.mktemp("hostile"))
    yield running
    running.stop()


@pytest.mark.bad_input()
@pytest.mark.parametrize(
    ("body", "content_type", "accept", "status", "reason"),
    [pytest.param(*case[1:6], id=f"http: {case[0]}") for case in HOSTILE],
)
def test_a_hostile_request_is_a_4xx_with_its_reason(
    plain_server: RunningServer, body, content_type: str, accept: str | None, status: int, reason: str
) -> None:
    """serving's table of hostile requests (tests/mlops_kit/serving/test_serving_http.py), one by one."""
    got, headers, answer = plain_server.invoke(_body(body), content_type, accept)
    faults_summary.count_5xx(1, int(got >= 500))
    said = json.loads(answer).get("error", "") if headers["content-type"] == "application/json" else ""
    assert (got, reason in said) == (status, True), said
    assert "\n" not in said
    assert plain_server.request("GET", "/ping")[0] == 200
