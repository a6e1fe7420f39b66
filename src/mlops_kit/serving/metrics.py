"""Prometheus metrics for the server, shared by all its worker processes without locks.

The server forks its workers; a scrape of `/metrics` reaches one of them, yet must report them all. So
the counters live in one anonymous shared memory map made before the fork: one row of float64 slots per
worker, each worker writing only its own row (no lock on the request path), and `render()` summing the
rows into Prometheus' text format. A restarted worker reuses its row, so counters never go backwards.

Names follow Prometheus' conventions: `mlops_http_request_duration_seconds` (histogram; labels method,
path, status: every answer counted, 404/405/413/431 included), `mlops_predict_duration_seconds` (one
model predict call), `mlops_model_info{endpoint,package,model} 1`, and the server's own counters under
`mlops_serving_*`. `dashboards/grafana/mlops-serving.json` queries these (a test holds it to them).
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
# The labels of the request histogram: every answer the server sends is counted under one of these
# (a value outside the list under "other"), so the series stay few and fixed, and none is ever lost.
METHODS = ("GET", "POST", "other")
PATHS = ("/invocations", "/ping", "/metrics", "/execution-parameters", "other")
STATUSES = (200, 400, 404, 405, 406, 408, 413, 415, 431, 500, 503, "other")

_METHOD = {m.encode(): i for i, m in enumerate(METHODS[:-1])}
_PATH = {p.encode(): i for i, p in enumerate(PATHS[:-1])}
_STATUS = {code: i for i, code in enumerate(STATUSES[:-1])}
_HISTOGRAM = len(BUCKETS) + 3  # the buckets, +Inf, sum, count
_SERIES = len(METHODS) * len(PATHS) * len(STATUSES)

# Slot layout of one worker's row: one histogram per (method, path, status), then the predict histogram.
_REQUESTS = 0
_PREDICT = _REQUESTS + _SERIES * _HISTOGRAM
_CAPTURED = _PREDICT + _HISTOGRAM
_CAPTURE_DROPPED = _CAPTURED + 1
_CAPTURE_FAILED = _CAPTURE_DROPPED + 1
_BATCHES = _CAPTURE_FAILED + 1
_BATCHED = _BATCHES + 1
# Connections the server closed on a limit, by reason (see `server.ServerOptions`).
CLOSE_REASONS = ("limit", "header_size", "header_timeout", "body_timeout", "idle")
_CLOSED = {reason: _BATCHED + 1 + i for i, reason in enumerate(CLOSE_REASONS)}
SLOTS = _BATCHED + 1 + len(CLOSE_REASONS)

PREFIX = "mlops_serving"
REQUEST_DURATION = "mlops_http_request_duration_seconds"
PREDICT_DURATION = "mlops_predict_duration_seconds"
MODEL_INFO = "mlops_model_info"
# Every metric family `render()` writes: what a dashboard may query (tests hold dashboards to this).
FAMILIES = {
    REQUEST_DURATION: "histogram",
    PREDICT_DURATION: "histogram",
    MODEL_INFO: "gauge",
    f"{PREFIX}_capture_records_total": "counter",
    f"{PREFIX}_capture_dropped_total": "counter",
    f"{PREFIX}_capture_failures_total": "counter",
    f"{PREFIX}_shared_predicts_total": "counter",
    f"{PREFIX}_shared_predict_requests_total": "counter",
    f"{PREFIX}_connections_closed_total": "counter",
    f"{PREFIX}_workers": "gauge",
}


def _label(value: str) -> str:
    """A label value in the exposition format: backslash, quote and line break escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    """Counters for `workers` processes; `for_worker(i)` is the view one worker writes through.

    `info` are the labels of `mlops_model_info` (what is served: endpoint, package, model).
    """

    def __init__(self, workers: int = 1, info: dict[str, str] | None = None):
        self.workers = workers
        self.info = dict(info or {})
        self._map = mmap.mmap(-1, max(1, workers) * SLOTS * 8)  # anonymous + shared: survives fork
        self.table = np.frombuffer(self._map, dtype=np.float64).reshape(workers, SLOTS)
        # The request path writes through a memoryview of the same memory: an item's += costs tens of
        # nanoseconds there, against hundreds through a numpy array.
        self._cells = memoryview(self._map).cast("d")
        self.row = self._cells[0:SLOTS]

    def for_worker(self, index: int) -> Metrics:
        view = object.__new__(Metrics)
        view.workers, view.info, view._map, view.table = self.workers, self.info, self._map, self.table
        view._cells = self._cells
        view.row = self._cells[index * SLOTS : (index + 1) * SLOTS]
        return view

    def observe(self, method: bytes, path: bytes, status: int, seconds: float) -> None:
        """One answer sent, whatever it was (an invocation, a ping, a 404, a refusal): how long it took
        from the request's first byte."""
        series = (_METHOD.get(method, 2) * len(PATHS) + _PATH.get(path, 4)) * len(STATUSES) + _STATUS.get(
            status, 11
        )
        base = _REQUESTS + series * _HISTOGRAM
        row = self.row
        row[base + bisect.bisect_left(BUCKETS, seconds)] += 1
        row[base + _HISTOGRAM - 2] += seconds
        row[base + _HISTOGRAM - 1] += 1

    def predicted(self, seconds: float) -> None:
        """One call of the model's predict (shared by several requests or not): how long it took."""
        row = self.row
        row[_PREDICT + bisect.bisect_left(BUCKETS, seconds)] += 1
        row[_PREDICT + _HISTOGRAM - 2] += seconds
        row[_PREDICT + _HISTOGRAM - 1] += 1

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
            f"# HELP {REQUEST_DURATION} Time from a request's first byte to its answer, every answer counted.",
            f"# TYPE {REQUEST_DURATION} histogram",
        ]
        for m, method in enumerate(METHODS):
            for p, path in enumerate(PATHS):
                for s, status in enumerate(STATUSES):
                    base = _REQUESTS + ((m * len(PATHS) + p) * len(STATUSES) + s) * _HISTOGRAM
                    # a series appears once it has counted something; POST /invocations 200 always does
                    if t[base + _HISTOGRAM - 1] or (method, path, status) == ("POST", "/invocations", 200):
                        labels = f'method="{method}",path="{path}",status="{status}"'
                        out += _histogram(REQUEST_DURATION, labels, t, base)
        out += [
            f"# HELP {PREDICT_DURATION} Time of one call of the model's predict (shared or not).",
            f"# TYPE {PREDICT_DURATION} histogram",
            *_histogram(PREDICT_DURATION, "", t, _PREDICT),
            f"# HELP {MODEL_INFO} What this server serves: its endpoint, model package and model.",
            f"# TYPE {MODEL_INFO} gauge",
        ]
        labels = ",".join(f'{k}="{_label(v)}"' for k, v in sorted(self.info.items()))
        out.append(f"{MODEL_INFO}{{{labels}}} 1")
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


