"""Run one resolved SageMaker job request on this machine, with SageMaker's container contract.

A processing or training job gets a private container root (`<tmp>/opt/ml/...`): its S3 inputs are
staged there as SageMaker stages them, with the config files SageMaker writes (`processingjobconfig.json`,
`resourceconfig.json`, `hyperparameters.json`, `inputdataconfig.json`), and the request's container is
started by a launcher (`mlops_kit.executor.launch`): the very command the image runs in AWS (the request's
`ContainerEntrypoint` and `ContainerArguments`, or the image's `train`), with the request's environment and
network isolation, from the project's `.venv` or in the built image. Only the project's own image can run
here: a request naming another image is refused. Outputs are uploaded only after the process succeeded,
and an upload that fails half-way is rolled back, so a failed step leaves nothing behind. The request is
also recorded in the emulator (`CreateProcessingJob` / `CreateTrainingJob`), which checks it against
botocore's service model.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import subprocess
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError, ParamValidationError

from mlops_kit import sharding
from mlops_kit.executor.launch import Container, Launcher
from mlops_kit.registry import metadata
from mlops_kit.s3 import list_objects, split_uri


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
    launcher: Launcher
    image_uri: str  # the project's image at its current sources: the only one that runs here


# --- S3 staging -------------------------------------------------------------------------------------


def download_prefix(s3: Any, uri: str, target: Path) -> int:
    """Stage every object under the S3 prefix into `target`, keeping paths below the prefix's folder."""
    bucket, _ = split_uri(uri)
    folder = _prefix_folder(uri)
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


# --- running a container ----------------------------------------------------------------------------


def check_image(step: str, image: str, env: JobEnv) -> None:
    """Only the project's image, at the sources on this machine, runs here (as only it runs in AWS)."""
    if image != env.image_uri:
        raise StepFailed(
            step,
            f"the request runs image {image!r}; this machine runs only the project's image at its current "
            f"sources, {env.image_uri!r} (built from the Dockerfile and uv.lock: mlops_kit.runtime)",
            env.log_path,
        )


def _launch(step: str, spec: Container, env: JobEnv, timeout: float, usage: dict | None = None) -> None:
    env.log_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        code = env.launcher.run(spec, log=env.log_path, timeout=timeout, usage=usage)
    except subprocess.TimeoutExpired:
        raise StepFailed(step, f"stopped after its limit of {timeout:.0f}s", env.log_path) from None
    if code != 0:
        failure = spec.root / "opt" / "ml" / "output" / "failure"  # SageMaker's FailureReason
        reason = (
            failure.read_text(errors="replace").strip() if failure.is_file() else _last_line(env.log_path)
        )
        raise StepFailed(step, f"exit code {code}: {reason}", env.log_path)


def _last_line(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no output"


def _record(env: JobEnv, operation: str, request: dict[str, Any]) -> None:
    """Record the job in the emulator; botocore validates the request against the service model."""
    try:
        getattr(env.client("sagemaker"), operation)(**request)
    except ParamValidationError as exc:
        raise ValueError(f"the {operation} request is not valid: {exc}") from None
    except ClientError:
        pass  # the emulator may not keep every detail; the request itself was valid


def _write_json(path: Path, document: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, default=str))


def _local(root: Path, container_path: str) -> Path:
    """The stand-in of a container path under /opt/ml."""
    if not container_path.startswith("/opt/ml/"):
        raise ValueError(f"{container_path}: SageMaker stages data only under /opt/ml/")
    return root / container_path.lstrip("/")


# --- processing --------------------------------------------------------------------------------------


