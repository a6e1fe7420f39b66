"""Data capture in SageMaker's format: what an endpoint received and answered, as JSON lines.

Each captured request is one line:

    {"captureData": {"endpointInput":  {"observedContentType": "text/csv", "mode": "INPUT",
                                        "data": "1.0,2.0", "encoding": "CSV"},
                     "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT",
                                        "data": "[0]", "encoding": "JSON"}},
     "eventMetadata": {"eventId": "<uuid>", "inferenceTime": "2026-11-26T20:15:03Z"},
     "eventVersion": "0"}

in files under `<destination>/<endpoint>/AllTraffic/yyyy/mm/dd/hh/<MM-SS-mmm>-<uuid>.jsonl`, the layout
SageMaker writes and Model Monitor reads. The destination is S3 (`s3://bucket[/prefix]`, boto3, so the
emulator works too) or a local folder.

The request path only appends a tuple to a deque (`CaptureBuffer.offer`); a background thread builds the
lines and writes one file per hour partition every `flush_seconds` (or sooner when `max_records` are
waiting). `close()` flushes what is left, so with 100 % sampling no request is missing from capture
after a clean shutdown. A sink that fails keeps the records for the next flush; only past
`max_backlog` records are the oldest dropped, and each drop is counted and logged.
"""

from __future__ import annotations

import base64
import collections
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from mlops_kit.serving import contract

log = logging.getLogger("mlops_kit.serving.capture")

VARIANT = "AllTraffic"
EVENT_VERSION = "0"


# --- pure decisions ------------------------------------------------------------------------------


def should_capture(sequence: int, percent: float) -> bool:
    """Whether request number `sequence` (0, 1, 2, ...) is captured at `percent`.

    Deterministic and exact: of any first N requests, floor(N * percent / 100) are captured, spread
    evenly (no random draw, so no seed and no run-to-run variation). 100 captures all, 0 none.
    """
    if percent >= 100:
        return True
    if percent <= 0:
        return False
    return int((sequence + 1) * percent / 100) > int(sequence * percent / 100)


def encoding_of(content_type: str) -> str:
    """SageMaker's capture encoding for a content type: CSV, JSON, or BASE64 for anything else."""
    kind = contract.media_type(content_type)
    if kind == contract.CSV:
        return "CSV"
    if kind == contract.JSON or kind.endswith("+json") or kind == "application/jsonlines":
        return "JSON"
    return "BASE64"


def encoded(content_type: str, body: bytes) -> tuple[str, str]:
    """(encoding, data) of a captured body: text as it is, or base64 for binary and non-UTF-8 text."""
    encoding = encoding_of(content_type)
    if encoding != "BASE64":
        try:
            return encoding, body.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return "BASE64", base64.b64encode(body).decode("ascii")


def _payload(content_type: str, body: bytes, mode: str) -> dict[str, str]:
    encoding, data = encoded(content_type, body)
    return {"observedContentType": content_type, "mode": mode, "data": data, "encoding": encoding}


