"""The emulator's own routes beside moto: SageMaker Runtime's `InvokeEndpoint` for the local endpoints.

A local endpoint (`mlops_kit.serving.local.deploy`) is created in the emulator through the SageMaker API,
as the Pulumi program creates it in AWS, and its server is registered here (`PUT
/mlops-kit/endpoints/<name>` with its URL and process id). Then `POST /endpoints/<name>/invocations`
signed for SageMaker (what `boto3.client("sagemaker-runtime").invoke_endpoint` sends) is forwarded to
that server with its Content-Type, Accept and body, and its answer returned as SageMaker returns it:
the body with the model's Content-Type and the invoked variant, a model's 4xx/5xx as SageMaker's
`ModelError` (HTTP 424 with the model's status and message), an endpoint no server serves as
`ValidationError` ("Endpoint ... not found"). moto's own InvokeEndpoint (a canned answer) is never reached.

The emulator serves these endpoints, so stopping it stops them (`stop_all`), before it stops answering:
their last captured requests still reach its S3.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import threading
import time
import urllib.parse
from typing import Any

ROUTES = "/mlops-kit/endpoints"
INVOCATIONS = re.compile(r"^/endpoints/([^/]+)/invocations$")
VARIANT = "AllTraffic"
TIMEOUT_S = 60.0  # SageMaker's: a model that answers later is a ModelError
STOP_TIMEOUT_S = 20.0
_SIGNED_FOR_SAGEMAKER = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/sagemaker/aws4_request")


class Registry:
    """The local endpoints this emulator serves: name -> {"url", "pid"}."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._endpoints: dict[str, dict[str, Any]] = {}

    def put(self, name: str, url: str, pid: int) -> None:
        with self._lock:
            self._endpoints[name] = {"url": url, "pid": int(pid)}

    def remove(self, name: str) -> None:
        with self._lock:
            self._endpoints.pop(name, None)

    def get(self, name: str) -> dict[str, Any] | None:
        with self._lock:
            return self._endpoints.get(name)

    def all(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return dict(self._endpoints)

    def stop_all(self, timeout: float = STOP_TIMEOUT_S) -> list[str]:
        """Stop every registered endpoint's server (SIGTERM, then SIGKILL past `timeout`), together."""
        endpoints = self.all()
        for entry in endpoints.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(entry["pid"], signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for entry in endpoints.values():
            while _alive(entry["pid"]) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _alive(entry["pid"]):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(entry["pid"], signal.SIGKILL)
        with self._lock:
            self._endpoints.clear()
        return sorted(endpoints)


def _alive(pid: int) -> bool:
    """The process runs (an exited one not yet reaped by its parent, a zombie, does not)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[-1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False
    except OSError:
        pass  # no /proc (macOS): ask the kernel
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def with_endpoints(app: Any, registry: Registry) -> Any:
    """`app` (moto) behind the routes of the module docstring."""

    def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
        if path == ROUTES or path.startswith(ROUTES + "/"):
            return _manage(environ, start_response, registry, path[len(ROUTES) :].strip("/"), method)
        match = INVOCATIONS.match(path)
        signed = _SIGNED_FOR_SAGEMAKER.search(environ.get("HTTP_AUTHORIZATION", ""))
        if match and method == "POST" and signed:
            return _invoke(environ, start_response, registry, urllib.parse.unquote(match.group(1)))
        return app(environ, start_response)

    return wsgi


def _manage(environ: dict, start_response: Any, registry: Registry, name: str, method: str) -> Any:
    if method == "GET" and not name:
        return _answer(start_response, 200, registry.all())
    if method == "PUT" and name:
        try:
            entry = json.loads(_body(environ))
            registry.put(name, str(entry["url"]), int(entry["pid"]))
        except (ValueError, KeyError, TypeError) as exc:
            return _answer(start_response, 400, {"error": f"expected {{'url': ..., 'pid': ...}}: {exc}"})
        return _answer(start_response, 200, {"registered": name})
    if method == "DELETE" and name:
        registry.remove(name)
        return _answer(start_response, 200, {"removed": name})
    return _answer(start_response, 405, {"error": f"{method} {ROUTES}/{name} is not a route"})


def _invoke(environ: dict, start_response: Any, registry: Registry, name: str) -> Any:
    entry = registry.get(name)
    if entry is None:
        return _error(
            start_response, 400, "ValidationError", f"Endpoint {name} of account {_account()} not found."
        )
    body = _body(environ)
    headers = {"Content-Type": environ.get("CONTENT_TYPE") or "application/octet-stream"}
    if environ.get("HTTP_ACCEPT"):
        headers["Accept"] = environ["HTTP_ACCEPT"]
    parsed = urllib.parse.urlparse(entry["url"])
    connection = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port, timeout=TIMEOUT_S)
    try:
        connection.request("POST", parsed.path.rstrip("/") + "/invocations", body=body, headers=headers)
        response = connection.getresponse()
        status, answer = response.status, response.read()
        content_type = response.getheader("Content-Type", "application/octet-stream")
    except OSError as exc:
        return _error(
            start_response,
            503,
            "ServiceUnavailable",
            f"the local endpoint {name}'s server at {entry['url']} does not answer ({exc}); "
            "deploy it again: mlops deploy --env local",
        )
    finally:
        connection.close()
    if status != 200:
        message = answer.decode("utf-8", errors="replace")
        return _error(
            start_response,
            424,
            "ModelError",
            f"Received {'client' if status < 500 else 'server'} error ({status}) from primary with message "
            f'"{message}".',
            OriginalStatusCode=status,
            OriginalMessage=message,
            LogStreamArn=f"arn:aws:logs:local:{_account()}:log-group:/aws/sagemaker/Endpoints/{name}",
        )
    start_response(
        "200 OK",
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(answer))),
            ("x-Amzn-Invoked-Production-Variant", VARIANT),
        ],
    )
    return [answer]


def _body(environ: dict) -> bytes:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    return environ["wsgi.input"].read(length) if length else b""


def _account() -> str:
    return os.environ.get("MOTO_ACCOUNT_ID", "123456789012")


def _error(start_response: Any, status: int, code: str, message: str, **extra: Any) -> Any:
    """An error as SageMaker Runtime sends it (rest-json: the code in `x-amzn-ErrorType`)."""
    body = json.dumps({"message": message, **extra}).encode()
    start_response(
        f"{status} {http.client.responses.get(status, 'Error')}",
        [
            ("Content-Type", "application/x-amz-json-1.1"),
            ("Content-Length", str(len(body))),
            ("x-amzn-ErrorType", f"{code}:"),
        ],
    )
    return [body]


def _answer(start_response: Any, status: int, document: Any) -> Any:
    body = json.dumps(document).encode()
    start_response(
        f"{status} {http.client.responses.get(status, '')}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]


# --- the kit's side: register a local endpoint's server with a running emulator --------------------


def register(emulator_url: str, name: str, url: str, pid: int) -> None:
    _call(emulator_url, "PUT", f"{ROUTES}/{urllib.parse.quote(name)}", {"url": url, "pid": pid})


def unregister(emulator_url: str, name: str) -> None:
    with contextlib.suppress(OSError):  # an emulator that is gone serves nothing any more
        _call(emulator_url, "DELETE", f"{ROUTES}/{urllib.parse.quote(name)}", None)


def registered(emulator_url: str) -> dict[str, dict[str, Any]]:
    return _call(emulator_url, "GET", ROUTES, None)


def _call(emulator_url: str, method: str, path: str, document: Any) -> Any:
    parsed = urllib.parse.urlparse(emulator_url)
    connection = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port, timeout=10)
    try:
        body = None if document is None else json.dumps(document).encode()
        connection.request(method, path, body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        answer = response.read()
    finally:
        connection.close()
    if response.status != 200:
        raise OSError(f"the emulator at {emulator_url} refused {method} {path}: {answer[:200]!r}")
    return json.loads(answer)