def run_processing(step: str, job_name: str, request: dict[str, Any], env: JobEnv) -> dict[str, Any]:
    """Run a resolved CreateProcessingJob request; returns DescribeProcessingJob-like properties.

    `InstanceCount` instances run as that many processes, at most one per core at a time, each in its
    own container root with the `resourceconfig.json` SageMaker writes for it and the inputs SageMaker
    gives it: every object of a `FullyReplicated` input, its share (`sharding.assign`) of a
    `ShardedByS3Key` one. Each instance's outputs are uploaded to the output's S3 prefix (a file two
    instances both write is the one uploaded last, as in S3), only once every instance succeeded."""
    _record(env, "create_processing_job", {"ProcessingJobName": job_name, **request})
    app = request["AppSpecification"]
    check_image(step, app["ImageUri"], env)
    if not app.get("ContainerEntrypoint"):
        raise StepFailed(step, "the request has no ContainerEntrypoint to run", env.log_path)
    s3 = env.client("s3")
    started = time.time()
    count = int(request.get("ProcessingResources", {}).get("ClusterConfig", {}).get("InstanceCount", 1))
    names = sharding.hosts(count)
    shares = _input_shares(step, request, s3, count, env)
    outputs = request.get("ProcessingOutputConfig", {}).get("Outputs", [])
    timeout = float(request.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", 86400))
    with tempfile.TemporaryDirectory(prefix=f"mlops-{step}-") as tmp:
        roots = [Path(tmp) / host for host in names]
        for index, (host, root) in enumerate(zip(names, roots, strict=True)):
            _write_json(
                root / "opt/ml/config/processingjobconfig.json", {"ProcessingJobName": job_name, **request}
            )
            sharding.write_resource_config(root / "opt/ml/config", host, names)
            for local_path, bucket, keys in shares.values():
                _stage(s3, bucket, keys[index], _local(root, local_path))
            for output in outputs:
                _local(root, output["S3Output"]["LocalPath"]).mkdir(parents=True, exist_ok=True)
        specs = [
            Container(
                entrypoint=app["ContainerEntrypoint"],
                arguments=app.get("ContainerArguments", []),
                environment=request.get("Environment", {}),
                root=root,
                aws_environment=env.aws_env,
                network_isolation=bool(request.get("NetworkConfig", {}).get("EnableNetworkIsolation")),
            )
            for root in roots
        ]
        usages = _launch_all(step, specs, names, env, timeout)
        files: dict[str, dict[str, str]] = {}
        written: list[tuple[str, str]] = []
        try:
            for root in roots:
                for output in outputs:
                    folder = _local(root, output["S3Output"]["LocalPath"])
                    written += upload_folder(s3, folder, output["S3Output"]["S3Uri"])
                    files.setdefault(output["OutputName"], {}).update(_read_tree(folder))
        except Exception as exc:
            remove(s3, written)
            raise StepFailed(step, f"uploading outputs failed, nothing kept: {exc}", env.log_path) from None
    return {
        "ProcessingJobName": job_name,
        "ProcessingJobStatus": "Completed",
        "ProcessingJobArn": f"arn:aws:sagemaker:local:job/{job_name}",
        "ProcessingInputs": request.get("ProcessingInputs", []),
        "ProcessingOutputConfig": request.get("ProcessingOutputConfig", {}),
        "ProcessingResources": request.get("ProcessingResources", {}),
        "AppSpecification": app,
        "DurationSeconds": round(time.time() - started, 3),
        "_files": files,
        "_instances": usages,
    }


def _input_shares(
    step: str, request: dict[str, Any], s3: Any, count: int, env: JobEnv
) -> dict[str, tuple[str, str, list[list[tuple[str, str]]]]]:
    """For each S3 input: its local path, its bucket and, per instance, the (key, path below the local
    path) of each object that instance gets."""
    shares = {}
    for item in request.get("ProcessingInputs", []):
        source = item.get("S3Input")
        if not source:
            continue
        bucket, _ = split_uri(source["S3Uri"])
        keys = [o["Key"] for o in list_objects(s3, source["S3Uri"])]
        if not keys:
            raise StepFailed(
                step, f"input {item['InputName']}: no objects under {source['S3Uri']}", env.log_path
            )
        distribution = source.get("S3DataDistributionType", sharding.REPLICATED)
        if distribution == sharding.SHARDED:
            per_host = sharding.assign(keys, count)
        elif distribution == sharding.REPLICATED:
            per_host = [keys] * count
        else:
            raise StepFailed(
                step, f"input {item['InputName']}: unknown S3DataDistributionType {distribution!r}"
            )
        folder = _prefix_folder(source["S3Uri"])
        shares[item["InputName"]] = (
            source["LocalPath"],
            bucket,
            [[(k, k[len(folder) :] if folder else k) for k in host_keys] for host_keys in per_host],
        )
    return shares


def _prefix_folder(uri: str) -> str:
    """The folder of an S3 prefix: what staged paths are relative to (SageMaker keeps the rest)."""
    _, prefix = split_uri(uri)
    if not prefix or prefix.endswith("/"):
        return prefix
    return prefix.rsplit("/", 1)[0] + "/" if "/" in prefix else ""


def _stage(s3: Any, bucket: str, keys: list[tuple[str, str]], target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for key, relative in keys:
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, key, str(destination))


def _launch_all(
    step: str, specs: list[Container], names: list[str], env: JobEnv, timeout: float
) -> list[dict[str, Any]]:
    """Run every instance, at most one per core at a time; the first failure fails the step (instances
    not started yet are not started, as SageMaker stops a job's instances when one fails)."""
    if len(specs) == 1:
        usage: dict[str, Any] = {"host": names[0]}
        _launch(step, specs[0], env, timeout, usage)
        return [usage]
    failed = threading.Event()
    usages = [{"host": host} for host in names]

    def one(index: int) -> None:
        if failed.is_set():
            return
        log = env.log_path.with_name(f"{env.log_path.stem}.{names[index]}{env.log_path.suffix}")
        try:
            _launch(step, specs[index], dataclasses.replace(env, log_path=log), timeout, usages[index])
        except StepFailed:
            failed.set()
            raise

    workers = max(1, min(len(specs), os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(one, i) for i in range(len(specs))]
        errors = [f.exception() for f in futures]
    for index, error in enumerate(errors):
        if error is not None:
            if isinstance(error, StepFailed):
                raise StepFailed(step, f"instance {names[index]}: {error.reason}", error.log)
            raise error
    return usages


def _read_tree(folder: Path) -> dict[str, str]:
    """Small JSON outputs, kept so property files can be read after the container root is gone."""
    out = {}
    for path in folder.rglob("*.json"):
        if path.stat().st_size <= 1_000_000:
            out[path.relative_to(folder).as_posix()] = path.read_text()
    return out


# --- training ----------------------------------------------------------------------------------------


def run_training(step: str, job_name: str, request: dict[str, Any], env: JobEnv) -> dict[str, Any]:
    """Run a resolved CreateTrainingJob request: the image's `train` in SageMaker's /opt/ml layout;
    returns DescribeTrainingJob-like properties."""
    _record(env, "create_training_job", {"TrainingJobName": job_name, **request})
    check_image(step, request["AlgorithmSpecification"]["TrainingImage"], env)
    s3 = env.client("s3")
    started = time.time()
    hyperparameters = request.get("HyperParameters", {})
    arn = f"arn:aws:sagemaker:local:training-job/{job_name}"
    with tempfile.TemporaryDirectory(prefix=f"mlops-{step}-") as tmp:
        root = Path(tmp)
        ml = root / "opt" / "ml"
        model = ml / "model"
        for folder in (model, ml / "output" / "data", ml / "input" / "config"):
            folder.mkdir(parents=True, exist_ok=True)
        for channel in request.get("InputDataConfig", []):
            name = channel["ChannelName"]
            target = ml / "input" / "data" / name
            target.mkdir(parents=True, exist_ok=True)
            try:
                download_prefix(s3, channel["DataSource"]["S3DataSource"]["S3Uri"], target)
            except FileNotFoundError as exc:
                raise StepFailed(step, f"channel {name}: {exc}", env.log_path) from None
        config = ml / "input" / "config"
        _write_json(config / "hyperparameters.json", hyperparameters)
        _write_json(config / "resourceconfig.json", {"current_host": "algo-1", "hosts": ["algo-1"]})
        _write_json(
            config / "inputdataconfig.json",
            {
                c["ChannelName"]: {
                    "TrainingInputMode": request["AlgorithmSpecification"]["TrainingInputMode"]
                }
                for c in request.get("InputDataConfig", [])
            },
        )
        spec = Container(
            arguments=["train"],  # SageMaker runs a training image with the argument `train`
            environment={
                **request.get("Environment", {}),
                "TRAINING_JOB_NAME": job_name,
                "TRAINING_JOB_ARN": arn,
            },
            root=root,
            aws_environment=env.aws_env,
            network_isolation=bool(request.get("EnableNetworkIsolation")),
        )
        timeout = float(request.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", 86400))
        usage: dict[str, Any] = {"host": "algo-1"}
        _launch(step, spec, env, timeout, usage)
        if not any(model.iterdir()):
            raise StepFailed(step, f"the training job wrote nothing to /opt/ml/model ({model})", env.log_path)
        packed = root / "model.tar.gz"
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
        "TrainingJobArn": arn,
        "ModelArtifacts": {"S3ModelArtifacts": artifact},
        "HyperParameters": hyperparameters,
        "AlgorithmSpecification": request.get("AlgorithmSpecification", {}),
        "OutputDataConfig": request.get("OutputDataConfig", {}),
        "TrainingTimeInSeconds": round(time.time() - started, 3),
        "_instances": [usage],
    }


# --- registration ------------------------------------------------------------------------------------


def register_model(step: str, request: dict[str, Any], env: JobEnv) -> dict[str, Any]:
    """CreateModelPackage against the emulator's registry, exactly once per execution and step: a run
    resumed after a crash finds the package it registered (its `lineage:execution`) instead of making a
    second one. The request carries the same key as its ClientToken, which SageMaker honours in AWS.
    Returns DescribeModelPackage's response."""
    sagemaker = env.client("sagemaker")
    properties = request.get("CustomerMetadataProperties") or {}
    execution = properties.get(metadata.lineage_key("execution"), "")
    token = _client_token(execution, step) if execution else None
    try:
        arn = _registered(sagemaker, request["ModelPackageGroupName"], execution) if execution else None
        if arn is None:
            arn = sagemaker.create_model_package(**request, **({"ClientToken": token} if token else {}))[
                "ModelPackageArn"
            ]
        described = sagemaker.describe_model_package(ModelPackageName=arn)
    except (ClientError, ParamValidationError) as exc:
        raise StepFailed(step, f"CreateModelPackage refused the request: {exc}") from None
    described.pop("ResponseMetadata", None)
    return json.loads(json.dumps(described, default=str))


def _client_token(execution: str, step: str) -> str:
    """CreateModelPackage's idempotency token: [a-zA-Z0-9-], at most 36 characters."""
    import hashlib

    return hashlib.sha256(f"{execution}/{step}".encode()).hexdigest()[:36]


def _registered(sagemaker: Any, group: str, execution: str) -> str | None:
    """The package of `group` that this execution already registered, if any (newest first)."""
    paginator = sagemaker.get_paginator("list_model_packages")
    for page in paginator.paginate(
        ModelPackageGroupName=group, SortBy="CreationTime", SortOrder="Descending"
    ):
        for summary in page.get("ModelPackageSummaryList", []):
            described = sagemaker.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
            lineage = metadata.lineage(described.get("CustomerMetadataProperties") or {})
            if lineage.get("execution") == execution:
                return summary["ModelPackageArn"]
    return None
