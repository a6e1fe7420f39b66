"""Run one resolved SageMaker job request on this machine, with SageMaker's container contract.

A processing or training job gets a private container root (`<tmp>/opt/ml/...`): its S3 inputs are
staged there, every `/opt/ml/` path in its command is mapped onto that root, and the job's own entry
point runs as a subprocess with the emulator's AWS variables. Outputs are uploaded only after the
process succeeded, and an upload that fails half-way is rolled back, so a failed step leaves nothing
behind. The request is also recorded in the emulator (`CreateProcessingJob` / `CreateTrainingJob`),
which checks it against botocore's service model.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError, ParamValidationError

from mlops_kit.s3 import list_objects, split_uri

CONTAINER_ROOT = "/opt/ml/"


class StepFailed(RuntimeError):
    """A step's job failed: says which step, why, and where its log is."""

    def __init__(self, step: str, reason: str, log: Path | None = None):
        self.step = step
        self.reason = reason
        self.log = log
        where = f" (log: {log})" if log else ""
        super().__init__(f"step {step} failed: {reason}{where}")


@dataclass
class JobEnv:
    """What a job needs from its surroundings."""

    client: Callable[[str], Any]
    aws_env: dict[str, str]
    log_path: Path
    python_bin: Path = Path(sys.executable).parent


# --- S3 staging -------------------------------------------------------------------------------------


def download_prefix(s3: Any, uri: str, target: Path) -> int:
    """Stage every object under the S3 prefix into `target`, keeping paths below the prefix's folder."""
    bucket, prefix = split_uri(uri)
    if not prefix or prefix.endswith("/"):
        folder = prefix
    else:
        folder = prefix.rsplit("/", 1)[0] + "/" if "/" in prefix else ""
    objects = list_objects(s3, uri)
    if not objects:
        raise FileNotFoundError(f"no objects under {uri}")
    for item in objects:
        relative = item["Key"][len(folder) :] if folder else item["Key"]
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, item["Key"], str(destination))
    return len(objects)


def upload_folder(s3: Any, folder: Path, uri: str) -> list[tuple[str, str]]:
    """Upload every file under `folder` below the S3 prefix; on any failure remove what was written."""
    bucket, prefix = split_uri(uri)
    written: list[tuple[str, str]] = []
    try:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            key = f"{prefix.rstrip('/')}/{path.relative_to(folder).as_posix()}"
            s3.upload_file(str(path), bucket, key)
            written.append((bucket, key))
    except Exception:
        remove(s3, written)
        raise
    return written


def remove(s3: Any, objects: list[tuple[str, str]]) -> None:
    for bucket, key in objects:
        with contextlib.suppress(ClientError):
            s3.delete_object(Bucket=bucket, Key=key)


def fingerprint(s3: Any, uri: str) -> list[list[str]]:
    """(key, ETag) of every object under a prefix: what a cache key needs to know about an input."""
    return sorted([o["Key"], o.get("ETag", "")] for o in list_objects(s3, uri))


# --- running a container command ----------------------------------------------------------------------


def _map(value: str, root: Path) -> str:
    return value.replace(CONTAINER_ROOT, f"{root}{CONTAINER_ROOT}")


def _run(command: list[str], env: dict[str, str], cwd: Path, log: Path, timeout: float, step: str) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        out.write(f"$ {' '.join(command)}\n".encode())
        out.flush()
        try:
            result = subprocess.run(
                command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise StepFailed(step, f"stopped after its limit of {timeout:.0f}s", log) from None
    if result.returncode != 0:
        raise StepFailed(step, f"exit code {result.returncode}: {_last_line(log)}", log)


def _last_line(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no output"


def _base_env(env: JobEnv, extra: Mapping[str, str]) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "AWS_"))}
    base.update(env.aws_env)
    base.update(extra)
    base["PATH"] = f"{env.python_bin}{os.pathsep}{base.get('PATH', '')}"
    base["MLOPS_LOCAL"] = "1"  # the bundle's bootstrap skips installing what this environment has
    base.pop("PYTHONPATH", None)
    return base


def _record(env: JobEnv, operation: str, request: dict[str, Any]) -> None:
    """Record the job in the emulator; botocore validates the request against the service model."""
    try:
        getattr(env.client("sagemaker"), operation)(**request)
    except ParamValidationError as exc:
        raise ValueError(f"the {operation} request is not valid: {exc}") from None
    except ClientError:
        pass  # the emulator may not keep every detail; the request itself was valid


