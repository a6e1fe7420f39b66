"""Reading SageMaker data-capture files: encodings, bad lines, mismatched columns, windows, S3."""

from __future__ import annotations

import base64
import json

import boto3
import numpy as np
import pandas as pd
import pytest
from monitor_helpers import FEATURES, capture_record, transactions, write_capture
from moto import mock_aws

from mlops_kit.monitoring import capture, checks, stats
from mlops_kit.monitoring.run import evaluate


def lines(*records) -> str:
    return "\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n"


@pytest.mark.parametrize("encoding", ["CSV", "JSON", "BASE64"])
def test_every_encoding_reads_back_the_same_rows(tmp_path, encoding):
    frame = transactions(50, seed=3)
    path = write_capture(tmp_path / "c.jsonl", frame, encoding=encoding)
    window = capture.read(path, FEATURES)
    assert window.malformed == 0 and window.lines == 50
    assert list(window.frame.columns) == FEATURES
    assert pd.to_numeric(window.frame["amount"]).tolist() == pytest.approx(frame["amount"].tolist())
    assert window.frame["channel"].tolist() == frame["channel"].tolist()
    assert window.predictions == pytest.approx(frame["prediction"].to_numpy(), abs=1e-6)
    assert window.event_ids[:2] == ["e0", "e1"]


def test_batched_bodies_give_one_row_per_item_with_its_prediction(tmp_path):
    csv_batch = capture_record(
        "1.0,grocery,pos,3,10\n2.0,fuel,atm,4,20", "0.1\n0.9", "a", "2026-03-01T10:00:00Z"
    )
    json_batch = capture_record(
        json.dumps(
            {"instances": [{"features": [3.0, "retail", "online", 5, 30]}, [4.0, "gaming", "pos", 6, 40]]}
        ),
        None,
        "b",
        "2026-03-01T10:00:01Z",
        encoding="JSON",
    )
    json_batch["captureData"]["endpointOutput"] = {
        "observedContentType": "application/json",
        "data": json.dumps({"predictions": [{"probability": 0.3}, [0.6, 0.4]]}),
        "encoding": "JSON",
    }
    path = tmp_path / "c.jsonl"
    path.write_text(lines(csv_batch, json_batch))
    window = capture.read(path, FEATURES)
    assert window.frame["merchant_category"].tolist() == ["grocery", "fuel", "retail", "gaming"]
    assert window.predictions.tolist() == [0.1, 0.9, 0.3, 0.4]
    assert window.event_ids == ["a", "a", "b", "b"] and window.row_in_event.tolist() == [0, 1, 0, 1]


def test_malformed_lines_are_counted_skipped_and_described(tmp_path):
    good = capture_record("1.0,grocery,pos,3,10", "0.1", "ok", "2026-03-01T10:00:00Z")
    bad_base64 = capture_record("***", "0.1", "x", "2026-03-01T10:00:00Z", encoding="BASE64")
    bad_encoding = capture_record("1,2", "0.1", "y", "2026-03-01T10:00:00Z", encoding="AVRO")
    path = tmp_path / "c.jsonl"
    path.write_text(lines(good, "{truncated", '{"something": "else"}', bad_base64, bad_encoding, "", good))
    window = capture.read(path, FEATURES)
    assert len(window.frame) == 2
    assert window.malformed == 4
    assert any(":2: not JSON" in p for p in window.problems)
    assert any(":3: not a capture record: no 'captureData'" in p for p in window.problems)
    assert any(":4: BASE64 data does not decode" in p for p in window.problems)
    assert any(":5: unknown encoding 'AVRO'" in p for p in window.problems)


def test_an_empty_window_is_no_data_not_a_failure(tmp_path):
    (tmp_path / "empty").mkdir()
    window = capture.read(tmp_path / "empty", FEATURES)
    assert window.empty and window.files == 0
    assert list(window.frame.columns) == FEATURES


def test_a_missing_source_is_an_error_that_names_it(tmp_path):
    with pytest.raises(capture.CaptureError, match="nowhere: no such capture file or folder"):
        capture.read(tmp_path / "nowhere", FEATURES)


def test_fewer_and_more_csv_fields_become_missing_and_extra_column_violations(tmp_path, baseline_docs):
    statistics, constraints = baseline_docs
    short = [capture_record("1.0,grocery,pos", "0.1", f"s{i}", "2026-03-01T10:00:00Z") for i in range(30)]
    path = tmp_path / "short.jsonl"
    path.write_text(lines(*short))
    window = capture.read(path, stats.input_features(statistics))
    found = {
        (v["feature_name"], v["constraint_check_type"])
        for v in checks.check(statistics, constraints, stats.profile(window.frame, statistics))
    }
    assert ("hour", "missing_column_check") in found
    assert ("customer_tenure_days", "missing_column_check") in found

    wide = [
        capture_record("1.0,grocery,pos,3,10,99", "0.1", f"w{i}", "2026-03-01T10:00:00Z") for i in range(30)
    ]
    path.write_text(lines(*wide))
    window = capture.read(path, stats.input_features(statistics))
    found = {
        (v["feature_name"], v["constraint_check_type"])
        for v in checks.check(statistics, constraints, stats.profile(window.frame, statistics))
    }
    assert ("_c5", "extra_column_check") in found


