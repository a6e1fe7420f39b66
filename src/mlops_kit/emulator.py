"""The embedded AWS emulator: moto's server on a loopback port, in a process of its own.

Each emulator is a child process (`python -m mlops_kit.emulator serve`), so two run side by side with
separate state, and stopping one frees its port and its memory. Code and tests use the `Emulator`
context manager; people use `mlops emulator start|stop|status`, which keeps a state file so that later
commands find the running one; that one journals every change to its state in the state folder and
replays the journal when it starts again, so a stop, a crash or `kill -9` loses nothing
(`mlops_kit.emulator_journal`). Clients from `Emulator.client()` point at it with retries off, so an
API that moto lacks fails at once instead of retrying.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from mlops_kit import paths

HOST = "127.0.0.1"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
START_TIMEOUT_S = 60.0
# Stopping waits for the local endpoints it serves to stop first (mlops_kit.emulator_routes).
STOP_TIMEOUT_S = 30.0


class EmulatorError(RuntimeError):
    """The emulator could not be started, found or stopped."""


def state_file() -> Path:
    """Where `mlops emulator start` records the running emulator (in the state folder: `mlops_kit.paths`)."""
    return paths.state_dir() / "emulator.json"


@dataclass
class Emulator:
    """One moto server on 127.0.0.1. Use as a context manager, or `start()` / `stop()`."""

    port: int = 0
    region: str = "us-east-1"
    pid: int | None = None
    # Where its state is journaled and replayed from at start (`mlops_kit.emulator_journal`); None: memory only.
    data_dir: Path | None = None
    _process: subprocess.Popen | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self, detach: bool = False) -> Emulator:
        """Start the server and wait until it answers. `detach` lets it outlive this process."""
        with tempfile.TemporaryDirectory(prefix="mlops-emulator-") as tmp:
            ready = Path(tmp) / "port"
            durable = [str(self.data_dir)] if self.data_dir is not None else []
            self._process = subprocess.Popen(
                [sys.executable, "-m", "mlops_kit.emulator", "serve", str(self.port), str(ready), *durable],
                stdout=subprocess.DEVNULL,  # moto logs every request; the kit's own logs say more
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                start_new_session=detach,
            )
            deadline = time.monotonic() + START_TIMEOUT_S
            while not ready.exists() or not ready.read_text().strip():
                if self._process.poll() is not None:
                    err = self._process.stderr.read().decode(errors="replace") if self._process.stderr else ""
                    raise EmulatorError(f"the emulator exited at start (port {self.port}): {err.strip()}")
                if time.monotonic() > deadline:
                    self._process.kill()
                    raise EmulatorError(f"the emulator did not start within {START_TIMEOUT_S:.0f}s")
                time.sleep(0.02)
            self.port = int(ready.read_text())
        self.pid = self._process.pid
        if self._process.stderr:
            self._process.stderr.close()  # nothing reads it any more; a full pipe must not block moto
            self._process.stderr = None
        self._wait_until_answering(deadline)
        return self

    def _wait_until_answering(self, deadline: float) -> None:
        while True:
            if self.answers():
                return
            else:
                if time.monotonic() > deadline:
                    self.stop()
                    raise EmulatorError(f"the emulator on port {self.port} does not answer") from None
                time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server and wait for it to exit, which frees its port."""
        if self._process is not None:
            if self._process.poll() is None:
                self._process.terminate()
                try:
                    self._process.wait(timeout=STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait()
            self._process = None
        elif self.pid is not None:
            _terminate_pid(self.pid, timeout=STOP_TIMEOUT_S)
        self.pid = None

    def is_running(self) -> bool:
        if self._process is not None:
            return self._process.poll() is None
        return self.pid is not None and _alive(self.pid) and self.answers()

    def is_alive(self) -> bool:
        """Its process exists (whether or not it answers right now)."""
        if self._process is not None:
            return self._process.poll() is None
        return self.pid is not None and _alive(self.pid)

    def answers(self, timeout: float = 2.0) -> bool:
        try:
            with urllib.request.urlopen(f"{self.endpoint_url}{PING_PATH}", timeout=timeout) as answer:
                return answer.status == 200
        except OSError:
            return False

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- clients -------------------------------------------------------------------------------
    def client(self, service: str, **kwargs: Any) -> Any:
        return client(service, endpoint_url=self.endpoint_url, region=self.region, **kwargs)

    def environ(self) -> dict[str, str]:
        """Variables that point any AWS SDK (a subprocess, a SageMaker step) at this emulator."""
        return aws_environ(self.endpoint_url, self.region)

    def as_role(self, role_arn: str, session: str = "SageMaker") -> RoleSession:
        """The emulator as `role_arn` sees it: credentials from its STS for that role, as the AWS service
        that runs a job or an endpoint with the role gets them. Calls made with them are the role's
        (the access ledger, `mlops_kit.iam`, checks them against the role's policies)."""
        from mlops_kit.iam import record

        with record.unrecorded():  # the service assumes the role, not the kit's code
            answer = self.client("sts").assume_role(RoleArn=role_arn, RoleSessionName=session)
        c = answer["Credentials"]
        return RoleSession(
            self.endpoint_url,
            self.region,
            role_arn,
            c["AccessKeyId"],
            c["SecretAccessKey"],
            c["SessionToken"],
        )


@dataclass(frozen=True)
class RoleSession:
    """Clients and a process environment with one role's credentials, against the emulator."""

    endpoint_url: str
    region: str
    role_arn: str
    access_key: str
    secret_key: str
    token: str

    def client(self, service: str, **kwargs: Any) -> Any:
        config = Config(
            retries={"total_max_attempts": 1, "mode": "standard"}, s3={"addressing_style": "path"}
        )
        with _CLIENTS:
            return boto3.client(
                service,
                region_name=self.region,
                endpoint_url=self.endpoint_url,
                config=config,
                aws_access_key_id=self.access_key,
                aws_secret_access_key=self.secret_key,
                aws_session_token=self.token,
                **kwargs,
            )

    def environ(self) -> dict[str, str]:
        return {
            **aws_environ(self.endpoint_url, self.region),
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_SESSION_TOKEN": self.token,
        }


def client(service: str, *, endpoint_url: str | None, region: str, **kwargs: Any) -> Any:
    """A boto3 client; against an emulator, with test credentials and no retries."""
    with _CLIENTS:
        if endpoint_url is None:
            return boto3.client(service, region_name=region, **kwargs)
        config = Config(
            retries={"total_max_attempts": 1, "mode": "standard"}, s3={"addressing_style": "path"}
        )
        return boto3.client(
            service, region_name=region, endpoint_url=endpoint_url, config=config, **CREDENTIALS, **kwargs
        )


# boto3's default session is not safe to make clients from in several threads at once (a pipeline's
# steps that run at the same time each make theirs); clients once made are
_CLIENTS = threading.Lock()


def aws_environ(endpoint_url: str, region: str) -> dict[str, str]:
    from mlops_kit.iam import record

    return {
        **record.active(),  # a recorded run records its child processes' calls too
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "AWS_MAX_ATTEMPTS": "1",
        "SAGEMAKER_VALIDATE_ROLE": "false",
    }


# --- the recorded emulator (for people, across commands) ---------------------------------------


def data_dir() -> Path:
    """Where the recorded emulator journals its state, so that a restart (even after `kill -9`) has it."""
    return paths.state_dir() / "emulator"


def start_detached(port: int = 0, region: str = "us-east-1") -> Emulator:
    """Start an emulator that outlives this command and record it in the state file; it comes up with
    the state the last one left (its journal in `data_dir()`)."""
    current = running()
    if current is not None:
        raise EmulatorError(f"an emulator is already running at {current.endpoint_url} (pid {current.pid})")
    emulator = Emulator(port=port, region=region, data_dir=data_dir()).start(detach=True)
    path = state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": emulator.pid, "port": emulator.port, "region": region}))
    tmp.replace(path)
    emulator._process = None  # this command ends; the server goes on under its pid
    return emulator


def running() -> Emulator | None:
    """The emulator recorded in the state file, if it is still up; a stale record is removed."""
    path = state_file()
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    emulator = Emulator(
        port=int(state["port"]), region=state.get("region", "us-east-1"), pid=int(state["pid"])
    )
    if emulator.is_running():
        return emulator
    if emulator.is_alive():
        # Busy, not dead: forgetting it would start an empty emulator beside the one holding the state.
        raise EmulatorError(
            f"the emulator (pid {emulator.pid}, port {emulator.port}) is running but does not answer; "
            "try again, or `mlops emulator stop`"
        )
    path.unlink(missing_ok=True)
    return None


def stop_recorded() -> Emulator | None:
    """Stop the recorded emulator; returns it, or None when none was running."""
    emulator = running()
    if emulator is not None:
        emulator.stop()
    state_file().unlink(missing_ok=True)
    return emulator


@contextlib.contextmanager
def session(region: str = "us-east-1", port: int = 0) -> Iterator[Emulator]:
    """The running emulator if there is one, else a new one for the duration of the block."""
    current = running()
    if current is not None:
        yield current
        return
    with Emulator(port=port, region=region) as emulator:
        yield emulator


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):  # our own child, killed: reap it, a zombie is not alive
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _terminate_pid(pid: int, timeout: float = 10.0) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