# --- processing --------------------------------------------------------------------------------------


def run_processing(step: str, job_name: str, request: dict[str, Any], env: JobEnv) -> dict[str, Any]:
    """Run a resolved CreateProcessingJob request; returns DescribeProcessingJob-like properties."""
    _record(env, "create_processing_job", {"ProcessingJobName": job_name, **request})
    s3 = env.client("s3")
    started = time.time()
    with tempfile.TemporaryDirectory(prefix=f"mlops-{step}-") as tmp:
        root = Path(tmp)
        for item in request.get("ProcessingInputs", []):
            source = item.get("S3Input")
            if source:
                local = Path(_map(source["LocalPath"], root))
                local.mkdir(parents=True, exist_ok=True)
                try:
                    download_prefix(s3, source["S3Uri"], local)
                except FileNotFoundError as exc:
                    raise StepFailed(step, f"input {item['InputName']}: {exc}", env.log_path) from None
        outputs = request.get("ProcessingOutputConfig", {}).get("Outputs", [])
        for output in outputs:
            Path(_map(output["S3Output"]["LocalPath"], root)).mkdir(parents=True, exist_ok=True)
        app = request["AppSpecification"]
        command = [
            _map(c, root) for c in [*app.get("ContainerEntrypoint", []), *app.get("ContainerArguments", [])]
        ]
        if not command:
            raise StepFailed(step, "the request has no ContainerEntrypoint to run", env.log_path)
        timeout = float(request.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", 86400))
        run_env = _base_env(env, request.get("Environment", {}))
        _run(command, run_env, root, env.log_path, timeout, step)
        files: dict[str, Path] = {}
        written: list[tuple[str, str]] = []
        try:
            for output in outputs:
                folder = Path(_map(output["S3Output"]["LocalPath"], root))
                written += upload_folder(s3, folder, output["S3Output"]["S3Uri"])
                files[output["OutputName"]] = folder
        except Exception as exc:
            remove(s3, written)
            raise StepFailed(step, f"uploading outputs failed, nothing kept: {exc}", env.log_path) from None
        documents = {name: _read_tree(folder) for name, folder in files.items()}
    return {
        "ProcessingJobName": job_name,
        "ProcessingJobStatus": "Completed",
        "ProcessingJobArn": f"arn:aws:sagemaker:local:job/{job_name}",
        "ProcessingInputs": request.get("ProcessingInputs", []),
        "ProcessingOutputConfig": request.get("ProcessingOutputConfig", {}),
        "AppSpecification": app,
        "DurationSeconds": round(time.time() - started, 3),
        "_files": documents,
    }


def _read_tree(folder: Path) -> dict[str, str]:
    """Small JSON outputs, kept so property files can be read after the container root is gone."""
    out = {}
    for path in folder.rglob("*.json"):
        if path.stat().st_size <= 1_000_000:
            out[path.relative_to(folder).as_posix()] = path.read_text()
    return out


# --- training ----------------------------------------------------------------------------------------


def run_training(step: str, job_name: str, request: dict[str, Any], env: JobEnv) -> dict[str, Any]:
    """Run a resolved CreateTrainingJob request in script mode; returns DescribeTrainingJob-like properties."""
    _record(env, "create_training_job", {"TrainingJobName": job_name, **request})
    s3 = env.client("s3")
    started = time.time()
    hyperparameters = request.get("HyperParameters", {})
    decoded = {k: _decode(v) for k, v in hyperparameters.items()}
    program = decoded.get("sagemaker_program")
    submit = decoded.get("sagemaker_submit_directory")
    if not program or not submit:
        raise StepFailed(
            step,
            "only script mode is supported locally: set sagemaker_program and sagemaker_submit_directory",
        )
    with tempfile.TemporaryDirectory(prefix=f"mlops-{step}-") as tmp:
        ml = Path(tmp) / "opt" / "ml"
        code, model, output = ml / "code", ml / "model", ml / "output" / "data"
        config = ml / "input" / "config"
        for folder in (code, model, output, config):
            folder.mkdir(parents=True, exist_ok=True)
        archive = Path(tmp) / "sourcedir.tar.gz"
        bucket, key = split_uri(submit)
        s3.download_file(bucket, key, str(archive))
        with tarfile.open(archive) as tar:
            tar.extractall(code, filter="data")
        channels = []
        for channel in request.get("InputDataConfig", []):
            name = channel["ChannelName"]
            target = ml / "input" / "data" / name
            target.mkdir(parents=True, exist_ok=True)
            try:
                download_prefix(s3, channel["DataSource"]["S3DataSource"]["S3Uri"], target)
            except FileNotFoundError as exc:
                raise StepFailed(step, f"channel {name}: {exc}", env.log_path) from None
            channels.append(name)
        user = {k: v for k, v in decoded.items() if not k.startswith("sagemaker_")}
        (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
        (config / "resourceconfig.json").write_text(
            json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]})
        )
        (config / "inputdataconfig.json").write_text(
            json.dumps(
                {c["ChannelName"]: {"TrainingInputMode": "File"} for c in request.get("InputDataConfig", [])}
            )
        )
        sm_env = {
            "SM_MODEL_DIR": str(model),
            "SM_OUTPUT_DATA_DIR": str(output),
            "SM_INPUT_DIR": str(ml / "input"),
            "SM_INPUT_CONFIG_DIR": str(config),
            "SM_CHANNELS": json.dumps(channels),
            "SM_HPS": json.dumps(user),
            "SM_HOSTS": json.dumps(["algo-1"]),
            "SM_CURRENT_HOST": "algo-1",
            "SM_NUM_CPUS": str(os.cpu_count() or 1),
            "SM_NUM_GPUS": "0",
            "SM_MODULE_DIR": submit,
            "SM_USER_ENTRY_POINT": program,
            "PYTHONPATH": str(code),
            **{f"SM_CHANNEL_{c.upper()}": str(ml / "input" / "data" / c) for c in channels},
            **{f"SM_HP_{k.upper()}": _text(v) for k, v in user.items()},
        }
        run_env = _base_env(env, request.get("Environment", {}))
        run_env.update(sm_env)
        args = [part for k, v in sorted(user.items()) for part in (f"--{k}", _text(v))]
        command = [str(env.python_bin / "python"), program, *args]
        timeout = float(request.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", 86400))
        _run(command, run_env, code, env.log_path, timeout, step)
        if not any(model.iterdir()):
            raise StepFailed(
                step, f"the training script wrote nothing to SM_MODEL_DIR ({model})", env.log_path
            )
        packed = Path(tmp) / "model.tar.gz"
        with tarfile.open(packed, "w:gz") as tar:
            for path in sorted(model.rglob("*")):
                tar.add(path, arcname=path.relative_to(model).as_posix(), recursive=False)
        base = request["OutputDataConfig"]["S3OutputPath"].rstrip("/")
        artifact = f"{base}/{job_name}/output/model.tar.gz"
        bucket, key = split_uri(artifact)
        try:
            s3.upload_file(str(packed), bucket, key)
        except Exception as exc:
            raise StepFailed(step, f"uploading the model failed: {exc}", env.log_path) from None
    return {
        "TrainingJobName": job_name,
        "TrainingJobStatus": "Completed",
        "TrainingJobArn": f"arn:aws:sagemaker:local:training-job/{job_name}",
        "ModelArtifacts": {"S3ModelArtifacts": artifact},
        "HyperParameters": hyperparameters,
        "AlgorithmSpecification": request.get("AlgorithmSpecification", {}),
        "OutputDataConfig": request.get("OutputDataConfig", {}),
        "TrainingTimeInSeconds": round(time.time() - started, 3),
    }


def _decode(value: str) -> Any:
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return value


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


# --- registration ------------------------------------------------------------------------------------


def register_model(step: str, request: dict[str, Any], env: JobEnv) -> dict[str, Any]:
    """CreateModelPackage against the emulator's registry; returns DescribeModelPackage's response."""
    sagemaker = env.client("sagemaker")
    try:
        arn = sagemaker.create_model_package(**request)["ModelPackageArn"]
    except (ClientError, ParamValidationError) as exc:
        raise StepFailed(step, f"CreateModelPackage refused the request: {exc}") from None
    described = sagemaker.describe_model_package(ModelPackageName=arn)
    described.pop("ResponseMetadata", None)
    return json.loads(json.dumps(described, default=str))
