"""The image's entry points (`train`, `serve`), started the way the executor and SageMaker start them."""

from __future__ import annotations

import http.client
import json
import socket
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_kit import container, runtime
from mlops_kit.executor import launch

ROOT = Path(__file__).resolve().parents[2]
LAUNCHER = launch.VenvLauncher(ROOT)


def _opt_ml(root: Path, rows: int = 200, **hyperparameters: str) -> Path:
    """A training job's /opt/ml as SageMaker lays it out: config files and one channel."""
    ml = root / "opt" / "ml"
    rng = np.random.default_rng(7)
    x = rng.normal(size=(rows, 2))
    frame = pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "y": (x[:, 0] + x[:, 1] > 0).astype(int)})
    (ml / "input" / "data" / "train").mkdir(parents=True)
    frame.to_csv(ml / "input" / "data" / "train" / "part-0.csv", index=False)
    config = ml / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    (config / "inputdataconfig.json").write_text(json.dumps({"train": {"TrainingInputMode": "File"}}))
    return ml


def _train(root: Path, module: str = "tests.mlops_kit.container_fit") -> tuple[int, Path]:
    log = root / "train.log"
    spec = launch.Container(
        arguments=["train"],
        root=root,
        environment={container.TRAIN_MODULE_VARIABLE: module} if module else {},
    )
    return LAUNCHER.run(spec, log=log, timeout=120), log


def test_the_executor_starts_what_the_image_starts() -> None:
    """One source of truth: the Dockerfile's ENTRYPOINT is `container.ENTRYPOINT`, and a launch is that
    entry point plus SageMaker's argument, run from this environment's `python3`."""
    spec = launch.Container(arguments=["train"], root=Path("/tmp/x"))
    assert spec.command == [*container.ENTRYPOINT, "train"] == container.command("train")
    assert LAUNCHER.argv(spec) == ["python3", "-m", "mlops_kit.container", "train"]
    environment = LAUNCHER.environment(spec)
    assert environment["PATH"].split(":")[0] == str(LAUNCHER.python_bin)
    assert environment["PYTHONPATH"] == str(ROOT)  # the image's WORKDIR, /app
    processing = launch.Container(
        entrypoint=container.processing_command("kit_fixture.steps.prepare"),
        arguments=["--raw", "/opt/ml/processing/input/raw"],
        root=Path("/tmp/x"),
    )
    assert LAUNCHER.argv(processing) == [
        "python3", "-m", "kit_fixture.steps.prepare", "--raw", "/tmp/x/opt/ml/processing/input/raw",
    ]  # fmt: skip
    docker = launch.DockerLauncher("mlops-kit:ci").argv(processing)
    assert docker[-5:] == [
        "mlops-kit:ci",
        "-m",
        "kit_fixture.steps.prepare",
        "--raw",
        "/opt/ml/processing/input/raw",
    ]
    assert docker[docker.index("--entrypoint") + 1] == "python3"
    assert launch.DockerLauncher("mlops-kit:ci").argv(spec)[-2:] == ["mlops-kit:ci", "train"]


def test_train_then_serve_through_the_entry_points(tmp_path: Path) -> None:
    ml = _opt_ml(tmp_path, C='"0.5"', seed="3")
    code, log = _train(tmp_path)
    assert code == 0, log.read_text()
    assert (ml / "model" / "model.joblib").is_file()
    assert not (ml / "output" / "failure").exists()
    assert "trained on 200 rows" in log.read_text()

    port, process, log = _serve(tmp_path)
    try:
        _wait_for_ping(port, process, log)
        status, body = _post(port, b"2.0,1.5\n-2.0,-1.0\n")
        assert status == 200, body
        assert json.loads(body) == [1, 0]
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.parametrize(
    ("breakage", "reason"),
    [
        ("no module", "MLOPS_TRAIN_MODULE is not set"),
        ("bad hyperparameters", "hyperparameters.json: not valid JSON"),
        ("crash", "exited with code 2: container_fit.py: error: argument --C: invalid float value: 'x'"),
        ("missing module", "No module named tests.mlops_kit.absent"),
        ("no model", "wrote nothing to the model directory"),
    ],
)
def test_train_writes_the_failure_reason(tmp_path: Path, breakage: str, reason: str) -> None:
    ml = _opt_ml(tmp_path, C='"x"' if breakage == "crash" else "1")
    module = {"no module": "", "missing module": "tests.mlops_kit.absent", "no model": "this"}.get(
        breakage, "tests.mlops_kit.container_fit"
    )
    if breakage == "bad hyperparameters":
        (ml / "input" / "config" / "hyperparameters.json").write_text("{not json")
    if breakage == "no model":  # a module that runs fine and writes no model
        (ml / "input" / "config" / "hyperparameters.json").write_text("{}")
    code, log = _train(tmp_path, module)
    assert code == 1
    failure = (ml / "output" / "failure").read_text()
    assert reason in failure, failure
    assert len(failure) <= container.FAILURE_LIMIT