PING_PATH = "/mlops-kit/ping"


def _with_ping(app: Any) -> Any:
    """moto's app plus a liveness route that costs the same whatever the emulator holds (moto's own
    `/moto-api/data.json` serializes every resource: seconds once a pipeline has run)."""

    def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") == PING_PATH:
            start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
            return [b"ok"]
        return app(environ, start_response)

    return wsgi


def share_registries_across_accounts() -> None:
    """Let moto serve a model package, or a group's packages, named by an ARN of another account.

    AWS answers DescribeModelPackage and ListModelPackages for another account's ARN when the group's
    resource policy grants it (whether it does is the access ledger's question); moto looks only in the
    caller's own account and answers "not found". With this, a stage's promotion reads its source stage's
    registry across accounts here as it does in AWS. Idempotent; patches moto in this process.
    """
    from moto.sagemaker import models

    backend = models.SageMakerModelBackend
    if getattr(backend, "_mlops_cross_account", False):
        return

    def owner(self: Any, name: str | None) -> Any:
        parts = name.split(":") if name and name.startswith("arn:") else []
        if len(parts) >= 6 and parts[4] != self.account_id:
            return models.sagemaker_backends[parts[4]][parts[3]]
        return self

    describe, listing = backend.describe_model_package, backend.list_model_packages

    def describe_any(self: Any, model_package_name: str) -> Any:
        return describe(owner(self, model_package_name), model_package_name)

    def list_any(self: Any, *args: Any, **kwargs: Any) -> Any:
        return listing(owner(self, kwargs.get("model_package_group_name")), *args, **kwargs)

    backend.describe_model_package = describe_any
    backend.list_model_packages = list_any
    backend._mlops_cross_account = True


