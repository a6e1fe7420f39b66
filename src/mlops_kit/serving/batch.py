"""Batch inference: SageMaker batch transform's contract, run locally through the same handler.

Batch transform reads each input object, splits it into records by line (`SplitType: Line`), sends
mini-batches of whole records no larger than `MaxPayloadInMB` to the container (`MultiRecord`), and
writes `<output>/<input object name>.out` with the answers joined by lines (`AssembleWith: Line`).
`run_local` does exactly that with `handler.Handler` in this process, for local paths and s3:// URIs
(the emulator's S3 on the embedded default). In AWS, `transform_job_request` is the CreateTransformJob
request for the same input and output, and `start_transform_job` sends it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_kit import naming
from mlops_kit.s3 import list_objects, split_uri
from mlops_kit.serving import contract
from mlops_kit.settings import Settings


class BatchError(RuntimeError):
    """A batch input could not be read or one of its records was refused; names the object and record."""


def mini_batches(text: str, max_bytes: int) -> Iterator[tuple[int, str]]:
    """Whole lines grouped so each batch is at most `max_bytes`: (first record number, batch text)."""
    batch: list[str] = []
    size = 0
    first = 1
    for number, line in enumerate((line for line in text.splitlines() if line.strip()), start=1):
        length = len(line.encode()) + 1
        if length > max_bytes:
            raise BatchError(f"record {number} is {length} bytes, over the {max_bytes}-byte payload limit")
        if batch and size + length > max_bytes:
            yield first, "\n".join(batch) + "\n"
            batch, size, first = [], 0, number
        batch.append(line)
        size += length
    if batch:
        yield first, "\n".join(batch) + "\n"


def transform(handler: Any, text: str, content_type: str, accept: str, max_bytes: int, where: str) -> bytes:
    """One input object through the handler, batch by batch; the outputs joined by lines."""
    outputs = []
    kind = contract.media_type(content_type)
    batches = (
        mini_batches(text, max_bytes)
        if kind == contract.CSV
        else (
            (n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()
        )  # JSON lines: one each
    )
    for first, body in batches:
        response = handler.invoke(body.encode(), content_type, accept)
        if response.status != 200:
            detail = (
                json.loads(response.body).get("error")
                if response.content_type == contract.JSON
                else response.body
            )
            raise BatchError(
                f"{where}: the batch from record {first} was refused ({response.status}): {detail}"
            )
        outputs.append(response.body if response.body.endswith(b"\n") else response.body + b"\n")
    return b"".join(outputs)


@dataclass
class BatchResult:
    outputs: list[str] = field(default_factory=list)
    records: int = 0


class Storage:
    """Reads and writes local paths and s3:// URIs (through `s3`, a boto3 client, when given)."""

    def __init__(self, s3: Callable[[], Any] | None = None):
        self._factory = s3
        self._s3: Any = None

    def client(self) -> Any:
        if self._s3 is None:
            if self._factory is None:
                raise BatchError("an s3:// URI needs S3; run with --env so the kit knows which")
            self._s3 = self._factory()
        return self._s3

    def inputs(self, uri: str) -> list[tuple[str, str]]:
        """(name, text) of each input object: one file, a folder's files, an S3 key or an S3 prefix."""
        if uri.startswith("s3://"):
            bucket, prefix = split_uri(uri)
            s3 = self.client()
            listed = list_objects(s3, uri)  # every page: a prefix may hold more than 1,000 objects
            keys = [o["Key"] for o in listed if not o["Key"].endswith("/")]
            if prefix in keys:
                keys = [prefix]
            if not keys:
                raise BatchError(f"{uri}: no input objects there")
            return [
                (k.rsplit("/", 1)[-1], s3.get_object(Bucket=bucket, Key=k)["Body"].read().decode())
                for k in keys
            ]
        path = Path(uri)
        if path.is_file():
            return [(path.name, path.read_text())]
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
            if files:
                return [(p.name, p.read_text()) for p in files]
        raise BatchError(f"{uri}: no input file or folder of files there")

    def write(self, uri: str, name: str, data: bytes) -> str:
        if uri.startswith("s3://"):
            bucket, prefix = split_uri(uri)
            key = f"{prefix.rstrip('/')}/{name}" if prefix.strip("/") else name
            self.client().put_object(Bucket=bucket, Key=key, Body=data)
            return f"s3://{bucket}/{key}"
        target = Path(uri) / name
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(data)
        tmp.replace(target)
        return str(target)


