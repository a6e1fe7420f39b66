"""Prometheus metrics for the server, shared by all its worker processes without locks.

The server forks its workers; a scrape of `/metrics` reaches one of them, yet must report them all. So
the counters live in one anonymous shared memory map made before the fork: one row of float64 slots per
worker, each worker writing only its own row (no lock on the request path), and `render()` summing the
rows into Prometheus' text format. A restarted worker reuses its row, so counters never go backwards.
"""

from __future__ import annotations

import bisect
import mmap

import numpy as np

# Latency buckets (seconds) of the invocation histogram: fine below 25 ms, where a healthy model lives.
BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)
CODES = (200, 400, 404, 405, 406, 413, 415, 500, 503)

# Slot layout of one worker's row.
_CODE_SLOT = {code: i for i, code in enumerate(CODES)}
_OTHER_CODE = len(CODES)
_BUCKET0 = _OTHER_CODE + 1
_SUM = _BUCKET0 + len(BUCKETS) + 1  # + the +Inf bucket
_COUNT = _SUM + 1
_CAPTURED = _COUNT + 1
_CAPTURE_DROPPED = _CAPTURED + 1
_CAPTURE_FAILED = _CAPTURE_DROPPED + 1
_BATCHES = _CAPTURE_FAILED + 1
_BATCHED = _BATCHES + 1
# Connections the server closed on a limit, by reason (see `server.ServerOptions`).
CLOSE_REASONS = ("limit", "header_size", "header_timeout", "body_timeout", "idle")
_CLOSED = {reason: _BATCHED + 1 + i for i, reason in enumerate(CLOSE_REASONS)}
SLOTS = _BATCHED + 1 + len(CLOSE_REASONS)

PREFIX = "mlops_serving"


class Metrics:
    """Counters for `workers` processes; `for_worker(i)` is the view one worker writes through."""

    def __init__(self, workers: int = 1):
        self.workers = workers
        self._map = mmap.mmap(-1, max(1, workers) * SLOTS * 8)  # anonymous + shared: survives fork
        self.table = np.frombuffer(self._map, dtype=np.float64).reshape(workers, SLOTS)
        self.row = self.table[0]

    def for_worker(self, index: int) -> Metrics:
        view = object.__new__(Metrics)
        view.workers, view._map, view.table, view.row = self.workers, self._map, self.table, self.table[index]
        return view

    def observe(self, status: int, seconds: float) -> None:
        """One answered invocation: its status code and how long it took."""
        row = self.row
        row[_CODE_SLOT.get(status, _OTHER_CODE)] += 1
        row[_BUCKET0 + bisect.bisect_left(BUCKETS, seconds)] += 1
        row[_SUM] += seconds
        row[_COUNT] += 1

    def captured(self, n: int) -> None:
        self.row[_CAPTURED] += n

    def capture_dropped(self, n: int) -> None:
        self.row[_CAPTURE_DROPPED] += n

    def capture_failed(self, n: int) -> None:
        self.row[_CAPTURE_FAILED] += n

    def shared_predict(self, requests: int) -> None:
        """One model.predict call answered `requests` invocations together."""
        self.row[_BATCHES] += 1
        self.row[_BATCHED] += requests

    def closed(self, reason: str) -> None:
        """The server closed a connection on a limit (one of `CLOSE_REASONS`)."""
        self.row[_CLOSED[reason]] += 1

    def totals(self) -> np.ndarray:
        return self.table.sum(axis=0)

    def render(self) -> bytes:
        """All workers' counters in Prometheus' text exposition format (version 0.0.4)."""
        t = self.totals()
        out = [
            f"# HELP {PREFIX}_requests_total Invocations answered, by HTTP status code.",
            f"# TYPE {PREFIX}_requests_total counter",
        ]
        for code in CODES:
            out.append(f'{PREFIX}_requests_total{{code="{code}"}} {t[_CODE_SLOT[code]]:.0f}')
        out.append(f'{PREFIX}_requests_total{{code="other"}} {t[_OTHER_CODE]:.0f}')
        client = sum(t[_CODE_SLOT[c]] for c in CODES if 400 <= c < 500)
        server = sum(t[_CODE_SLOT[c]] for c in CODES if c >= 500)
        out += [
            f"# HELP {PREFIX}_errors_total Invocations that failed: client (4xx) or server (5xx) errors.",
            f"# TYPE {PREFIX}_errors_total counter",
            f'{PREFIX}_errors_total{{kind="client"}} {client:.0f}',
            f'{PREFIX}_errors_total{{kind="server"}} {server:.0f}',
            f"# HELP {PREFIX}_request_seconds Invocation latency, from the request's first byte to the answer.",
            f"# TYPE {PREFIX}_request_seconds histogram",
        ]
        cumulative = 0.0
        for i, bound in enumerate(BUCKETS):
            cumulative += t[_BUCKET0 + i]
            out.append(f'{PREFIX}_request_seconds_bucket{{le="{bound:g}"}} {cumulative:.0f}')
        cumulative += t[_BUCKET0 + len(BUCKETS)]
        out += [
            f'{PREFIX}_request_seconds_bucket{{le="+Inf"}} {cumulative:.0f}',
            f"{PREFIX}_request_seconds_sum {t[_SUM]:.6f}",
            f"{PREFIX}_request_seconds_count {t[_COUNT]:.0f}",
        ]
        for name, slot, text in (
            ("capture_records_total", _CAPTURED, "Captured requests written to the capture destination."),
            (
                "capture_dropped_total",
                _CAPTURE_DROPPED,
                "Captured requests dropped after the sink kept failing.",
            ),
            ("capture_failures_total", _CAPTURE_FAILED, "Failed writes of capture files (retried)."),
            ("shared_predicts_total", _BATCHES, "model.predict calls that answered several invocations."),
            ("shared_predict_requests_total", _BATCHED, "Invocations answered by a shared predict call."),
        ):
            out += [
                f"# HELP {PREFIX}_{name} {text}",
                f"# TYPE {PREFIX}_{name} counter",
                f"{PREFIX}_{name} {t[slot]:.0f}",
            ]
        out += [
            f"# HELP {PREFIX}_connections_closed_total Connections the server closed on a limit, by reason.",
            f"# TYPE {PREFIX}_connections_closed_total counter",
        ]
        for reason in CLOSE_REASONS:
            out.append(f'{PREFIX}_connections_closed_total{{reason="{reason}"}} {t[_CLOSED[reason]]:.0f}')
        out.append(f"# HELP {PREFIX}_workers Worker processes serving.")
        out.append(f"# TYPE {PREFIX}_workers gauge")
        out.append(f"{PREFIX}_workers {self.workers}")
        return ("\n".join(out) + "\n").encode()


def parse(text: str) -> dict[str, float]:
    """Prometheus text back into {`name{labels}`: value} (for tests and `mlops` tooling)."""
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values
