"""Data capture: SageMaker's record format and key layout, sampling, retries, and files parsed back."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
from pathlib import Path

import pytest
from serving_helpers import start_server

from mlops_kit.serving import capture


def test_sampling_is_exact_and_spread_evenly() -> None:
    for percent in (0, 1, 10, 25, 33, 50, 99, 100):
        picked = [capture.should_capture(i, percent) for i in range(1000)]
        assert sum(picked) == 1000 * percent // 100
    assert [capture.should_capture(i, 50) for i in range(4)] == [False, True, False, True]


def test_encoding_follows_the_content_type() -> None:
    assert capture.encoding_of("text/csv; charset=utf-8") == "CSV"
    assert capture.encoding_of("application/json") == "JSON"
    assert capture.encoding_of("application/x-npy") == "BASE64"


def test_record_has_sagemakers_shape() -> None:
    record = capture.capture_record(
        when=1764186903.25,
        input_type="text/csv",
        input_body=b"1,2,3",
        output_type="application/x-npy",
        output_body=b"\x93NUMPY",
        event_id="e-1",
    )
    assert record == {
        "captureData": {
            "endpointInput": {
                "observedContentType": "text/csv",
                "mode": "INPUT",
                "data": "1,2,3",
                "encoding": "CSV",
            },
            "endpointOutput": {
                "observedContentType": "application/x-npy",
                "mode": "OUTPUT",
                "data": base64.b64encode(b"\x93NUMPY").decode(),
                "encoding": "BASE64",
            },
        },
        "eventMetadata": {"eventId": "e-1", "inferenceTime": "2025-11-26T19:55:03Z"},
        "eventVersion": "0",
    }
    assert capture.decoded_data(record["captureData"]["endpointOutput"]) == b"\x93NUMPY"


@pytest.mark.parametrize(
    ("input_type", "input_body", "output_type", "output_body"),
    [
        ("text/csv", b"1,2,3\n4,5,6", "application/json", b"[0.25,0.75]"),
        ("application/json", '{"instances": [["caf\u00e9", "\\"]]}'.encode(), "text/csv", b"1\n"),
        ("text/csv", b"\xff\xfe", "application/x-npy", b"\x93NUMPY\x00"),
        ('text/csv; charset="utf-8"', b'"quoted",\t', "application/jsonlines", b"{}\n{}"),
    ],
)
def test_the_writer_formats_lines_exactly_as_json_dumps(input_type, input_body, output_type, output_body):
    writer = capture.LineWriter("ep")
    for when in (1764186903.25, 1764186903.9, 1764190000.0):  # same second twice, then another hour
        line = writer.line(when, input_type, input_body, output_type, output_body, "e-1")
        record = capture.capture_record(
            when=when,
            input_type=input_type,
            input_body=input_body,
            output_type=output_type,
            output_body=output_body,
            event_id="e-1",
        )
        assert line == json.dumps(record, separators=(",", ":"))
        assert writer.at(when) == capture.partition("ep", when)


def test_non_utf8_csv_falls_back_to_base64() -> None:
    record = capture.capture_record(
        when=0,
        input_type="text/csv",
        input_body=b"\xff",
        output_type="text/csv",
        output_body=b"1",
        event_id="e",
    )
    assert record["captureData"]["endpointInput"]["encoding"] == "BASE64"


def test_keys_are_hour_partitioned_like_sagemakers() -> None:
    key = capture.file_key("fraud-endpoint", 1764186903.25, "abc")
    assert key == "fraud-endpoint/AllTraffic/2025/11/26/19/55-03-250-abc.jsonl"


def test_sink_for_parses_destinations(tmp_path: Path) -> None:
    s3 = capture.sink_for("s3://bucket/some/prefix")
    assert isinstance(s3, capture.S3Sink) and (s3.bucket, s3.prefix) == ("bucket", "some/prefix")
    assert isinstance(capture.sink_for(str(tmp_path)), capture.LocalSink)
    with pytest.raises(ValueError, match="names no bucket"):
        capture.sink_for("s3://")
    with pytest.raises(ValueError, match="use s3://"):
        capture.sink_for("gs://bucket")


class FlakySink:
    uri = "memory://"

    def __init__(self, failures: int):
        self.failures = failures
        self.files: dict[str, bytes] = {}

    def write(self, key: str, data: bytes) -> None:
        if self.failures:
            self.failures -= 1
            raise OSError("sink down")
        self.files[key] = data


def test_buffer_retries_a_failed_write_and_loses_nothing() -> None:
    sink = FlakySink(failures=2)
    counts = {"written": 0, "failed": 0}
    counters = capture.CaptureCounters(
        written=lambda n: counts.__setitem__("written", counts["written"] + n),
        failed=lambda n: counts.__setitem__("failed", counts["failed"] + n),
    )
    buffer = capture.CaptureBuffer(sink, "ep", 100, counters=counters, clock=lambda: 1764186903.0)
    for i in range(5):
        assert buffer.offer("text/csv", f"{i},1".encode(), "application/json", b"[0]")
    assert buffer.flush() == 0 and buffer.waiting == 5
    assert buffer.flush() == 0
    assert buffer.flush() == 5 and buffer.waiting == 0
    (data,) = sink.files.values()
    inputs = [r["captureData"]["endpointInput"]["data"] for r in capture.parse_lines(data.decode())]
    assert inputs == [f"{i},1" for i in range(5)]
    assert counts == {"written": 5, "failed": 2}


def test_buffer_drops_oldest_past_the_backlog_and_counts_it(tmp_path: Path) -> None:
    dropped: list[int] = []
    sink = FlakySink(failures=99)
    buffer = capture.CaptureBuffer(
        sink,
        "ep",
        100,
        spool=tmp_path,
        max_backlog=3,
        counters=capture.CaptureCounters(dropped=dropped.append),
    )
    for i in range(3):
        buffer.offer("text/csv", f"{i}".encode(), "text/csv", b"0")
    buffer.flush()
    assert dropped == [] and buffer.waiting == 3  # at the backlog limit: kept
    buffer.offer("text/csv", b"3", "text/csv", b"0")
    buffer.flush()
    assert dropped == [1] and buffer.waiting == 3  # one past it: the oldest goes
    sink.failures = 0
    assert buffer.flush() == 3
    (data,) = sink.files.values()
    assert [r["captureData"]["endpointInput"]["data"] for r in capture.parse_lines(data.decode())] == [
        "1",
        "2",
        "3",
    ]


def test_buffer_refuses_a_bad_percent() -> None:
    with pytest.raises(ValueError, match="0..100"):
        capture.CaptureBuffer(FlakySink(0), "ep", 150)


def test_s3_sink_writes_to_the_emulator(emulator) -> None:
    s3 = emulator.client("s3")
    s3.create_bucket(Bucket="capture-sink-test")
    sink = capture.S3Sink("capture-sink-test", "datacapture", client=lambda: s3)
    buffer = capture.CaptureBuffer(sink, "ep", 100)
    buffer.offer("application/json", b"[[1,2,3]]", "application/json", b"[1]")
    buffer.close()
    (obj,) = s3.list_objects_v2(Bucket="capture-sink-test")["Contents"]
    assert re.fullmatch(
        r"datacapture/ep/AllTraffic/\d{4}/\d\d/\d\d/\d\d/\d\d-\d\d-\d{3}-[0-9a-f-]{36}\.jsonl", obj["Key"]
    )
    (record,) = capture.parse_lines(
        s3.get_object(Bucket="capture-sink-test", Key=obj["Key"])["Body"].read().decode()
    )
    assert record["captureData"]["endpointInput"] == {
        "observedContentType": "application/json",
        "mode": "INPUT",
        "data": "[[1,2,3]]",
        "encoding": "JSON",
    }


def captured(folder: Path) -> list[dict]:
    files = sorted(folder.rglob("*.jsonl"))
    for path in files:
        parts = path.relative_to(folder).parts
        assert parts[0] == "AllTraffic" and re.fullmatch(r"\d{4}/\d\d/\d\d/\d\d", "/".join(parts[1:5]))
    return [record for path in files for record in capture.parse_lines(path.read_text())]


@pytest.mark.parametrize("workers", [1, 2])
def test_every_request_is_captured_at_100_percent(model_dir: Path, tmp_path: Path, workers: int) -> None:
    """Captured files, parsed back, hold each answered request and its answer: none missing, none extra."""
    folder = tmp_path / "capture"
    server = start_server(
        model_dir,
        tmp_path,
        "--capture-to",
        str(folder),
        "--capture-percent",
        "100",
        "--endpoint-name",
        "fraud-ep",
        "--workers",
        str(workers),
    )
    sent = {}
    try:
        for i in range(150):
            body = f"{i},{i % 7},{-i}"
            status, headers, answer = server.invoke(body, accept="text/csv" if i % 2 else "application/json")
            assert status == 200
            sent[body] = (headers["content-type"], answer.decode())
        assert server.invoke("1,2")[0] == 400  # refused requests are not captured
    finally:
        assert server.stop() == 0
    records = captured(folder / "fraud-ep")
    assert len(records) == len(sent)
    got = {}
    for record in records:
        data = record["captureData"]
        assert data["endpointInput"]["observedContentType"] == "text/csv"
        got[data["endpointInput"]["data"]] = (
            data["endpointOutput"]["observedContentType"],
            data["endpointOutput"]["data"],
        )
        assert record["eventVersion"] == "0"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", record["eventMetadata"]["inferenceTime"])
    assert got == sent
    assert len({r["eventMetadata"]["eventId"] for r in records}) == len(records)


def test_sampling_percent_is_applied_by_the_server(model_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "capture"
    server = start_server(model_dir, tmp_path, "--capture-to", str(folder), "--capture-percent", "25")
    try:
        for i in range(40):
            assert server.invoke(f"{i},0,0")[0] == 200
    finally:
        server.stop()
    assert len(captured(folder / "local-endpoint")) == 10


def test_capture_metrics_count_written_records(model_dir: Path, tmp_path: Path) -> None:
    from mlops_kit.serving import metrics

    server = start_server(
        model_dir, tmp_path, "--capture-to", str(tmp_path / "c"), "--capture-percent", "100"
    )
    try:
        for _ in range(3):
            server.invoke("1,2,3")
        import time

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            values = metrics.parse(server.request("GET", "/metrics")[2].decode())
            if values["mlops_serving_capture_records_total"] == 3:
                break
            time.sleep(0.1)
        assert values["mlops_serving_capture_records_total"] == 3
    finally:
        server.stop()
    assert json.loads(json.dumps(values))  # plain numbers


# --- nothing lost to a SIGKILL, nothing written twice -----------------------------------------------


class MemorySink:
    uri = "memory://"

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.writes = 0

    def write(self, key: str, data: bytes) -> None:
        self.files[key] = data
        self.writes += 1

    def records(self) -> list[dict]:
        return [r for data in self.files.values() for r in capture.parse_lines(data.decode())]


def test_every_offer_is_in_the_kernels_hands_when_it_returns(tmp_path: Path) -> None:
    """A process that captured and then died by SIGKILL, before any upload: its spool holds every record."""
    pid = os.fork()
    if pid == 0:  # the child captures 50 requests and is killed at once, no flush, no close
        buffer = capture.CaptureBuffer(FlakySink(0), "ep", 100, spool=tmp_path)
        for i in range(50):
            buffer.offer("text/csv", f"{i},1".encode(), "application/json", f"[{i}]".encode())
        os.kill(os.getpid(), signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    sink = MemorySink()
    heir = capture.CaptureBuffer(sink, "ep", 100, spool=tmp_path)
    assert heir.flush() == 50
    records = sink.records()
    assert [r["captureData"]["endpointInput"]["data"] for r in records] == [f"{i},1" for i in range(50)]
    assert len({r["eventMetadata"]["eventId"] for r in records}) == 50
    heir.close()
    assert list(tmp_path.glob("*.spool")) == []  # uploaded, and the files are gone


def test_a_live_processes_spool_is_never_taken(tmp_path: Path) -> None:
    owner = capture.CaptureBuffer(MemorySink(), "ep", 100, spool=tmp_path)
    owner.offer("text/csv", b"1", "text/csv", b"0")
    other_sink = MemorySink()
    other = capture.CaptureBuffer(other_sink, "ep", 100, spool=tmp_path)
    assert other.flush() == 0 and other_sink.files == {}  # the owner holds its file's lock
    assert owner.flush() == 1
    owner.close()
    other.close()


def test_a_batch_uploaded_again_after_a_crash_replaces_its_file(tmp_path: Path, monkeypatch) -> None:
    """Written to the sink, then killed before the spool recorded it: the heir writes the same file."""
    first_sink = MemorySink()
    crashed = capture.CaptureBuffer(first_sink, "ep", 100, spool=tmp_path, clock=lambda: 1764186903.0)
    for i in range(5):
        crashed.offer("text/csv", f"{i}".encode(), "text/csv", b"0")

    class Killed(Exception):
        pass

    def killed(self, offset: int) -> None:
        raise Killed  # the process dies between the sink's write and the spool's commit

    monkeypatch.setattr(capture.Spool, "commit", killed)
    with pytest.raises(Killed):
        crashed.flush()
    monkeypatch.undo()
    crashed._spool.close(remove=False)  # the process is gone: its descriptors, and so its lock, with it
    ids = [r["eventMetadata"]["eventId"] for r in first_sink.records()]
    heir = capture.CaptureBuffer(first_sink, "ep", 100, spool=tmp_path)
    assert heir.flush() == 5
    assert first_sink.writes == 2 and len(first_sink.files) == 1  # written twice, to the one key
    assert [r["eventMetadata"]["eventId"] for r in first_sink.records()] == ids  # the same records
    heir.close()


def test_a_partial_last_record_of_a_dead_process_is_skipped(tmp_path: Path, caplog) -> None:
    buffer = capture.CaptureBuffer(FlakySink(0), "ep", 100, spool=tmp_path)
    for i in range(3):
        buffer.offer("text/csv", f"{i}".encode(), "text/csv", b"0")
    path = buffer._spool.path
    buffer._spool.close(remove=False)
    with path.open("ab") as spool:
        spool.write(capture.Spool.encode(0.0, "text/csv", b"9" * 100, "text/csv", b"0")[:30])  # a torn tail
    sink = MemorySink()
    heir = capture.CaptureBuffer(sink, "ep", 100, spool=tmp_path)
    assert heir.flush() == 3 and "ends in a partial record" in caplog.text
    heir.close()
    assert list(tmp_path.glob("*.spool")) == []


def test_spools_rotate_and_every_record_is_uploaded_once(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(capture.CaptureBuffer, "ROTATE_BYTES", 2000)
    sink = MemorySink()
    buffer = capture.CaptureBuffer(sink, "ep", 100, spool=tmp_path, max_records=7)
    for i in range(100):
        buffer.offer("text/csv", f"{i},{'x' * 40}".encode(), "text/csv", b"0")
        if i % 30 == 0:
            buffer.flush()
    assert len(list(tmp_path.glob("*.spool"))) > 1
    buffer.flush()
    assert len(list(tmp_path.glob("*.spool"))) == 1  # the sealed ones, uploaded, are removed
    got = [r["captureData"]["endpointInput"]["data"].split(",")[0] for r in sink.records()]
    assert sorted(got, key=int) == [str(i) for i in range(100)] and len(got) == 100
    buffer.close()


def test_the_record_is_written_before_the_answer_is_sent(tmp_path: Path) -> None:
    from serving_helpers import fitted_model, write_model_dir

    from mlops_kit.serving import metrics, server
    from mlops_kit.serving.handler import Handler

    events: list[str] = []

    class Recorder:
        def offer(self, *args) -> bool:
            events.append("captured")
            return True

    class Connection:
        unanswered = 1

        def _send(self, response, close: bool) -> None:
            events.append(f"answered {response.status}")

    folder = write_model_dir(tmp_path / "m", script=None, model=fitted_model())
    worker = server.Worker(
        Handler(folder), metrics.Metrics(1), server.ServerOptions(model_dir=folder), Recorder()
    )
    worker.queue = [
        server._Request(Connection(), b"POST", b"/invocations", "text/csv", "", b"1,2,3", 0.0, False)
    ]
    worker.flush()
    assert events == ["captured", "answered 200"]  # a kill between the two loses an answer, not a record