def run_local(
    handler: Any,
    input_uri: str,
    output_uri: str,
    *,
    content_type: str = contract.CSV,
    accept: str = contract.CSV,
    max_payload_mb: float = 6.0,
    storage: Storage | None = None,
) -> BatchResult:
    storage = storage or Storage()
    result = BatchResult()
    max_bytes = int(max_payload_mb * 1024 * 1024)
    for name, text in storage.inputs(input_uri):
        out = transform(handler, text, content_type, accept, max_bytes, f"{input_uri.rstrip('/')}/{name}")
        result.outputs.append(storage.write(output_uri, f"{name}.out", out))
        result.records += sum(1 for line in text.splitlines() if line.strip())
    return result


# --- in AWS: a batch transform job ---------------------------------------------------------------


def transform_job_request(
    settings: Settings,
    model_name: str,
    input_uri: str,
    output_uri: str,
    *,
    content_type: str = contract.CSV,
    accept: str = contract.CSV,
    kms_key_id: str = "",
    now: float | None = None,
) -> dict[str, Any]:
    """The CreateTransformJob request (pure; valid against botocore's service model)."""
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(time.time() if now is None else now))
    request: dict[str, Any] = {
        "TransformJobName": f"{settings.prefix}-batch-{stamp}"[:63],
        "ModelName": model_name,
        "MaxPayloadInMB": int(settings.serving.max_payload_mb),
        "BatchStrategy": "MultiRecord",
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": input_uri}},
            "ContentType": content_type,
            "SplitType": "Line",
        },
        "TransformOutput": {"S3OutputPath": output_uri, "Accept": accept, "AssembleWith": "Line"},
        "TransformResources": {
            "InstanceType": settings.serving.instance_type,
            "InstanceCount": settings.serving.instance_count,
        },
        "Tags": [
            {"Key": "project", "Value": settings.project},
            {"Key": "environment", "Value": settings.env},
            {"Key": "owner", "Value": settings.owner},
        ],
    }
    if kms_key_id:
        request["TransformOutput"]["KmsKeyId"] = kms_key_id
        request["TransformResources"]["VolumeKmsKeyId"] = kms_key_id
    return request


def model_request(settings: Settings, package_arn: str, account_id: str, model_name: str) -> dict[str, Any]:
    """The CreateModel request that wraps an approved package for a transform job."""
    return {
        "ModelName": model_name,
        "ExecutionRoleArn": f"arn:aws:iam::{account_id}:role/{naming.execution_role(settings)}",
        "Containers": [{"ModelPackageName": package_arn}],
        "EnableNetworkIsolation": True,
    }


def start_transform_job(
    settings: Settings,
    sagemaker: Any,
    account_id: str,
    package_arn: str,
    input_uri: str,
    output_uri: str,
    **kwargs: Any,
) -> str:
    """Create the model (once per package version) and start the transform job; returns its name."""
    model_name = f"{settings.prefix}-batch-v{package_arn.rsplit('/', 1)[-1]}"[:63]
    existing = sagemaker.list_models(NameContains=model_name).get("Models", [])
    if not any(m["ModelName"] == model_name for m in existing):
        sagemaker.create_model(**model_request(settings, package_arn, account_id, model_name))
    request = transform_job_request(settings, model_name, input_uri, output_uri, **kwargs)
    sagemaker.create_transform_job(**request)
    return request["TransformJobName"]
