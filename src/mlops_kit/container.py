"""The runtime image's entry points, after SageMaker's bring-your-own-container contracts.

The image's `ENTRYPOINT` is `ENTRYPOINT` below (the Dockerfile says the same; a test holds them equal):
- `train`: SageMaker runs the training image with the argument `train`. Hyperparameters come from
  `/opt/ml/input/config/hyperparameters.json` (JSON-encoded values, as the pipeline writes them), channels
  from `/opt/ml/input/data/<channel>`; the model goes to `/opt/ml/model`, and on any error the reason goes
  to `/opt/ml/output/failure` (SageMaker shows it as the job's FailureReason) with a non-zero exit. The
  use case's training module (the request's `MLOPS_TRAIN_MODULE`) runs as `python3 -m MODULE --name value
  ...` with the `SM_*` variables SageMaker's training toolkit sets, so a script-mode training script runs
  unchanged.
- `serve`: SageMaker runs the serving image with `serve`; the kit's own server answers on port 8080
  (`SAGEMAKER_BIND_TO_PORT`) for `/opt/ml/model`, with `SAGEMAKER_MODEL_SERVER_WORKERS` worker processes;
  a worker busy on one batch longer than `SAGEMAKER_MODEL_SERVER_TIMEOUT` seconds is replaced, as
  gunicorn does in SageMaker's framework images. The kit's own settings are `MLOPS_*` variables: the
  payload limit, connection limits (`MLOPS_MAX_HEADER_KB`, `MLOPS_HEADER_TIMEOUT_S`, `MLOPS_KEEP_ALIVE_S`,
  `MLOPS_MAX_CONNECTIONS`), how far a model.tar.gz may unpack (`MLOPS_MAX_MODEL_MB`), data capture, the
  feature store.
- processing jobs set their own entry point, `processing_command(module)`: `python3 -m MODULE ARGS`.

The local executor starts exactly these commands (`command("train")`, `command("serve")`,
`processing_command(...)`) with the project's `.venv` on `PATH`. The one difference: without a container
there is no `/opt/ml` of the job's own, so the executor names a folder that stands for the container's
`/` in `MLOPS_CONTAINER_ROOT` (unset in AWS, where `/opt/ml` is the real one).
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ENTRYPOINT = ("python3", "-m", "mlops_kit.container")
MODES = ("train", "serve")
ROOT_VARIABLE = "MLOPS_CONTAINER_ROOT"
TRAIN_MODULE_VARIABLE = "MLOPS_TRAIN_MODULE"
DEFAULT_PORT = 8080
DEFAULT_TIMEOUT_S = 60.0
FAILURE_LIMIT = 1024  # SageMaker keeps the first 1 KiB of a failure reason


def command(mode: str) -> list[str]:
    """What a SageMaker training (`train`) or hosting (`serve`) container of the image runs."""
    if mode not in MODES:
        raise ValueError(f"unknown container mode {mode!r}; expected one of {', '.join(MODES)}")
    return [*ENTRYPOINT, mode]


def processing_command(module: str) -> list[str]:
    """A processing job's ContainerEntrypoint: the step module, run from the image."""
    return ["python3", "-m", module]


def ml_root(environ: Mapping[str, str] | None = None) -> Path:
    """`/opt/ml`, or its stand-in under `MLOPS_CONTAINER_ROOT` when the executor runs the image locally."""
    base = (environ if environ is not None else os.environ).get(ROOT_VARIABLE, "")
    return Path(base or "/") / "opt" / "ml"


# --- train -------------------------------------------------------------------------------------------


class TrainingError(RuntimeError):
    """Why a training job failed: what `/opt/ml/output/failure` says."""


def decode(value: Any) -> Any:
    """Hyperparameters arrive as strings; the pipeline JSON-encodes them (as script mode does)."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def training_environment(
    ml: Path, hyperparameters: Mapping[str, Any], channels: Sequence[str]
) -> dict[str, str]:
    """The `SM_*` variables of SageMaker's training toolkit, for the `/opt/ml` at `ml`."""
    config = ml / "input" / "config"
    resources = _read_json(config / "resourceconfig.json", {"current_host": "algo-1", "hosts": ["algo-1"]})
    return {
        "SM_MODEL_DIR": str(ml / "model"),
        "SM_OUTPUT_DIR": str(ml / "output"),
        "SM_OUTPUT_DATA_DIR": str(ml / "output" / "data"),
        "SM_INPUT_DIR": str(ml / "input"),
        "SM_INPUT_CONFIG_DIR": str(config),
        "SM_CHANNELS": json.dumps(list(channels)),
        "SM_HPS": json.dumps(dict(hyperparameters)),
        "SM_HOSTS": json.dumps(resources.get("hosts", ["algo-1"])),
        "SM_CURRENT_HOST": str(resources.get("current_host", "algo-1")),
        "SM_NUM_CPUS": str(os.cpu_count() or 1),
        "SM_NUM_GPUS": "0",
        **{f"SM_CHANNEL_{c.upper()}": str(ml / "input" / "data" / c) for c in channels},
        **{f"SM_HP_{k.upper()}": _text(v) for k, v in hyperparameters.items()},
    }


def _read_json(path: Path, default: Any) -> Any:
    if not path.is_file():
        return default
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise TrainingError(f"{path}: not valid JSON ({exc})") from None


def _channels(ml: Path) -> list[str]:
    declared = _read_json(ml / "input" / "config" / "inputdataconfig.json", None)
    if isinstance(declared, dict):
        return sorted(declared)
    data = ml / "input" / "data"
    return sorted(p.name for p in data.iterdir() if p.is_dir()) if data.is_dir() else []