def test_serve_reads_sagemakers_variables() -> None:
    options = container.serve_options(
        {
            "SAGEMAKER_BIND_TO_PORT": "9000",
            "SAGEMAKER_MODEL_SERVER_WORKERS": "3",
            "SAGEMAKER_MODEL_SERVER_TIMEOUT": "12.5",
            container.ROOT_VARIABLE: "/srv/c",
        }
    )
    assert (options.port, options.workers, options.timeout_s) == (9000, 3, 12.5)
    assert options.model_dir == Path("/srv/c/opt/ml/model")
    assert options.host == "0.0.0.0"  # SageMaker reaches the container from outside it
    defaults = container.serve_options({})
    assert (defaults.port, defaults.timeout_s, defaults.model_dir) == (8080, 60.0, Path("/opt/ml/model"))
    with pytest.raises(ValueError, match="SAGEMAKER_MODEL_SERVER_WORKERS='two' is not a number"):
        container.serve_options({"SAGEMAKER_MODEL_SERVER_WORKERS": "two"})
    with pytest.raises(ValueError, match="SAGEMAKER_MODEL_SERVER_TIMEOUT='0' must be positive"):
        container.serve_options({"SAGEMAKER_MODEL_SERVER_TIMEOUT": "0"})


def test_serve_reads_the_connection_limits() -> None:
    options = container.serve_options(
        {
            "MLOPS_MAX_HEADER_KB": "16",
            "MLOPS_HEADER_TIMEOUT_S": "10",
            "MLOPS_KEEP_ALIVE_S": "75",
            "MLOPS_MAX_CONNECTIONS": "500",
        }
    )
    assert (options.max_header_kb, options.header_timeout_s, options.keep_alive_s) == (16.0, 10.0, 75.0)
    assert options.max_connections == 500
    defaults = container.serve_options({})  # the nginx in front of SageMaker's framework containers
    assert (defaults.max_header_kb, defaults.header_timeout_s, defaults.keep_alive_s) == (32.0, 60.0, 3.0)
    assert defaults.max_connections == 2048
    with pytest.raises(ValueError, match="MLOPS_MAX_CONNECTIONS='many' is not a number"):
        container.serve_options({"MLOPS_MAX_CONNECTIONS": "many"})
    with pytest.raises(ValueError, match="MLOPS_KEEP_ALIVE_S='0' must be positive"):
        container.serve_options({"MLOPS_KEEP_ALIVE_S": "0"})


def test_serve_reads_where_capture_waits_for_its_upload() -> None:
    assert container.serve_options({}).capture_spool == ""  # the server's default: under the temp folder
    assert container.serve_options({"MLOPS_CAPTURE_SPOOL": "/var/spool/capture"}).capture_spool == (
        "/var/spool/capture"
    )


def test_serve_reads_the_model_archive_limit() -> None:
    assert container.serve_options({}).max_model_mb == 0.0  # the rule: 100x the archive, >= 64 MiB
    assert container.serve_options({"MLOPS_MAX_MODEL_MB": "8192"}).max_model_mb == 8192.0
    with pytest.raises(ValueError, match="MLOPS_MAX_MODEL_MB='-1' must be positive"):
        container.serve_options({"MLOPS_MAX_MODEL_MB": "-1"})