def _histogram(name: str, labels: str, t: np.ndarray, base: int) -> list[str]:
    """One histogram series: cumulative buckets, +Inf, sum and count."""
    sep = "," if labels else ""
    lines = []
    cumulative = 0.0
    for i, bound in enumerate(BUCKETS):
        cumulative += t[base + i]
        lines.append(f'{name}_bucket{{{labels}{sep}le="{bound:g}"}} {cumulative:.0f}')
    cumulative += t[base + len(BUCKETS)]
    braces = f"{{{labels}}}" if labels else ""
    lines += [
        f'{name}_bucket{{{labels}{sep}le="+Inf"}} {cumulative:.0f}',
        f"{name}_sum{braces} {t[base + _HISTOGRAM - 2]:.6f}",
        f"{name}_count{braces} {t[base + _HISTOGRAM - 1]:.0f}",
    ]
    return lines


def parse(text: str) -> dict[str, float]:
    """Prometheus text back into {`name{labels}`: value} (for tests and `mlops` tooling)."""
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def total(values: dict[str, float], name: str, **labels: str) -> float:
    """The sum of `name`'s series (as `parse` returns them) whose labels match `labels`; a label given as
    "4xx" matches every status of that class. 0 when none has been counted yet."""
    summed = 0.0
    for key, value in values.items():
        base, _, rest = key.partition("{")
        if base != name:
            continue
        have = dict(pair.split("=", 1) for pair in rest.rstrip("}").split(",") if "=" in pair)
        have = {k: v.strip('"') for k, v in have.items()}
        if all(_matches(have.get(k), want) for k, want in labels.items()):
            summed += value
    return summed


def _matches(have: str | None, want: str) -> bool:
    if have is None:
        return False
    if len(want) == 3 and want.endswith("xx"):
        return have[:1] == want[0] and have.isdigit()
    return have == want
