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

Nothing answered is lost to a crash, and nothing is written twice. The request path writes each sampled
request to its process's spool file (`Spool`) with one `write()` before the answer is sent, so a server
killed with SIGKILL has lost no record it answered; no fsync, so a machine that loses power may. A thread
of the process uploads the spool to the destination every `flush_seconds` (or sooner when `max_records`
are waiting), one file per hour partition, and records in the spool how far it got; it also takes over
the spool of any process that ended without doing so (a worker the supervisor replaced, a server that
died) and uploads the rest. A record's event id and its capture file's name derive from its place in its
spool, so a batch uploaded again after a crash replaces the file written before it. A sink that fails
keeps the records in the spool for the next flush; only past `max_backlog` are the oldest dropped, and
each drop is counted and logged.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import struct
import tempfile
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


# --- the spool: each answered request in a file of the process, as it is answered ---------------------


class Spool:
    """One process's capture file: each captured request appended with one `write()` as it is answered,
    so once the server has answered, the kernel holds the record and a SIGKILL cannot take it back.

    Layout: a 32-byte header (magic, version, and `committed`: how far the records are in the sink),
    then records of `RECORD` (time, the four lengths) followed by the content types and the bodies. The
    file is locked (flock) while its process lives; a file whose lock can be taken belongs to a process
    that ended, and whoever takes it (`claim`) uploads what it holds past `committed`. The file's id
    and a record's offset make the record's event id and its capture file's name, so a batch written
    again after a crash (written, not yet committed) lands on the same keys: replaced, not duplicated.
    """

    MAGIC = b"MLOPSCAP"
    HEADER = struct.Struct("<8sIIQQ")  # magic, version, reserved, committed offset, reserved
    RECORD = struct.Struct("<dIIHH")  # time, input body, output body, input type, output type lengths
    COMMITTED_AT = 16
    SUFFIX = ".spool"

    def __init__(self, path: Path, fd: int, appender: int | None, committed: int, end: int):
        self.path = path
        self.id = path.stem.rsplit("-", 1)[-1]  # a uuid4's 32 hex digits
        self._fd = fd  # read, commit, and the lock
        self._appender = appender  # O_APPEND: None for a claimed file, which gets no new records
        self.committed = committed
        self.end = end
        # records appended (by the request path) and done with (by the uploader): each counter has one
        # writer, so neither loses a count to the other thread
        self.appended = 0
        self.done = 0

    @property
    def pending(self) -> int:
        """Records in the file not yet written to the sink (nor dropped)."""
        return self.appended - self.done

    @classmethod
    def create(cls, folder: Path) -> Spool:
        """A new, locked spool file in `folder` (named only once locked and headed, so no one claims it)."""
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{os.getpid()}-{uuid.uuid4().hex}"
        tmp = folder / f".{name}.tmp"
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, cls.HEADER.pack(cls.MAGIC, 1, 0, cls.HEADER.size, 0))
        path = folder / f"{name}{cls.SUFFIX}"
        os.replace(tmp, path)
        appender = os.open(path, os.O_WRONLY | os.O_APPEND)
        return cls(path, fd, appender, cls.HEADER.size, cls.HEADER.size)

    @classmethod
    def claim(cls, path: Path) -> Spool | None:
        """The spool file of a process that ended, locked for this one; None if its owner is alive (or
        another process claimed it first) or it is not a spool file."""
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            header = os.pread(fd, cls.HEADER.size, 0)
            if len(header) < cls.HEADER.size or header[:8] != cls.MAGIC:
                raise ValueError("not a spool file")
            committed = cls.HEADER.unpack(header)[3]
            end = os.fstat(fd).st_size
        except (BlockingIOError, ValueError):
            os.close(fd)
            return None
        if not path.exists():  # uploaded and removed by the process that held it just before
            os.close(fd)
            return None
        spool = cls(path, fd, None, committed, end)
        spool.appended = spool.count(committed)
        return spool

    def append(self, record: bytes) -> None:
        """One record, one write(): in the kernel's hands when this returns. No fsync (a crash of the
        machine, not of the process, may lose what the disk has not got)."""
        assert self._appender is not None
        written = os.write(self._appender, record)
        while written < len(record):  # only a full disk or a signal writes less; finish or raise
            written += os.write(self._appender, record[written:])
        self.end += len(record)
        self.appended += 1

    def read(self, start: int, end: int) -> bytes:
        return os.pread(self._fd, end - start, start)

    def commit(self, offset: int) -> None:
        os.pwrite(self._fd, struct.pack("<Q", offset), self.COMMITTED_AT)
        self.committed = offset

    def close(self, remove: bool) -> None:
        if remove:
            self.path.unlink(missing_ok=True)  # before the lock goes: no one claims a removed file
        if self._appender is not None:
            os.close(self._appender)
            self._appender = None
        os.close(self._fd)

    @classmethod
    def encode(cls, when: float, in_type: str, in_body: bytes, out_type: str, out_body: bytes) -> bytes:
        in_kind, out_kind = (
            in_type.encode(errors="surrogateescape"),
            out_type.encode(errors="surrogateescape"),
        )
        head = cls.RECORD.pack(when, len(in_body), len(out_body), len(in_kind), len(out_kind))
        return b"".join((head, in_kind, out_kind, in_body, out_body))

    def count(self, start: int) -> int:
        """Whole records from `start` to the end, read from their heads only."""
        found = 0
        head = self.RECORD
        while start + head.size <= self.end:
            _, in_len, out_len, in_kind_len, out_kind_len = head.unpack(self.read(start, start + head.size))
            start += head.size + in_len + out_len + in_kind_len + out_kind_len
            if start > self.end:
                break
            found += 1
        return found

    def records(self, start: int, limit: int, max_bytes: int = 8 << 20) -> tuple[list[tuple], int]:
        """Up to `limit` whole records from `start`: ([(offset, when, in type, in body, out type, out
        body)], the offset after the last one). A record cut short at the end is left for later."""
        found: list[tuple] = []
        data = self.read(start, min(self.end, start + max_bytes))
        at = 0
        size = self.RECORD.size
        while len(found) < limit and len(data) - at >= size:
            when, in_len, out_len, in_kind_len, out_kind_len = self.RECORD.unpack_from(data, at)
            total = size + in_kind_len + out_kind_len + in_len + out_len
            if len(data) - at < total:
                if at == 0 and start + total <= self.end:  # one record larger than a read: read it alone
                    data, at = self.read(start, start + total), 0
                    continue
                break
            p = at + size
            in_kind = data[p : p + in_kind_len].decode(errors="surrogateescape")
            p += in_kind_len
            out_kind = data[p : p + out_kind_len].decode(errors="surrogateescape")
            p += out_kind_len
            found.append(
                (
                    start + at,
                    when,
                    in_kind,
                    data[p : p + in_len],
                    out_kind,
                    data[p + in_len : p + in_len + out_len],
                )
            )
            at += total
        return found, start + at


