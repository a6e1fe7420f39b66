"""Helpers for the monitor's tests: their own payments data with model scores, and capture files."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pandas as pd
from monitor_data import payments

FEATURES = ["amount", "merchant_category", "channel", "hour", "customer_tenure_days"]
PREDICTION = "prediction"


def scores(frame: pd.DataFrame) -> np.ndarray:
    """A stand-in model's fraud probability: grows with the amount, so it drifts when amounts do."""
    return 1.0 / (1.0 + np.exp(-(np.log(frame["amount"].to_numpy()) - 6.0)))


def transactions(rows: int, seed: int, drifted: bool = False) -> pd.DataFrame:
    frame = payments(rows, seed, drifted)
    frame[PREDICTION] = scores(frame)
    return frame


def capture_record(
    data: str,
    prediction: str | None,
    event_id: str,
    when: str,
    *,
    encoding: str = "CSV",
    content_type: str = "text/csv",
) -> dict:
    record = {
        "captureData": {
            "endpointInput": {
                "observedContentType": content_type,
                "mode": "INPUT",
                "data": data,
                "encoding": encoding,
            }
        },
        "eventMetadata": {"eventId": event_id, "inferenceTime": when},
        "eventVersion": "0",
    }
    if prediction is not None:
        record["captureData"]["endpointOutput"] = {
            "observedContentType": "text/csv",
            "mode": "OUTPUT",
            "data": prediction,
            "encoding": "CSV",
        }
    return record


def csv_body(values) -> str:
    return ",".join("" if v is None else str(v) for v in values)


def write_capture(
    path: Path,
    frame: pd.DataFrame,
    *,
    encoding: str = "CSV",
    extra_lines: list[str] = (),
    start: str = "2026-03-01T10:00:00Z",
) -> Path:
    """One capture file of `frame` (its FEATURES and prediction), one request per line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t0 = pd.Timestamp(start)
    lines = []
    for i, row in enumerate(frame[FEATURES].itertuples(index=False)):
        when = (t0 + pd.Timedelta(seconds=i)).isoformat().replace("+00:00", "Z")
        prediction = f"{frame[PREDICTION].iloc[i]:.6f}"
        if encoding == "CSV":
            record = capture_record(csv_body(row), prediction, f"e{i}", when)
        elif encoding == "JSON":
            body = json.dumps({"instances": [dict(zip(FEATURES, [_plain(v) for v in row], strict=True))]})
            record = capture_record(
                body, prediction, f"e{i}", when, encoding="JSON", content_type="application/json"
            )
        else:
            body = base64.b64encode(csv_body(row).encode()).decode()
            record = capture_record(body, prediction, f"e{i}", when, encoding="BASE64")
        lines.append(json.dumps(record))
    lines.extend(extra_lines)
    path.write_text("\n".join(lines) + "\n")
    return path


def _plain(value):
    return value.tolist() if hasattr(value, "tolist") else value


def write_answers(
    path: Path,
    frame: pd.DataFrame,
    answers: list,
    *,
    start: str = "2026-03-01T10:00:00Z",
    every_s: float = 1.0,
) -> Path:
    """One capture file of `frame`'s requests (CSV) answered by `answers`, one per row: text is sent as
    a CSV response, anything else as JSON `{"predictions": [answer]}`. Event ids are e0, e1, ..."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t0 = pd.Timestamp(start)
    lines = []
    for i, row in enumerate(frame[FEATURES].itertuples(index=False)):
        when = (t0 + pd.Timedelta(seconds=i * every_s)).isoformat().replace("+00:00", "Z")
        record = capture_record(csv_body(row), None, f"e{i}", when)
        answer = answers[i]
        as_json = not isinstance(answer, str)
        record["captureData"]["endpointOutput"] = {
            "observedContentType": "application/json" if as_json else "text/csv",
            "mode": "OUTPUT",
            "data": json.dumps({"predictions": [_plain(answer)]}) if as_json else answer,
            "encoding": "JSON" if as_json else "CSV",
        }
        lines.append(json.dumps(record))
    path.write_text("\n".join(lines) + "\n")
    return path


def write_ground_truth(path: Path, labels: dict[str, object]) -> Path:
    """SageMaker ground-truth JSON lines: one CSV label per event id."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "\n".join(
            json.dumps(
                {"groundTruthData": {"data": str(label), "encoding": "CSV"}, "eventMetadata": {"eventId": e}}
            )
            for e, label in labels.items()
        )
        + "\n"
    )
    return path