def test_rows_of_different_lengths_leave_the_short_ones_missing(tmp_path, baseline_docs):
    statistics, constraints = baseline_docs
    records = [
        capture_record("1.0,grocery,pos,3,10", "0.1", f"a{i}", "2026-03-01T10:00:00Z") for i in range(30)
    ]
    records += [
        capture_record("1.0,grocery,pos,3", "0.1", f"b{i}", "2026-03-01T10:00:00Z") for i in range(30)
    ]
    path = tmp_path / "ragged.jsonl"
    path.write_text(lines(*records))
    window = capture.read(path, stats.input_features(statistics))
    assert window.frame["customer_tenure_days"].isna().sum() == 30
    violations = evaluate(statistics, constraints, window).violations  # predictions included
    found = {(v["feature_name"], v["constraint_check_type"]) for v in violations}
    assert ("customer_tenure_days", "completeness_check") in found
    assert [f for f, check in found if check == "missing_column_check"] == []


def test_wrong_types_become_data_type_violations(tmp_path, baseline_docs):
    statistics, constraints = baseline_docs
    records = [
        capture_record(f"cheap,grocery,pos,{i % 24}.5,10", "0.1", f"t{i}", "2026-03-01T10:00:00Z")
        for i in range(40)
    ]
    path = tmp_path / "types.jsonl"
    path.write_text(lines(*records))
    window = capture.read(path, stats.input_features(statistics))
    violations = checks.check(statistics, constraints, stats.profile(window.frame, statistics))
    by_feature = {(v["feature_name"], v["constraint_check_type"]): v["description"] for v in violations}
    assert "not numbers" in by_feature[("amount", "data_type_check")]
    assert "not whole numbers" in by_feature[("hour", "data_type_check")]


def test_the_time_window_keeps_only_events_inside_it(tmp_path):
    frame = transactions(20, seed=4)
    path = write_capture(tmp_path / "c.jsonl", frame, start="2026-03-01T10:00:00Z")
    window = capture.read(
        path, FEATURES, start=pd.Timestamp("2026-03-01T10:00:05Z"), end=pd.Timestamp("2026-03-01T10:00:10Z")
    )
    assert window.event_ids == ["e5", "e6", "e7", "e8", "e9"]


def test_ground_truth_is_read_by_event_id_and_bad_lines_name_their_place(tmp_path):
    path = tmp_path / "gt.jsonl"
    record = {
        "groundTruthData": {"data": "1", "encoding": "CSV"},
        "eventMetadata": {"eventId": "e1"},
        "eventVersion": "0",
    }
    encoded = {
        "groundTruthData": {"data": base64.b64encode(b"0").decode(), "encoding": "BASE64"},
        "eventMetadata": {"eventId": "e2"},
    }
    path.write_text(lines(record, encoded))
    assert capture.read_ground_truth(path) == {"e1": [1.0], "e2": [0.0]}
    path.write_text(lines(record, "{}"))
    with pytest.raises(capture.CaptureError, match=r"gt\.jsonl:2: not a ground-truth record"):
        capture.read_ground_truth(path)


@mock_aws
def test_an_s3_prefix_is_read_like_a_folder(tmp_path):
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="capture")
    frame = transactions(10, seed=5)
    local = write_capture(tmp_path / "c.jsonl", frame)
    key = "endpoint/AllTraffic/2026/03/01/10/a.jsonl"
    s3.put_object(Bucket="capture", Key=key, Body=local.read_bytes())
    s3.put_object(Bucket="capture", Key="endpoint/AllTraffic/notes.txt", Body=b"not capture")
    s3.put_object(Bucket="capture", Key="other/AllTraffic/2026/03/01/10/b.jsonl", Body=local.read_bytes())
    window = capture.read("s3://capture/endpoint/", FEATURES, s3=s3)
    assert window.files == 1 and len(window.frame) == 10


def answered(request: str, output, *, event: str = "a", json_output: bool | None = None) -> dict:
    """A capture record of a CSV `request` whose response is `output`: text is sent as CSV, anything
    else as JSON."""
    record = capture_record(request, None, event, "2026-03-01T10:00:00Z")
    as_json = not isinstance(output, str) if json_output is None else json_output
    record["captureData"]["endpointOutput"] = {
        "observedContentType": "application/json" if as_json else "text/csv",
        "data": json.dumps(output) if as_json else output,
        "encoding": "JSON" if as_json else "CSV",
    }
    return record


ONE = "1.0,grocery,pos,3,10"
TWO = "1.0,grocery,pos,3,10\n2.0,fuel,atm,4,20"
THREE = "1.0,grocery,pos,3,10\n2.0,fuel,atm,4,20\n3.0,retail,online,5,30"
A = capture.Answer


