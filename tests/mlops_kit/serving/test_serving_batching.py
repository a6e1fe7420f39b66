"""Requests that arrive together share one model.predict, and each still gets its own answer."""

from __future__ import annotations

import json
import socket
import warnings
from pathlib import Path

import numpy as np
import pytest
from serving_helpers import fitted_model, start_server, write_model_dir
from sklearn.ensemble import HistGradientBoostingClassifier

from mlops_kit.serving import metrics
from mlops_kit.serving.handler import Handler

warnings.filterwarnings("ignore", message="X does not have valid feature names")


def _trees() -> HistGradientBoostingClassifier:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(800, 3))
    return HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(x, x[:, 0] + x[:, 2] > 0)


# (body, content type) of requests a server may get at once: good ones of different sizes and types,
# and each kind of refusal among them
MIXED = [
    (b"0.1,0.2,0.3", "text/csv"),
    (b"1,2,3\n-1,0,2\n0.5,0.5,0.5", "text/csv"),
    (b"1,2", "text/csv"),  # wrong width for the model: 400
    (json.dumps({"instances": [[0.3, -0.2, 1.5]]}).encode(), "application/json"),
    (b"1,2,3\n4,5", "text/csv"),  # ragged: 400
    (b"<xml/>", "application/xml"),  # 415
    (b"2,2,2", "text/csv"),
]


def _one_by_one(handler: Handler, requests: list[tuple[bytes, str, str]]) -> list[tuple[int, bytes]]:
    return [(r.status, r.body) for r in (handler.invoke(*request) for request in requests)]


@pytest.mark.parametrize("model", [_trees(), fitted_model()], ids=["compiled-trees", "logistic"])
def test_a_batch_answers_exactly_as_requests_one_by_one(tmp_path: Path, model):
    handler = Handler(write_model_dir(tmp_path / "m", script=None, model=model))
    requests = [(body, kind, "application/json") for body, kind in MIXED]
    shared: list[int] = []
    batch = handler.invoke_many(requests, on_shared=shared.append)
    assert [(r.status, r.body) for r in batch] == _one_by_one(handler, requests)
    assert [r.status for r in batch] == [200, 200, 400, 200, 400, 415, 200]
    assert shared == [4]  # the four good requests, one predict


def test_a_failing_batch_is_predicted_request_by_request(tmp_path: Path):
    # LogisticRegression refuses NaN: the shared predict fails, then only the request with NaN does
    handler = Handler(write_model_dir(tmp_path / "m", script=None, model=fitted_model()))
    requests = [
        (b"1,2,3", "text/csv", "text/csv"),
        (b"1,,3", "text/csv", "text/csv"),
        (b"0,0,1", "text/csv", ""),
    ]
    shared: list[int] = []
    answers = handler.invoke_many(requests, on_shared=shared.append)
    assert [r.status for r in answers] == [200, 400, 200]  # scikit-learn's ValueError: the input's fault
    assert "Input X contains NaN" in json.loads(answers[1].body)["error"] and shared == []
    assert [(r.status, r.body) for r in answers][::2] == _one_by_one(handler, requests)[::2]


def test_a_script_with_its_own_predict_fn_is_never_batched(tmp_path: Path):
    handler = Handler(write_model_dir(tmp_path / "m"))  # serving_helpers.SCRIPT has a predict_fn
    shared: list[int] = []
    answers = handler.invoke_many([(b"1,2,3", "text/csv", "")] * 3, on_shared=shared.append)
    assert [r.status for r in answers] == [200] * 3 and shared == [] and not handler.batches


def _pipelined(port: int, bodies: list[bytes]) -> list[tuple[int, bytes]]:
    """Send every request in one write, so the server reads them together; answers in order."""
    wire = b"".join(
        b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nAccept: application/json\r\n"
        + b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        for body in bodies
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.sendall(wire)
        data = b""
        while data.count(b"HTTP/1.1 ") < len(bodies) or not data.endswith((b"]", b"}")):
            data += raw.recv(65536)
    answers = []
    for part in data.split(b"HTTP/1.1 ")[1:]:
        head, _, body = part.partition(b"\r\n\r\n")
        answers.append((int(head[:3]), body))
    return answers


@pytest.mark.parametrize("batch", [True, False], ids=["batched", "no-batch"])
def test_pipelined_requests_over_http_share_a_predict_and_answer_in_order(tmp_path: Path, batch: bool):
    model = _trees()
    folder = write_model_dir(tmp_path / "m", script=None, model=model)
    server = start_server(folder, tmp_path, *([] if batch else ["--no-batch"]))
    try:
        bodies = [b"0.1,0.2,0.3", b"1,2", b"1,2,3\n-1,0,2", b"-0.5,0.25,2", b"3,3,3"]
        before = metrics.parse(server.request("GET", "/metrics")[2].decode())
        answers = _pipelined(server.port, bodies)
        after = metrics.parse(server.request("GET", "/metrics")[2].decode())
    finally:
        server.stop()
    assert [status for status, _ in answers] == [200, 400, 200, 200, 200]
    for (status, body), rows in zip(answers, bodies, strict=True):
        if status == 200:
            x = np.array([[float(v) for v in line.split(b",")] for line in rows.split(b"\n")])
            assert json.loads(body) == model.predict(x).tolist()
    shared = after["mlops_serving_shared_predicts_total"] - before["mlops_serving_shared_predicts_total"]
    answered = (
        after["mlops_serving_shared_predict_requests_total"]
        - before["mlops_serving_shared_predict_requests_total"]
    )
    if batch:
        assert shared >= 1 and answered >= 2  # requests read together were predicted together
    else:
        assert shared == 0 and answered == 0


class _FakeConnection:
    def __init__(self) -> None:
        self.unanswered = 0
        self.sent: list[tuple[int, bool]] = []

    def _send(self, response, close: bool) -> None:
        self.sent.append((response.status, close))


def _worker(tmp_path: Path):
    from mlops_kit.serving import server

    folder = write_model_dir(tmp_path / "m", script=None, model=fitted_model())
    options = server.ServerOptions(model_dir=folder)
    return server.Worker(Handler(folder), metrics.Metrics(1), options), server._Request


def test_the_queue_answers_every_request_in_order(tmp_path: Path):
    worker, request = _worker(tmp_path)
    a, b = _FakeConnection(), _FakeConnection()
    queue = [
        request(a, b"POST", b"/invocations", "text/csv", "", b"1,2,3", 0.0, False),
        request(b, b"GET", b"/ping", "", "", b"", 0.0, False),
        request(a, b"POST", b"/invocations", "text/csv", "", b"1,2", 0.0, True),
        request(b, b"POST", b"/invocations", "text/csv", "", b"0,0,1", 0.0, False),
    ]
    for item in queue:
        item.connection.unanswered += 1
    worker.queue = queue
    worker.flush()
    assert a.sent == [(200, False), (400, True)] and b.sent == [(200, False), (200, False)]
    assert a.unanswered == b.unanswered == 0


def test_a_bug_in_the_handler_answers_500_instead_of_hanging(tmp_path: Path, monkeypatch, caplog):
    worker, request = _worker(tmp_path)

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(worker.handler, "invoke_many", broken)
    connection = _FakeConnection()
    worker.queue = [request(connection, b"POST", b"/invocations", "text/csv", "", b"1,2,3", 0.0, False)] * 2
    connection.unanswered = 2
    worker.flush()
    assert connection.sent == [(500, False), (500, False)] and connection.unanswered == 0
    assert "a bug" in caplog.text