def inference_time(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def capture_record(
    *,
    when: float,
    input_type: str,
    input_body: bytes,
    output_type: str,
    output_body: bytes,
    event_id: str,
) -> dict[str, Any]:
    """One captured request/response pair, exactly as SageMaker writes it."""
    return {
        "captureData": {
            "endpointInput": _payload(input_type, input_body, "INPUT"),
            "endpointOutput": _payload(output_type, output_body, "OUTPUT"),
        },
        "eventMetadata": {"eventId": event_id, "inferenceTime": inference_time(when)},
        "eventVersion": EVENT_VERSION,
    }


class LineWriter:
    """`json.dumps(capture_record(...))`, a few times faster: the writer thread shares the server's core.

    The parts that repeat (a content type's payload keys, a second's timestamp and hour folder) are
    formatted once; only the bodies and the event id are encoded per record. Same text, byte for byte.
    """

    def __init__(self, endpoint: str):
        self.endpoint = endpoint
        self._heads: dict[tuple[str, str], str] = {}
        self._second = -1
        self._time = ""
        self._folder = ""

    def at(self, when: float) -> str:
        """The hour folder of `when` (and remember its timestamp for the next `line`)."""
        second = int(when)
        if second != self._second:
            self._second, self._time, self._folder = (
                second,
                inference_time(when),
                partition(self.endpoint, when),
            )
        return self._folder

    def _payload(self, content_type: str, body: bytes, mode: str) -> str:
        encoding, data = encoded(content_type, body)
        head = self._heads.get((content_type, mode))
        if head is None:
            head = self._heads[(content_type, mode)] = (
                f'{{"observedContentType":{json.dumps(content_type)},"mode":"{mode}","data":'
            )
        return f'{head}{json.dumps(data)},"encoding":"{encoding}"}}'

    def line(
        self, when: float, in_type: str, in_body: bytes, out_type: str, out_body: bytes, event_id: str
    ) -> str:
        self.at(when)
        return (
            '{"captureData":{"endpointInput":'
            + self._payload(in_type, in_body, "INPUT")
            + ',"endpointOutput":'
            + self._payload(out_type, out_body, "OUTPUT")
            + '},"eventMetadata":{"eventId":"'
            + event_id
            + '","inferenceTime":"'
            + self._time
            + '"},"eventVersion":"'
            + EVENT_VERSION
            + '"}'
        )


def partition(endpoint: str, epoch_seconds: float) -> str:
    """`<endpoint>/AllTraffic/yyyy/mm/dd/hh`: the hour folder a request at that time lands in."""
    return f"{endpoint}/{VARIANT}/" + datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y/%m/%d/%H")


def file_key(endpoint: str, epoch_seconds: float, file_id: str) -> str:
    """`<endpoint>/AllTraffic/yyyy/mm/dd/hh/<MM-SS-mmm>-<id>.jsonl`, SageMaker's capture file name."""
    moment = datetime.fromtimestamp(epoch_seconds, UTC)
    stamp = moment.strftime("%M-%S-") + f"{moment.microsecond // 1000:03d}"
    return f"{partition(endpoint, epoch_seconds)}/{stamp}-{file_id}.jsonl"


def parse_lines(text: str) -> list[dict[str, Any]]:
    """Read a capture file back (the monitoring side's first step, and the tests')."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def decoded_data(payload: dict[str, Any]) -> bytes:
    """The body a captured `endpointInput` / `endpointOutput` carried, whatever its encoding."""
    if payload["encoding"] == "BASE64":
        return base64.b64decode(payload["data"])
    return payload["data"].encode("utf-8")


# --- sinks ---------------------------------------------------------------------------------------


class CaptureSink(Protocol):
    """Where capture files go. `write` must be atomic: a reader never sees half a file."""

    uri: str

    def write(self, key: str, data: bytes) -> None: ...


class LocalSink:
    """Capture files in a folder, in the same layout as under the S3 destination."""

    def __init__(self, root: Path | str):
        self.root = Path(root)
        self.uri = str(self.root)

    def write(self, key: str, data: bytes) -> None:
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)


class S3Sink:
    """Capture files in S3 (or the emulator's S3: boto3 honours AWS_ENDPOINT_URL)."""

    def __init__(self, bucket: str, prefix: str = "", client: Callable[[], Any] | None = None):
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.uri = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self._factory = client or _default_s3
        self._client: Any = None

    def write(self, key: str, data: bytes) -> None:
        if self._client is None:  # made in the writer thread, after any fork: boto3 is not fork-safe
            self._client = self._factory()
        full = f"{self.prefix}/{key}" if self.prefix else key
        self._client.put_object(Bucket=self.bucket, Key=full, Body=data, ContentType="application/jsonlines")


def _default_s3() -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client("s3", config=Config(retries={"max_attempts": 3, "mode": "standard"}))


def sink_for(destination: str) -> CaptureSink:
    """`s3://bucket[/prefix]` -> S3Sink; anything else is a local folder."""
    if destination.startswith("s3://"):
        bucket, _, prefix = destination[len("s3://") :].partition("/")
        if not bucket:
            raise ValueError(f"capture destination {destination!r} names no bucket")
        return S3Sink(bucket, prefix)
    if "://" in destination:
        raise ValueError(f"capture destination {destination!r}: use s3://bucket[/prefix] or a local folder")
    return LocalSink(destination)


# --- the buffer ----------------------------------------------------------------------------------


@dataclass
class CaptureCounters:
    """Hooks the server's metrics count with (called from the writer thread)."""

    written: Callable[[int], None] = lambda n: None
    dropped: Callable[[int], None] = lambda n: None
    failed: Callable[[int], None] = lambda n: None


class CaptureBuffer:
    """Buffers captured requests off the request path and writes them in the background."""

    def __init__(
        self,
        sink: CaptureSink,
        endpoint: str,
        percent: float,
        *,
        flush_seconds: float = 1.0,
        max_records: int = 2000,
        max_backlog: int = 200_000,
        counters: CaptureCounters | None = None,
        clock: Callable[[], float] = time.time,
    ):
        if not 0 <= percent <= 100:
            raise ValueError(f"capture percent must be within 0..100, got {percent}")
        self.sink = sink
        self.endpoint = endpoint
        self.percent = percent
        self.flush_seconds = flush_seconds
        self.max_records = max_records
        self.max_backlog = max_backlog
        self.counters = counters or CaptureCounters()
        self.clock = clock
        self._pending: collections.deque[tuple[float, str, bytes, str, bytes]] = collections.deque()
        self._sequence = 0
        self._wake = threading.Event()
        self._closing = False
        self._thread: threading.Thread | None = None
        self._retry: list[tuple[str, bytes, int]] = []
        self._lines = LineWriter(endpoint)

    def start(self) -> CaptureBuffer:
        self._thread = threading.Thread(target=self._run, name="capture-writer", daemon=True)
        self._thread.start()
        return self

    def offer(self, input_type: str, input_body: bytes, output_type: str, output_body: bytes) -> bool:
        """Called once per answered request; cheap. Returns whether the request was sampled."""
        sequence = self._sequence
        self._sequence = sequence + 1
        if not should_capture(sequence, self.percent):
            return False
        self._pending.append((self.clock(), input_type, input_body, output_type, output_body))
        if len(self._pending) >= self.max_records:
            self._wake.set()
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Stop the writer after a last flush of everything buffered."""
        self._closing = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        else:
            self.flush()

    def _run(self) -> None:
        while not self._closing:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            self.flush()
        self.flush()

    def flush(self) -> int:
        """Write every buffered record now; returns how many were written."""
        batch = []
        while self._pending:
            batch.append(self._pending.popleft())
        files: dict[str, list[str]] = {}
        first: dict[str, float] = {}
        lines = self._lines
        for when, in_type, in_body, out_type, out_body in batch:
            folder = lines.at(when)
            line = lines.line(when, in_type, in_body, out_type, out_body, str(uuid.uuid4()))
            files.setdefault(folder, []).append(line)
            first.setdefault(folder, when)
        todo = self._retry + [
            (
                file_key(self.endpoint, first[folder], str(uuid.uuid4())),
                ("\n".join(lines) + "\n").encode(),
                len(lines),
            )
            for folder, lines in files.items()
        ]
        self._retry = []
        written = 0
        for key, data, count in todo:
            try:
                self.sink.write(key, data)
            except Exception as exc:  # the sink is remote; keep the records and try again next flush
                self.counters.failed(1)
                log.warning("capture: writing %s to %s failed (%s); will retry", key, self.sink.uri, exc)
                self._retry.append((key, data, count))
                continue
            written += count
        if written:
            self.counters.written(written)
        self._trim_backlog()
        return written

    def _trim_backlog(self) -> None:
        waiting = sum(count for _, _, count in self._retry)
        while self._retry and waiting > self.max_backlog:
            key, _, count = self._retry.pop(0)
            waiting -= count
            self.counters.dropped(count)
            log.error(
                "capture: dropped %d records (%s) after repeated failures of %s", count, key, self.sink.uri
            )

    @property
    def waiting(self) -> int:
        return len(self._pending) + sum(count for _, _, count in self._retry)