@pytest.mark.parametrize(
    ("request_body", "output", "answers"),
    [
        (ONE, "0.7", [A(value=0.7)]),
        (ONE, "cat", [A(value="cat")]),
        (ONE, "0.1,0.7,0.2", [A(probabilities=(0.1, 0.7, 0.2))]),
        (TWO, "0.1,0.9\n0.8,0.2", [A(probabilities=(0.1, 0.9)), A(probabilities=(0.8, 0.2))]),
        (THREE, "0.1,0.5,0.9", [A(value=0.1), A(value=0.5), A(value=0.9)]),  # XGBoost's one CSV line
        (ONE, "cat,0.2,0.8", [A(value="cat", probabilities=(0.2, 0.8))]),
        (TWO, "cat\n", [A(value="cat")]),  # one answer for two rows: ignored below
        (ONE, {"predictions": [0.7]}, [A(value=0.7)]),
        (TWO, {"predictions": ["cat", 2]}, [A(value="cat"), A(value=2.0)]),
        (TWO, [[0.1, 0.9], [0.8, 0.2]], [A(probabilities=(0.1, 0.9)), A(probabilities=(0.8, 0.2))]),
        (ONE, [0.3, 0.7], [A(probabilities=(0.3, 0.7))]),  # a flat list for one row is its vector
        (TWO, [0.3, 0.7], [A(value=0.3), A(value=0.7)]),  # and for two rows, one number each
        (
            ONE,
            {"predictions": [{"label": "cat", "probabilities": [0.2, 0.8]}]},
            [A(value="cat", probabilities=(0.2, 0.8))],
        ),
        (  # SageMaker Linear Learner, multiclass and binary
            TWO,
            {
                "predictions": [
                    {"predicted_label": 2, "score": [0.1, 0.2, 0.7]},
                    {"predicted_label": 1, "score": 0.8},
                ]
            },
            [A(value=2.0, probabilities=(0.1, 0.2, 0.7)), A(value=1.0, score=0.8)],
        ),
        (ONE, {"predictions": [{"prediction": None}]}, [None]),
        (ONE, {"score": 0.4}, [A(score=0.4)]),
    ],
)
def test_answers_are_kept_as_the_model_gave_them(tmp_path, request_body, output, answers):
    path = tmp_path / "c.jsonl"
    path.write_text(lines(answered(request_body, output)))
    window = capture.read(path, FEATURES)
    rows = len(window.frame)
    assert window.malformed == 0
    if len(answers) != rows:  # a response that does not match the request keeps no answers
        assert window.answers == [None] * rows and "predictions ignored" in window.problems[0]
        return
    assert window.answers == answers


def test_the_numeric_view_keeps_the_drift_code_working(tmp_path):
    records = [
        answered(ONE, "0.7", event="number"),
        answered(ONE, "cat", event="label"),
        answered(ONE, [0.3, 0.7], event="vector"),
        answered(ONE, {"predictions": [{"predicted_label": 1, "score": 0.8}]}, event="scored"),
        answered(ONE, {"predictions": [{"label": "cat", "probabilities": [0.2, 0.8]}]}, event="both"),
    ]
    path = tmp_path / "c.jsonl"
    path.write_text(lines(*records))
    window = capture.read(path, FEATURES)
    assert window.predictions.tolist()[:1] + window.predictions.tolist()[2:] == [0.7, 0.7, 0.8, 0.8]
    assert np.isnan(window.predictions[1])  # a class label has no number, but is kept as an answer
    assert window.answers[1] == A(value="cat")


@pytest.mark.parametrize(
    ("output", "problem"),
    [
        ({"predictions": [["a", "b"]]}, "a prediction vector must hold numbers"),
        ({"predictions": [[]]}, "an empty prediction"),
        ({"predictions": [{"colour": "red"}]}, "no prediction in ['colour']"),
        ({"predictions": [{"score": "high"}]}, "'score' must be a number"),
        ("cat,dog", "neither numbers nor a label and numbers"),
    ],
)
def test_unreadable_answers_make_the_line_malformed(tmp_path, output, problem):
    path = tmp_path / "c.jsonl"
    path.write_text(lines(answered(ONE, output)))
    window = capture.read(path, FEATURES)
    assert window.malformed == 1 and problem in window.problems[0]


def test_ground_truth_keeps_class_labels_as_text(tmp_path):
    def truth(event: str, data: str, encoding: str = "CSV") -> dict:
        return {"groundTruthData": {"data": data, "encoding": encoding}, "eventMetadata": {"eventId": event}}

    path = tmp_path / "gt.jsonl"
    path.write_text(
        lines(
            truth("e1", "cat"),
            truth("e2", " 2 "),
            truth("e3", json.dumps({"label": "dog"}), "JSON"),
            truth("e4", json.dumps(["cat", 3.5]), "JSON"),
        )
    )
    assert capture.read_ground_truth(path) == {"e1": ["cat"], "e2": [2.0], "e3": ["dog"], "e4": ["cat", 3.5]}
    path.write_text(lines(truth("e1", json.dumps([""]), "JSON")))
    with pytest.raises(capture.CaptureError, match=r"gt\.jsonl:1: .*an empty label"):
        capture.read_ground_truth(path)
