"""Data capture: SageMaker's record format and key layout, sampling, retries, and files parsed back."""

from __future__ import annotations

import base64
import json
import re
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


def test_buffer_drops_oldest_past_the_backlog_and_counts_it() -> None:
    dropped = []
    buffer = capture.CaptureBuffer(
        FlakySink(failures=99),
        "ep",
        100,
        max_backlog=3,
        counters=capture.CaptureCounters(dropped=dropped.append),
    )
    for _ in range(2):
        for _ in range(2):
            buffer.offer("text/csv", b"1", "text/csv", b"0")
        buffer.flush()
    assert sum(dropped) == 2 and buffer.waiting == 2


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
