"""SageMaker's container contract over real HTTP on 127.0.0.1: routes, content types, every bad input."""

from __future__ import annotations

import http.client
import io
import json
import socket
import time

import numpy as np
import pytest
from serving_helpers import OWN_DECODER, RunningServer, fitted_model, start_server, write_model_dir

from mlops_kit.serving import metrics


def expected(rows: list[list[float]]) -> list[float]:
    return fitted_model().predict_proba(np.array(rows))[:, 1].tolist()


def alive(server: RunningServer) -> None:
    """The server keeps serving after a bad request: ping and a good invocation both answer."""
    assert server.request("GET", "/ping")[0] == 200
    status, _, body = server.invoke("0.1,0.2,0.3")
    assert status == 200 and json.loads(body) == pytest.approx(expected([[0.1, 0.2, 0.3]]))


def test_ping_answers_200(server: RunningServer) -> None:
    status, _, _ = server.request("GET", "/ping")
    assert status == 200


def test_csv_one_row_and_many_rows(server: RunningServer) -> None:
    status, headers, body = server.invoke("1,2,3")
    assert status == 200 and headers["content-type"] == "application/json"
    assert json.loads(body) == pytest.approx(expected([[1, 2, 3]]))
    rows = [[float(i), -float(i), 0.5] for i in range(100)]
    status, _, body = server.invoke("\n".join(",".join(map(str, r)) for r in rows) + "\n")
    assert status == 200 and json.loads(body) == pytest.approx(expected(rows))


def test_json_instances_and_bare_rows(server: RunningServer) -> None:
    rows = [[1, 2, 3], [-1, 0, 2]]
    for document in ({"instances": rows}, rows):
        status, _, body = server.invoke(json.dumps(document), "application/json")
        assert status == 200 and json.loads(body) == pytest.approx(expected(rows))
    status, _, body = server.invoke(json.dumps([1, 2, 3]), "application/json; charset=utf-8")
    assert status == 200 and json.loads(body) == pytest.approx(expected([[1, 2, 3]]))


def test_accept_is_honoured(server: RunningServer) -> None:
    status, headers, body = server.invoke("1,2,3\n-1,0,2", accept="text/csv")
    assert status == 200 and headers["content-type"] == "text/csv"
    assert [float(v) for v in body.decode().split()] == pytest.approx(expected([[1, 2, 3], [-1, 0, 2]]))
    status, headers, body = server.invoke("1,2,3", accept="application/x-npy")
    assert status == 200 and headers["content-type"] == "application/x-npy"
    assert np.load(io.BytesIO(body)).tolist() == pytest.approx(expected([[1, 2, 3]]))
    status, _, body = server.invoke("1,2,3", accept="text/html;q=1, text/csv;q=0.5")
    assert status == 200 and float(body) == pytest.approx(expected([[1, 2, 3]])[0])


def test_npy_body(server: RunningServer) -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.array([[1.0, 2.0, 3.0]]))
    status, _, body = server.invoke(buffer.getvalue(), "application/x-npy")
    assert status == 200 and json.loads(body) == pytest.approx(expected([[1, 2, 3]]))


def test_unacceptable_accept_is_406(server: RunningServer) -> None:
    status, _, body = server.invoke("1,2,3", accept="text/html")
    assert status == 406 and "text/html" in json.loads(body)["error"]
    alive(server)


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", ""])
def test_wrong_content_type_is_415(server: RunningServer, content_type: str) -> None:
    status, _, body = server.invoke("1,2,3", content_type)
    assert status == 415
    assert "text/csv" in json.loads(body)["error"]
    alive(server)


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        ("1,2,x", "text/csv", "row 1, column 3: 'x' is not a number"),
        ("amount,hour,tenure\n1,2,3", "text/csv", "takes no header row"),
        ("1,2,3\n4,5", "text/csv", "row 2 has 2 columns, row 1 has 3"),
        ("1,2", "text/csv", "rows have 2 columns, the model expects 3"),
        ("", "text/csv", "no rows"),
        ('{"instances": [[1, 2, 3]', "application/json", "malformed"),
        ('[[1, 2, "three"]]', "application/json", "row 1, column 3: 'three' is not a number"),
        ("[[1, 2, 3], [1, 2]]", "application/json", "row 2 has 2 values"),
        ('{"rows": [[1, 2, 3]]}', "application/json", '"instances"'),
        ("[[1, 2, 3, 4]]", "application/json", "4 columns, the model expects 3"),
    ],
)
def test_bad_bodies_are_400_with_the_reason(
    server: RunningServer, body: str, content_type: str, reason: str
) -> None:
    status, headers, answer = server.invoke(body, content_type)
    assert status == 400
    assert headers["content-type"] == "application/json"
    assert reason in json.loads(answer)["error"]
    alive(server)