def event_id(spool_id: str, offset: int) -> str:
    """A record's eventId: its spool's id and its offset, as a UUID (the same whenever it is read)."""
    text = spool_id[:20] + f"{offset:012x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:32]}"


def default_spool(endpoint: str, destination: str) -> Path:
    """Where a server's capture files wait for their upload, unless told: a folder of the machine's temp
    folder for this endpoint and destination (what one server leaves there, only a server capturing
    the same endpoint to the same place takes over)."""
    digest = hashlib.sha1(destination.encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / "mlops-capture" / f"{endpoint}-{digest}"


# --- the buffer ----------------------------------------------------------------------------------


@dataclass
class CaptureCounters:
    """Hooks the server's metrics count with (called from the writer thread)."""

    written: Callable[[int], None] = lambda n: None
    dropped: Callable[[int], None] = lambda n: None
    failed: Callable[[int], None] = lambda n: None


class CaptureBuffer:
    """Captured requests written through to this process's spool file, uploaded in the background.

    `offer` (the request path) appends the record to the spool with one write() before the answer is
    sent: a SIGKILL loses nothing that was answered. A thread reads the spool every `flush_seconds`
    (sooner when `max_records` are waiting), writes SageMaker's capture files to the sink, and commits
    how far it got; a sink that fails keeps the records in the spool for the next flush, and only past
    `max_backlog` are the oldest dropped, each drop counted and logged. At start, and on every flush, the
    thread also takes over the spool files of processes that ended (a worker killed with SIGKILL, a
    server that died) and uploads what they hold. `close()` uploads what is left and removes the file.
    """

    ROTATE_BYTES = 64 << 20  # a spool file this large is sealed once uploaded, and a new one begun

    def __init__(
        self,
        sink: CaptureSink,
        endpoint: str,
        percent: float,
        *,
        spool: Path | str | None = None,
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
        # A spool of its own (none given) is a fresh temp folder no later process would look in: removed
        # at close, when nothing waits in it.
        self._own_folder = spool is None
        self.folder = Path(spool) if spool is not None else Path(tempfile.mkdtemp(prefix="mlops-capture-"))
        self._spool = Spool.create(self.folder)
        self._sealed: list[Spool] = []  # rotated out of this process, and claimed from ended ones
        self._sequence = 0
        self._wake = threading.Event()
        self._lock = threading.Lock()  # one flush at a time (the thread's, or close's)
        self._closing = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._lines = LineWriter(endpoint)

    def start(self) -> CaptureBuffer:
        self._thread = threading.Thread(target=self._run, name="capture-writer", daemon=True)
        self._thread.start()
        return self

    def offer(self, input_type: str, input_body: bytes, output_type: str, output_body: bytes) -> bool:
        """Called once per answered request, before the answer is sent. Returns whether it was sampled."""
        sequence = self._sequence
        self._sequence = sequence + 1
        if not should_capture(sequence, self.percent):
            return False
        spool = self._spool
        spool.append(Spool.encode(self.clock(), input_type, input_body, output_type, output_body))
        if spool.pending >= self.max_records:
            self._wake.set()
        if spool.end >= self.ROTATE_BYTES:
            self._sealed.append(spool)  # the writer uploads the rest and removes it
            self._spool = Spool.create(self.folder)
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Stop the writer after a last upload; a spool with records the sink did not take stays on disk
        for the next process to claim."""
        self._closing = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        else:
            self.flush()
        with self._lock:
            for spool in self._spools():
                spool.close(remove=spool.committed >= spool.end)
            self._sealed = []
            self._closed = True
            if self._own_folder:
                with contextlib.suppress(OSError):  # not empty: records wait there, say so below
                    self.folder.rmdir()

    def _run(self) -> None:
        while not self._closing:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            self.flush()
        self.flush()

    def _spools(self) -> list[Spool]:
        # `offer` may seal the current spool meanwhile (it joins `_sealed`, then `_spool` changes): once each
        return list(dict.fromkeys([*self._sealed, self._spool]))

    def flush(self) -> int:
        """Upload every record waiting, this process's and those of ended processes; how many were."""
        with self._lock:
            if self._closed:  # a writer that outlived close()'s wait (a sink that hangs)
                return 0
            self._claim_orphans()
            written = 0
            for spool in self._spools():
                written += self._upload(spool)
                if spool is not self._spool and spool.committed >= spool.end:
                    self._sealed.remove(spool)
                    spool.close(remove=True)
            if written:
                self.counters.written(written)
            self._trim_backlog()
            return written

    def _claim_orphans(self) -> None:
        held = {spool.path for spool in self._spools()}
        for path in sorted(self.folder.glob(f"*{Spool.SUFFIX}")):
            if path in held:
                continue
            spool = Spool.claim(path)
            if spool is None:
                continue
            if spool.committed < spool.end:
                log.warning(
                    "capture: uploading %d bytes of records left by a process that ended (%s)",
                    spool.end - spool.committed,
                    path.name,
                )
            self._sealed.append(spool)

    def _upload(self, spool: Spool) -> int:
        """Write `spool`'s records past `committed` to the sink, a batch of `max_records` at a time."""
        written = 0
        while spool.committed < spool.end:
            records, after = spool.records(spool.committed, self.max_records)
            if not records:
                if spool._appender is None:  # an ended process's last record, cut short: nothing to save
                    log.warning(
                        "capture: %s ends in a partial record; %d bytes skipped",
                        spool.path.name,
                        spool.end - spool.committed,
                    )
                    spool.commit(spool.end)
                break
            files: dict[str, list[str]] = {}
            first: dict[str, tuple[float, int]] = {}
            lines = self._lines
            for offset, when, in_type, in_body, out_type, out_body in records:
                folder = lines.at(when)
                line = lines.line(when, in_type, in_body, out_type, out_body, event_id(spool.id, offset))
                files.setdefault(folder, []).append(line)
                first.setdefault(folder, (when, offset))
            try:
                for folder, group in files.items():
                    when, offset = first[folder]
                    file_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"mlops-capture:{spool.id}:{offset}"))
                    self.sink.write(
                        file_key(self.endpoint, when, file_id), ("\n".join(group) + "\n").encode()
                    )
            except Exception as exc:  # the sink is remote: the records stay in the spool for the next flush
                self.counters.failed(1)
                log.warning("capture: writing to %s failed (%s); will retry", self.sink.uri, exc)
                break
            spool.commit(after)
            spool.done += len(records)
            written += len(records)
        return written

    def _trim_backlog(self) -> None:
        """Past `max_backlog` records waiting, skip the oldest (counted and logged as dropped)."""
        excess = self.waiting - self.max_backlog
        for spool in self._spools():
            while excess > 0 and spool.committed < spool.end:
                records, after = spool.records(spool.committed, excess)
                if not records:
                    break
                spool.commit(after)
                spool.done += len(records)
                excess -= len(records)
                self.counters.dropped(len(records))
                log.error(
                    "capture: dropped %d records (%s) after repeated failures of %s",
                    len(records),
                    spool.path.name,
                    self.sink.uri,
                )

    @property
    def waiting(self) -> int:
        """Records not yet in the sink (after close: those left in spool files for the next process)."""
        return sum(spool.pending for spool in self._spools())