def _lighter_dispatch() -> None:
    """moto's dispatcher lists its own package folder (a listdir and ~200 isdir calls) on every request to
    find the service; the folder does not change while the server runs, so it is listed once. Measured
    with a profiler on feature ingestion: 8 % of the emulator's time."""
    from moto import backends

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules


def _quiet(handler: type) -> type:
    """The request handler without werkzeug's access-log line per request (8 % of the emulator's time
    under ingestion, and nothing reads it); errors are still logged."""

    class Quiet(handler):  # type: ignore[misc, valid-type]
        def log_request(self, code: Any = "-", size: Any = "-") -> None:
            return

    return Quiet


def _serve(port: int, ready_file: Path, state: Path | None = None) -> None:
    """The child process: run moto's server until SIGTERM, after writing the bound port.

    Binding happens here, in the main thread, so a port in use ends the process with the reason at once.
    With `state`, moto's state is journaled there and rebuilt from it before the port is written.
    """
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    share_registries_across_accounts()
    _lighter_dispatch()
    moto_app: Any = DomainDispatcherApplication(create_backend_app)
    from mlops_kit import emulator_journal

    if state is not None:
        try:
            moto_app = emulator_journal.durable(moto_app, state)
        except emulator_journal.JournalError as exc:
            sys.exit(str(exc))
    else:
        moto_app = emulator_journal.one_at_a_time(moto_app)
    from mlops_kit import emulator_routes

    # the local endpoints it serves: InvokeEndpoint goes to them (not journaled: their servers end with it)
    endpoints = emulator_routes.Registry()
    app = _with_ping(emulator_routes.with_endpoints(moto_app, endpoints))
    try:
        server = make_server(HOST, port, app, threaded=True, request_handler=_quiet(MotoRequestHandler))
    except OSError as exc:
        sys.exit(f"cannot listen on {HOST}:{port}: {exc.strerror or exc}")
    tmp = ready_file.with_suffix(".tmp")
    tmp.write_text(str(server.server_port))
    tmp.replace(ready_file)

    def _stop(*_: object) -> None:
        def stop() -> None:
            endpoints.stop_all()  # first: their last captured requests still reach this emulator's S3
            server.shutdown()

        threading.Thread(target=stop, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    server.serve_forever(poll_interval=0.05)
    server.server_close()


if __name__ == "__main__":
    if len(sys.argv) in (4, 5) and sys.argv[1] == "serve":
        _serve(int(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]) if len(sys.argv) == 5 else None)
    else:
        sys.exit("usage: python -m mlops_kit.emulator serve PORT READY_FILE [STATE_DIR]")