SLOW_HANDLER = """
import time

def model_fn(model_dir):
    return "a model"

def predict_fn(data, model):
    if b"slow" in data:
        time.sleep(30)
    return [1.0]

def input_fn(body, content_type):
    return body
"""


def test_a_worker_stuck_past_the_timeout_is_replaced(tmp_path: Path) -> None:
    """SAGEMAKER_MODEL_SERVER_TIMEOUT, as gunicorn applies it: the stuck worker goes, a new one serves."""
    code = tmp_path / "opt" / "ml" / "model" / "code"
    code.mkdir(parents=True)
    (code / "inference.py").write_text(SLOW_HANDLER)
    port, process, log = _serve(tmp_path, SAGEMAKER_MODEL_SERVER_TIMEOUT="1")
    try:
        _wait_for_ping(port, process, log)
        started = time.monotonic()
        with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
            _post(port, b"slow", timeout=20)
        assert time.monotonic() - started < 15  # ended by the timeout, not by the 30 s sleep
        _wait_for_ping(port, process, log)
        assert _post(port, b"fast")[0] == 200
        assert "spent more than 1s on one batch" in log.read_text()
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_image_tag_names_the_runtime_of_the_definition() -> None:
    uri = runtime.image_uri("123456789012", "eu-west-1", "proj-dev-runtime", runtime.image_tag(ROOT))
    parsed = runtime.parse_image_uri(uri)
    assert parsed == {
        "account": "123456789012", "region": "eu-west-1", "repo": "proj-dev-runtime", "tag": runtime.image_tag(ROOT),
    }  # fmt: skip
    with pytest.raises(runtime.ImageError, match="not an ECR image reference"):
        runtime.parse_image_uri("python:3.11-slim")


def _serve(root: Path, **environment: str):
    """The image's `serve`, as SageMaker starts it, on a free loopback port: (port, process, log)."""
    port = _free_port()
    spec = launch.Container(
        arguments=["serve"],
        root=root,
        environment={
            "SAGEMAKER_BIND_TO_PORT": str(port),
            "SAGEMAKER_MODEL_SERVER_WORKERS": "1",
            "MLOPS_BIND_HOST": "127.0.0.1",
            **environment,
        },
    )
    log = root / "serve.log"
    return port, LAUNCHER.start(spec, log=log), log


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_ping(port: int, process, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/ping")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"no /ping answer in {timeout}s: {log.read_text()}")


def _post(port: int, body: bytes, timeout: float = 30) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    connection.request("POST", "/invocations", body=body, headers={"Content-Type": "text/csv"})
    response = connection.getresponse()
    return response.status, response.read()


def test_jobs_started_here_let_idle_openmp_threads_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """Jobs of steps running at once share this machine's cores: their idle OpenMP threads sleep instead
    of spinning (launch.SHARED_CORES), unless the request or the caller says otherwise; an endpoint's
    environment is left alone."""
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    job = launch.Container(arguments=["train"], root=Path("/tmp/x"))
    assert LAUNCHER.environment(job, job=True)["OMP_WAIT_POLICY"] == "PASSIVE"
    assert "OMP_WAIT_POLICY" not in LAUNCHER.environment(job)  # an endpoint
    asked = launch.Container(
        arguments=["train"], root=Path("/tmp/x"), environment={"OMP_WAIT_POLICY": "ACTIVE"}
    )
    assert LAUNCHER.environment(asked, job=True)["OMP_WAIT_POLICY"] == "ACTIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert LAUNCHER.environment(job, job=True)["OMP_WAIT_POLICY"] == "ACTIVE"
    docker = launch.DockerLauncher("mlops-kit:ci")
    assert "OMP_WAIT_POLICY=PASSIVE" in docker.argv(job, job=True)
    assert not any(part.startswith("OMP_WAIT_POLICY") for part in docker.argv(job))
    assert "OMP_WAIT_POLICY=ACTIVE" in docker.argv(asked, job=True)
