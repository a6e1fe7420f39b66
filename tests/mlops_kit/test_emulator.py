from __future__ import annotations

import socket

import pytest
from botocore.exceptions import ClientError

from mlops_kit import emulator as emu
from mlops_kit.cli import main


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # closed connections may linger
        try:
            probe.bind((emu.HOST, port))
        except OSError:
            return False
        return True


def test_two_emulators_run_side_by_side_with_separate_state() -> None:
    with emu.Emulator() as first, emu.Emulator() as second:
        assert first.port != second.port
        first.client("s3").create_bucket(Bucket="only-in-the-first")
        assert [b["Name"] for b in first.client("s3").list_buckets()["Buckets"]] == ["only-in-the-first"]
        assert second.client("s3").list_buckets()["Buckets"] == []


def test_stop_frees_the_port() -> None:
    running = emu.Emulator().start()
    port = running.port
    assert running.answers()
    assert not _port_is_free(port)
    running.stop()
    assert _port_is_free(port)
    assert not running.is_running()


def test_a_port_in_use_is_a_clear_error() -> None:
    with emu.Emulator() as first, pytest.raises(emu.EmulatorError, match="exited at start"):
        emu.Emulator(port=first.port).start()


def test_clients_do_not_retry_an_api_the_emulator_lacks(emulator: emu.Emulator) -> None:
    sagemaker = emulator.client("sagemaker")
    with pytest.raises(ClientError) as caught:
        sagemaker.update_endpoint(EndpointName="e", EndpointConfigName="c")
    assert caught.value.response["ResponseMetadata"].get("RetryAttempts", 0) == 0


def test_environ_points_sdks_at_the_emulator(emulator: emu.Emulator) -> None:
    env = emulator.environ()
    assert env["AWS_ENDPOINT_URL"] == emulator.endpoint_url
    assert env["SAGEMAKER_VALIDATE_ROLE"] == "false"


def test_cli_start_status_stop(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["emulator", "status"]) == 1
    try:
        assert main(["emulator", "start"]) == 0
        recorded = emu.running()
        assert recorded is not None and recorded.answers()
        assert main(["emulator", "status"]) == 0
        assert recorded.endpoint_url in capsys.readouterr().out
        assert main(["emulator", "start"]) == 1  # one recorded emulator at a time
        assert "already running" in capsys.readouterr().err
        with emu.session() as shared:  # commands find the recorded one instead of starting their own
            assert shared.port == recorded.port
    finally:
        assert main(["emulator", "stop"]) == 0
    assert emu.running() is None
    assert _port_is_free(recorded.port)
    assert main(["emulator", "status"]) == 1


def test_stale_state_file_is_ignored() -> None:
    path = emu.state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"pid": 999999, "port": 1}')
    assert emu.running() is None
    assert not path.exists()


def test_session_starts_and_stops_its_own_emulator() -> None:
    with emu.session() as own:
        port = own.port
        assert own.answers()
    assert _port_is_free(port)


def test_liveness_costs_the_same_whatever_the_emulator_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check asks the kit's ping route, never moto's data.json (which serializes every resource)."""
    import urllib.request

    asked: list[str] = []
    real = urllib.request.urlopen

    def spy(url, *args, **kwargs):
        asked.append(url if isinstance(url, str) else url.full_url)
        return real(url, *args, **kwargs)

    with emu.Emulator() as running:
        s3 = running.client("s3")
        s3.create_bucket(Bucket="big")
        for i in range(50):
            s3.put_object(Bucket="big", Key=f"k{i}", Body=b"x" * 100_000)
        monkeypatch.setattr(urllib.request, "urlopen", spy)
        assert running.answers()
    assert asked and all(url.endswith(emu.PING_PATH) for url in asked)


def test_a_busy_emulator_is_not_forgotten(monkeypatch: pytest.MonkeyPatch) -> None:
    """Alive but slow to answer: an error, and the state file stays (no empty emulator started beside it)."""
    emu.start_detached()
    try:
        with monkeypatch.context() as patch:  # its own patch only: undo() also undid the test's state folder
            patch.setattr(emu.Emulator, "answers", lambda self, timeout=2.0: False)
            with pytest.raises(emu.EmulatorError, match="is running but does not answer"):
                emu.running()
            assert emu.state_file().is_file()
    finally:
        emu.stop_recorded()
    assert emu.running() is None and not emu.state_file().exists()


def test_the_server_finds_a_requests_service_without_listing_motos_folder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """moto's dispatcher lists its package folder per request to find the service; the server lists it
    once at start, the same list."""
    import os

    from moto import backends

    monkeypatch.setattr(backends, "list_of_moto_modules", backends.list_of_moto_modules)  # restored after
    listed = list(backends.list_of_moto_modules())
    emu._lighter_dispatch()

    def refuse(path: str) -> list[str]:
        raise AssertionError(f"listed {path} during a request")

    monkeypatch.setattr(os, "listdir", refuse)
    assert list(backends.list_of_moto_modules()) == listed
    assert "s3" in listed and "dynamodb" in listed


def test_requests_at_once_do_not_break_each_other(emulator: emu.Emulator) -> None:
    """moto is not thread-safe: DescribeTable counts a table's items, and a BatchWriteItem landing
    meanwhile made it a 500 (a sharded Features job died of it at 10M rows). The emulator runs one
    request in moto at a time; two writers and a describer at once all get answers."""
    import threading
    import time
    import uuid

    dynamodb = emulator.client("dynamodb")
    table = f"race-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    errors: list[str] = []
    until = time.monotonic() + 2.0

    def write(worker: int) -> None:
        client = emulator.client("dynamodb")
        n = 0
        while time.monotonic() < until and not errors:
            items = [{"PutRequest": {"Item": {"id": {"S": f"{worker}-{n}-{i}"}}}} for i in range(25)]
            n += 1
            try:
                client.batch_write_item(RequestItems={table: items})
            except ClientError as exc:
                errors.append(f"BatchWriteItem: {exc}")

    def describe() -> None:
        client = emulator.client("dynamodb")
        while time.monotonic() < until and not errors:
            try:
                client.describe_table(TableName=table)
            except ClientError as exc:
                errors.append(f"DescribeTable: {exc}")

    threads = [threading.Thread(target=write, args=(w,)) for w in range(2)] + [
        threading.Thread(target=describe)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert dynamodb.describe_table(TableName=table)["Table"]["ItemCount"] > 1000


def test_one_request_is_inside_moto_at_a_time() -> None:
    """The wrapper the emulator puts around moto: requests from many threads never overlap inside it,
    each gets its own answer, and each body reaches the app whole."""
    import io
    import threading
    import time

    from mlops_kit import emulator_journal

    inside = {"now": 0, "most": 0}
    guard = threading.Lock()

    def app(environ, start_response):
        with guard:
            inside["now"] += 1
            inside["most"] = max(inside["most"], inside["now"])
        time.sleep(0.005)
        body = environ["wsgi.input"].read()
        with guard:
            inside["now"] -= 1
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]

    wrapped = emulator_journal.one_at_a_time(app)
    answers: dict[int, bytes] = {}

    def call(n: int) -> None:
        body = f"request {n}".encode()
        environ = {"wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body)), "REQUEST_METHOD": "POST"}
        answers[n] = b"".join(wrapped(environ, lambda status, headers, exc=None: None))

    threads = [threading.Thread(target=call, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert inside["most"] == 1
    assert answers == {n: f"request {n}".encode() for n in range(16)}