def train(environ: Mapping[str, str] | None = None) -> int:
    """The `train` entry point; returns the exit code, with the reason in `/opt/ml/output/failure`."""
    environ = dict(os.environ if environ is None else environ)
    ml = ml_root(environ)
    failure = ml / "output" / "failure"
    try:
        _train(ml, environ)
    except Exception as exc:  # any error at all: SageMaker's contract is the failure file and the exit code
        reason = str(exc) if isinstance(exc, TrainingError) else f"{type(exc).__name__}: {exc}"
        failure.parent.mkdir(parents=True, exist_ok=True)
        failure.write_text(reason[:FAILURE_LIMIT])
        print(f"train failed: {reason}", file=sys.stderr)
        return 1
    return 0


def _train(ml: Path, environ: dict[str, str]) -> None:
    module = environ.get(TRAIN_MODULE_VARIABLE, "")
    if not module:
        raise TrainingError(
            f"{TRAIN_MODULE_VARIABLE} is not set: the training request's Environment names the module to run"
        )
    raw = _read_json(ml / "input" / "config" / "hyperparameters.json", {})
    if not isinstance(raw, dict):
        raise TrainingError("hyperparameters.json must hold an object of name -> value")
    hyperparameters = {k: decode(v) for k, v in sorted(raw.items())}
    channels = _channels(ml)
    model = ml / "model"
    model.mkdir(parents=True, exist_ok=True)
    env = {**environ, **training_environment(ml, hyperparameters, channels)}
    args = [part for k, v in hyperparameters.items() for part in (f"--{k}", _text(v))]
    tail: collections.deque[str] = collections.deque(maxlen=20)
    with subprocess.Popen(
        [sys.executable, "-m", module, *args], env=env, stderr=subprocess.PIPE, text=True, errors="replace"
    ) as process:
        assert process.stderr is not None
        for line in process.stderr:  # passed through to the job's log, and the last lines kept
            sys.stderr.write(line)
            if line.strip():
                tail.append(line.strip())
    if process.returncode != 0:
        last = tail[-1] if tail else "no output on stderr"
        raise TrainingError(f"{module} exited with code {process.returncode}: {last}")
    if not any(model.iterdir()):
        raise TrainingError(f"{module} wrote nothing to the model directory {model}")


# --- serve -------------------------------------------------------------------------------------------


def serve_options(environ: Mapping[str, str] | None = None) -> Any:
    """The server's options from SageMaker's hosting variables (and the local endpoint's own)."""
    from mlops_kit.serving.server import ServerOptions

    environ = os.environ if environ is None else environ

    def number(name: str, default: float, kind: type = float, minimum: float = 1e-9) -> Any:
        raw = environ.get(name, "")
        try:
            value = kind(raw) if raw else kind(default)
        except ValueError:
            raise ValueError(f"{name}={raw!r} is not a number") from None
        if value < minimum:
            raise ValueError(f"{name}={raw!r} must be positive")
        return value

    return ServerOptions(
        model_dir=ml_root(environ) / "model",
        # In a container the port must answer on every interface; the local endpoint keeps to loopback.
        host=environ.get("MLOPS_BIND_HOST", "0.0.0.0"),
        port=number("SAGEMAKER_BIND_TO_PORT", DEFAULT_PORT, int, minimum=0),  # 0: any free port (tests)
        workers=number("SAGEMAKER_MODEL_SERVER_WORKERS", os.cpu_count() or 1, int),
        timeout_s=number("SAGEMAKER_MODEL_SERVER_TIMEOUT", DEFAULT_TIMEOUT_S),
        max_payload_mb=number("MLOPS_MAX_PAYLOAD_MB", 6.0),
        # connection limits (defaults: the nginx in front of SageMaker's framework containers)
        max_header_kb=number("MLOPS_MAX_HEADER_KB", 32.0),
        header_timeout_s=number("MLOPS_HEADER_TIMEOUT_S", 60.0),
        keep_alive_s=number("MLOPS_KEEP_ALIVE_S", 3.0),
        max_connections=number("MLOPS_MAX_CONNECTIONS", 2048, int),
        max_model_mb=number("MLOPS_MAX_MODEL_MB", 0.0, minimum=0.0),  # 0: 100x the archive, >= 64 MiB
        capture_to=environ.get("MLOPS_CAPTURE_TO", ""),
        capture_percent=float(environ.get("MLOPS_CAPTURE_PERCENT", "0") or 0),
        capture_spool=environ.get("MLOPS_CAPTURE_SPOOL", ""),
        endpoint_name=environ.get("MLOPS_ENDPOINT_NAME", "local-endpoint"),
        model_package=environ.get("MLOPS_MODEL_PACKAGE_ARN", ""),
        feature_store_env=environ.get("MLOPS_FEATURE_STORE_ENV", ""),
        ready_file=Path(environ["MLOPS_READY_FILE"]) if environ.get("MLOPS_READY_FILE") else None,
    )


def serve() -> int:
    from mlops_kit.serving.server import configure_logging, log
    from mlops_kit.serving.server import serve as run_server

    configure_logging()
    try:
        run_server(serve_options())
    except Exception as exc:  # a model that cannot load, a port in use: one line, exit 1
        log.error("%s", exc)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0] not in MODES:
        print(
            f"usage: {' '.join(ENTRYPOINT)} {{{','.join(MODES)}}}  (SageMaker runs the image with one of "
            "these; processing jobs set their own entry point)",
            file=sys.stderr,
        )
        return 2
    if args[0] == "train":
        return train()
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")  # workers are the unit of parallelism (see mlops_kit.serving)
    return serve()


if __name__ == "__main__":
    sys.exit(main())