def test_body_over_the_limit_is_413(server: RunningServer) -> None:
    big = b"1,2,3\n" * (7 * 1024 * 1024 // 6)  # 7 MB: over the default 6 MB
    status, _, body = server.invoke(big)
    assert status == 413 and "6 MB" in json.loads(body)["error"]
    alive(server)


def test_chunked_body_over_the_limit_is_413(server: RunningServer) -> None:
    chunk = b"1,2,3\n" * 100_000
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.request(
        "POST",
        "/invocations",
        body=iter([chunk] * 12),
        headers={"Content-Type": "text/csv"},
        encode_chunked=True,
    )
    response = connection.getresponse()
    assert response.status == 413
    connection.close()
    alive(server)


def test_chunked_body_within_the_limit_is_served(server: RunningServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.request(
        "POST",
        "/invocations",
        body=iter([b"1,2,", b"3\n-1,0,2\n"]),
        headers={"Content-Type": "text/csv"},
        encode_chunked=True,
    )
    response = connection.getresponse()
    assert response.status == 200
    assert json.loads(response.read()) == pytest.approx(expected([[1, 2, 3], [-1, 0, 2]]))
    connection.close()


def test_model_error_is_500_with_an_error_id_in_the_log(server: RunningServer) -> None:
    status, _, body = server.invoke("-999,0,0")
    assert status == 500
    reason = json.loads(body)["error"]
    error_id = reason.split("error id ")[1].split()[0]
    assert "sentinel" not in reason  # the model's internals stay in the log
    alive(server)
    log = server.log.read_text()
    assert error_id in log and "sentinel row: the test's model error" in log and "Traceback" in log


def test_unknown_route_is_404_and_wrong_method_405(server: RunningServer) -> None:
    assert server.request("GET", "/nope")[0] == 404
    assert server.request("GET", "/invocations")[0] == 405
    assert server.request("DELETE", "/ping")[0] == 405
    alive(server)


def test_malformed_http_is_400_and_the_server_goes_on(server: RunningServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        raw.sendall(b"THIS IS NOT HTTP\r\n\r\n")
        answer = raw.recv(4096)
    assert answer.startswith(b"HTTP/1.1 400")
    alive(server)


def test_keep_alive_and_pipelining_answer_in_order(server: RunningServer) -> None:
    requests = b"".join(
        b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nAccept: text/csv\r\n"
        + b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        for body in (b"1,2,3", b"-1,0,2", b"1,2", b"0,0,0")
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        raw.sendall(requests)
        data = b""
        while data.count(b"HTTP/1.1") < 4 or not data.endswith(b"\n"):
            data += raw.recv(65536)
    statuses = [int(part[:3]) for part in data.split(b"HTTP/1.1 ")[1:]]
    assert statuses == [200, 200, 400, 200]
    values = [
        float(part.rsplit(b"\r\n\r\n", 1)[1]) for i, part in enumerate(data.split(b"HTTP/1.1 ")[1:]) if i != 2
    ]
    assert values == pytest.approx(expected([[1, 2, 3], [-1, 0, 2], [0, 0, 0]]))


def test_execution_parameters_for_batch_transform(server: RunningServer) -> None:
    status, _, body = server.request("GET", "/execution-parameters")
    assert status == 200
    assert json.loads(body) == {
        "MaxConcurrentTransforms": 1,
        "BatchStrategy": "MULTI_RECORD",
        "MaxPayloadInMB": 6,
    }


def test_metrics_count_every_answer_by_method_path_and_status(server: RunningServer) -> None:
    before = metrics.parse(server.request("GET", "/metrics")[2].decode())
    server.invoke("1,2,3")
    server.invoke("1,2")
    server.invoke("-999,0,0")
    assert server.request("GET", "/nowhere")[0] == 404
    assert server.request("GET", "/invocations")[0] == 405
    assert server.request("DELETE", "/ping")[0] == 405
    status, headers, body = server.request("GET", "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
    after = metrics.parse(body.decode())
    count = "mlops_http_request_duration_seconds_count"

    def grew(**labels: str) -> float:
        return metrics.total(after, count, **labels) - metrics.total(before, count, **labels)

    assert grew(method="POST", path="/invocations", status="200") == 1
    assert grew(method="POST", path="/invocations", status="400") == 1
    assert grew(method="POST", path="/invocations", status="500") == 1
    assert grew(method="GET", path="other", status="404") == 1
    assert grew(method="GET", path="/invocations", status="405") == 1
    assert grew(method="other", path="/ping", status="405") == 1
    assert grew(status="4xx") == 4
    assert grew(path="/metrics", status="200") == 1  # the first scrape, counted once it was answered
    seconds = "mlops_http_request_duration_seconds_sum"
    assert metrics.total(after, seconds, path="/invocations") > metrics.total(
        before, seconds, path="/invocations"
    )
    # the 400 (a row too short) is refused before the model runs; the 200 and the 500 reach it
    assert after["mlops_predict_duration_seconds_count"] - before["mlops_predict_duration_seconds_count"] >= 1
    assert [v for k, v in after.items() if k.startswith("mlops_model_info{")] == [1.0]


def test_each_refused_request_is_one_log_line_with_its_reason(server: RunningServer) -> None:
    server.invoke("1,2")
    server.request("GET", "/nowhere-to-be-found")
    time.sleep(0.2)
    lines = server.log.read_text().splitlines()
    refused = [line for line in lines if " refused " in line]
    assert any("POST /invocations: 400" in line and "column" in line for line in refused), refused
    assert sum("GET /nowhere-to-be-found: 404 no route" in line for line in refused) == 1, refused
    assert not any("refused" in line and ": 200 " in line for line in lines)


# --- a hostile client's table: every bad input is a 4xx with its reason, and the server goes on --------

DEEP = b"[" * 100_000 + b"]" * 100_000
HEADER_NAMES = "amount,hour,tenure\n1,2,3"
# (kind, body, content type, Accept, status, reason from the container's decoders, reason when a
# script's own pandas input_fn decodes; None: not a case for that server)
HOSTILE = [
    ("text in a number", "1,2,abc", "text/csv", None, 400, "'abc' is not a number", "could not convert"),
    ("a header row", HEADER_NAMES, "text/csv", None, 400, "takes no header row", "could not convert"),
    ("NUL byte", "1,2,3\x00", "text/csv", None, 400, "NUL byte", "NUL byte"),
    ("NUL in JSON", "[[1, 2, 3]]\x00", "application/json", None, 400, "NUL byte", "NUL byte"),
    ("JSON 100k deep", DEEP, "application/json", None, 400, "nests deeper than 64", "nests deeper than 64"),
    ("inf", "1,2,inf", "text/csv", None, 400, "'inf' is not a finite", "'inf' is not a finite"),
    ("-inf", "1,-inf,2", "text/csv", None, 400, "'-inf' is not a finite", "'-inf' is not a finite"),
    ("nan", "nan,1,2", "text/csv", None, 400, "'nan' is not a finite", "'nan' is not a finite"),
    ("1e309", "1,2,1e309", "text/csv", None, 400, "beyond the range", "beyond the range"),
    ("JSON NaN", "[[1, 2, NaN]]", "application/json", None, 400, "'NaN' is not a finite", "'NaN' is not"),
    ("JSON Infinity", "[[Infinity, 1, 2]]", "application/json", None, 400, "not a finite", "not a finite"),
    ("JSON 1e309", "[[1, 2, 1e309]]", "application/json", None, 400, "beyond the range", "beyond the range"),
    ("ragged short", "1,2,3\n4,5", "text/csv", None, 400, "row 2 has 2 columns", "row 2 has 2 columns"),
    ("ragged long", "1,2,3\n4,5,6,7", "text/csv", None, 400, "row 2 has 4 columns", "row 2 has 4 columns"),
    ("too wide", "1,2,3,4", "text/csv", None, 400, "the model expects 3", "X has 4 features"),
    ("missing value", "1,,3", "text/csv", None, 400, "contains NaN", "contains NaN"),
    ("not UTF-8", b"1,2,\xff", "text/csv", None, 400, "not UTF-8", "input_fn refused the body"),
    ("empty", "", "text/csv", None, 400, "no rows", "input_fn refused the body"),
    ("JSON text value", '[[1, 2, "x"]]', "application/json", None, 400, "'x' is not a number", "could not"),
    ("malformed JSON", "[[1, 2", "application/json", None, 400, "malformed", "input_fn refused"),
    ("Accept image/png", "1,2,3", "text/csv", "image/png", 406, "accept one of", "answers in text/csv"),
    ("content type", "1,2,3", "text/plain", None, 415, "not supported", None),
    ("NPY inf", "npy-inf", "application/x-npy", None, 400, "holds inf", None),
    ("NPY text", "npy-text", "application/x-npy", None, 400, "holds <U1 values", None),
]


def _body(body: str | bytes) -> bytes:
    if body in ("npy-inf", "npy-text"):
        buffer = io.BytesIO()
        np.save(buffer, np.array([[1.0, np.inf, 3.0]]) if body == "npy-inf" else np.array([["a", "b", "c"]]))
        return buffer.getvalue()
    return body.encode() if isinstance(body, str) else body


@pytest.fixture(scope="module", params=["container", "script"])
def hostile_target(request, tmp_path_factory: pytest.TempPathFactory):
    script = None if request.param == "container" else OWN_DECODER
    folder = write_model_dir(tmp_path_factory.mktemp("hostile"), script=script)
    running = start_server(folder, tmp_path_factory.mktemp("hostile-server"))
    yield request.param, running
    running.stop()


def test_hostile_inputs_are_4xx_with_reasons_and_never_5xx(hostile_target) -> None:
    which, server = hostile_target
    before = metrics.parse(server.request("GET", "/metrics")[2].decode())
    wrong, tried = [], 0
    for kind, body, content_type, accept, status, container_reason, script_reason in HOSTILE:
        reason = container_reason if which == "container" else script_reason
        if reason is None:
            continue
        tried += 1
        got, headers, answer = server.invoke(_body(body), content_type, accept)
        said = json.loads(answer).get("error", "") if headers["content-type"] == "application/json" else ""
        if got != status or reason not in said:
            wrong.append(f"{kind}: {got} {said!r}, expected {status} with {reason!r}")
        assert server.request("GET", "/ping")[0] == 200
    # two more a client can get wrong below the body: an oversized header, a request line that is not HTTP
    assert server.request("GET", "/ping", headers={"X-Filler": "x" * 40_000})[0] == 431
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        raw.sendall(b"\x00\x01 NOT HTTP\r\n\r\n")
        assert raw.recv(4096).startswith(b"HTTP/1.1 400")
    after = metrics.parse(server.request("GET", "/metrics")[2].decode())
    assert not wrong, "\n".join(wrong)
    assert tried >= 20
    count = "mlops_http_request_duration_seconds_count"

    def grew(**labels: str) -> float:
        return metrics.total(after, count, **labels) - metrics.total(before, count, **labels)

    assert grew(status="5xx") == 0
    assert grew(path="/invocations", status="4xx") == tried
    assert grew(path="/ping", status="431") == 1 and grew(status="400", path="other") == 1
    status, _, body = server.invoke("0.1,0.2,0.3", accept="text/csv")
    model = fitted_model()
    right = model.predict([[0.1, 0.2, 0.3]]) if which == "container" else expected([[0.1, 0.2, 0.3]])
    assert status == 200 and float(body) == pytest.approx(float(right[0]), abs=1e-6)


def test_json_logs_make_each_refusal_one_object(model_dir, tmp_path) -> None:
    running = start_server(model_dir, tmp_path, env={"MLOPS_LOG_FORMAT": "json"})
    try:
        assert running.request("GET", "/nowhere")[0] == 404
        assert running.invoke("1,2")[0] == 400
    finally:
        running.stop()
    lines = [json.loads(line) for line in running.log.read_text().splitlines() if line.strip()]
    refused = [line for line in lines if line["message"].startswith("refused")]
    assert [(r["method"], r["path"], r["status"]) for r in refused] == [
        ("GET", "/nowhere", 404),
        ("POST", "/invocations", 400),
    ]
    assert all(r["level"] == "warning" and r["reason"] for r in refused)
    assert any(line["message"].startswith("serving ") for line in lines)  # the server's own lines too
