"""Local deployment: an approved model package from the emulator's registry, served in the background.

`deploy(settings, emulator)` picks the package (the newest Approved one of the environment's model package
group, or the ARN given), downloads its `ModelDataUrl` from the emulator's S3, unpacks it where SageMaker would (`/opt/ml/model` of the endpoint's container folder), and starts the
image's `serve` entry point (`mlops_kit.container`) on `settings.serving.port` as a detached process, with data capture to
the environment's capture bucket at `settings.serving.capture_percent`. A state file (like the
emulator's) records it under the endpoint's name, so `mlops deploy --stop`, a redeploy (which replaces
it) and `mlops invoke` find it from another command. `invoke(url, rows)` is the client for any of them.

The endpoint is an endpoint of the emulator too: its Model, EndpointConfig (data capture included) and
Endpoint are created there through the SageMaker API, as the Pulumi program's Serving component creates
them in AWS, and its server is registered with the emulator (`mlops_kit.emulator_routes`), so an
application's own `boto3.client("sagemaker-runtime").invoke_endpoint(EndpointName=...)` pointed at the
emulator gets the model's answer. Stopping the emulator stops the endpoints it serves.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import tarfile
import time
import urllib.parse
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_kit import lazy, logs, naming
from mlops_kit.s3 import split_uri

if TYPE_CHECKING:
    from mlops_kit.settings import Settings

# The client (`mlops invoke`) sends bytes and reads JSON or CSV: it starts without numpy, which the
# contract's encoders need only for rows given as arrays.
contract = lazy.module("mlops_kit.serving.contract")
packages = lazy.module("mlops_kit.registry.packages")
CSV = "text/csv"
JSON = "application/json"


def _media_type(header: str | None) -> str:
    """`text/CSV; charset=utf-8` -> `text/csv` (as `contract.media_type`)."""
    return (header or "").split(";", 1)[0].strip().lower()


START_TIMEOUT_S = 120.0


class DeployError(RuntimeError):
    """The package cannot be deployed, or the endpoint cannot be found, started or reached."""


@dataclass
class LocalEndpoint:
    name: str
    url: str
    port: int
    pid: int
    package_arn: str
    model_dir: str
    capture_to: str
    log: str
    emulator_url: str = ""  # the emulator that routes InvokeEndpoint to it

    def stop(self) -> None:
        from mlops_kit import emulator_routes
        from mlops_kit.emulator import _alive, _terminate_pid

        if self.emulator_url:
            emulator_routes.unregister(self.emulator_url, self.name)
        if _alive(self.pid):
            _terminate_pid(self.pid, timeout=30)
        path = state_file(self.name)
        with contextlib.suppress(OSError, ValueError):
            if json.loads(path.read_text()).get("pid") == self.pid:
                path.unlink()

    def invoke(self, rows: Any, content_type: str = CSV, accept: str = JSON) -> Any:
        return invoke(self.url, rows, content_type, accept)


def state_dir() -> Path:
    from mlops_kit import paths

    return paths.state_dir() / "endpoints"


def state_file(endpoint_name: str) -> Path:
    return state_dir() / f"{endpoint_name}.json"


# --- which package --------------------------------------------------------------------------------


def newest_approved(sagemaker: Any, group: str) -> str:
    """The newest Approved package version of `group` (`registry.packages`, as a deploy error)."""
    try:
        return packages.newest_approved(sagemaker, group)
    except packages.RegistryError as exc:
        raise DeployError(str(exc)) from None


def package_container(sagemaker: Any, package_arn: str) -> dict[str, Any]:
    try:
        return packages.approved_container(sagemaker, package_arn)
    except packages.RegistryError as exc:
        raise DeployError(str(exc)) from None


def check_image(settings: Settings, package_arn: str, image: str) -> None:
    """A package runs here only if it runs the project's image, as its endpoint would in AWS. Any tag of
    it: the sources on this machine stand in for the tag the package was trained with."""
    from mlops_kit import runtime

    try:
        repository = runtime.parse_image_uri(image)["repo"]
    except runtime.ImageError as exc:
        raise DeployError(f"model package {package_arn}: {exc}") from None
    if repository != naming.image_repository(settings):
        raise DeployError(
            f"model package {package_arn} runs {image}, not the project's image "
            f"({naming.image_repository(settings)}): this machine runs only the project's image"
        )


def download_model(s3: Any, model_data_url: str, target: Path, max_model_mb: float = 0.0) -> Path:
    """Fetch `model.tar.gz` and unpack it into `target/model` (what /opt/ml/model holds in SageMaker),
    once its unpacked size is within `handler.unpack_limit`."""
    bucket, key = split_uri(model_data_url)
    try:
        data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as exc:
        raise DeployError(f"cannot download {model_data_url}: {exc}") from None
    model_dir = target / "model"
    tmp = target / "model.partial"
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp)
    from mlops_kit.serving.handler import ModelLoadError, check_unpacked_size, unpack_limit

    try:  # a gzip bomb is refused before anything is written
        check_unpacked_size(io.BytesIO(data), model_data_url, unpack_limit(len(data), max_model_mb))
    except ModelLoadError as exc:
        raise DeployError(str(exc)) from None
    tmp.mkdir(parents=True)
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
            archive.extractall(tmp, filter="data")
    except BaseException as exc:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)  # a failed unpack leaves nothing behind
        if isinstance(exc, tarfile.TarError):
            raise DeployError(f"{model_data_url} is not a model.tar.gz: {exc}") from None
        raise
    if model_dir.exists():
        import shutil

        shutil.rmtree(model_dir)
    tmp.rename(model_dir)
    return model_dir


# --- the running endpoint ---------------------------------------------------------------------------


def running(endpoint_name: str) -> LocalEndpoint | None:
    """The recorded endpoint if its process is alive and answers /ping; a stale record is removed."""
    from mlops_kit.emulator import _alive

    path = state_file(endpoint_name)
    try:
        endpoint = LocalEndpoint(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    if _alive(endpoint.pid) and ping(endpoint.url):
        return endpoint
    path.unlink(missing_ok=True)
    return None


def stop(settings: Settings) -> LocalEndpoint | None:
    endpoint = running(naming.endpoint(settings))
    if endpoint is not None:
        endpoint.stop()
    state_file(naming.endpoint(settings)).unlink(missing_ok=True)
    return endpoint


def deploy(
    settings: Settings,
    emulator: Any,
    package_arn: str | None = None,
    *,
    port: int | None = None,
    workers: int = 1,
) -> LocalEndpoint:
    """Serve an approved package of `settings`' registry; replaces the environment's running endpoint.

    `emulator`: the emulator, or the environment's clients on it (`clients.clients_for(settings,
    emulator)`: anything with `client()` and `environ()`), so a stage in another emulated account
    serves from its own registry and captures into its own bucket."""
    name = naming.endpoint(settings)
    sagemaker = emulator.client("sagemaker")
    arn = package_arn or newest_approved(sagemaker, naming.model_package_group(settings))
    spec_container = package_container(sagemaker, arn)
    check_image(settings, arn, spec_container.get("Image", ""))
    model_url = spec_container["ModelDataUrl"]
    account = emulator.client("sts").get_caller_identity()["Account"]
    capture_to = f"s3://{naming.bucket(settings, 'capture', account)}/datacapture"
    version = arn.rsplit("/", 1)[-1]
    folder = state_dir() / name / version.replace(":", "-")
    # SageMaker downloads the model, runs the container and delivers its captured requests with the
    # model's role: the endpoint's own, never the caller's
    role = emulator.as_role(f"arn:aws:iam::{account}:role/{naming.serving_role(settings)}")
    # The folder stands for the container's "/": the model is unpacked where SageMaker puts it.
    model_dir = download_model(role.client("s3"), model_url, folder / "opt" / "ml")
    stop(settings)  # the port is the environment's: the old endpoint goes before the new one starts
    ready = folder / "opt" / "ml" / "ready.json"
    ready.unlink(missing_ok=True)
    log = folder / "server.log"
    environment = {
        "SAGEMAKER_BIND_TO_PORT": str(settings.serving.port if port is None else port),
        "SAGEMAKER_MODEL_SERVER_WORKERS": str(workers),
        # What SageMaker's hosting does around the container, done here by the kit's server: loopback
        # only, the payload limit, and data capture to the environment's capture bucket.
        "MLOPS_BIND_HOST": "127.0.0.1",
        "MLOPS_MAX_PAYLOAD_MB": str(settings.serving.max_payload_mb),
        "MLOPS_CAPTURE_TO": capture_to,
        "MLOPS_CAPTURE_PERCENT": str(settings.serving.capture_percent),
        # captured requests wait for their upload in the deployment's own folder (the project's state), so
        # a server of this deployment started after one that died uploads what it left, and nothing of
        # another project's or another test's endpoint of the same name is ever taken over
        "MLOPS_CAPTURE_SPOOL": "/opt/ml/capture-spool",
        "MLOPS_ENDPOINT_NAME": name,
        "MLOPS_MODEL_PACKAGE_ARN": arn,  # what the server reports as mlops_model_info, as in AWS
        "MLOPS_READY_FILE": "/opt/ml/ready.json",
    }
    # the settings' format, as the Pulumi program gives the endpoint in AWS; `mlops --log-format X deploy`
    # overrides it for this deployment
    environment[logs.ENV] = os.environ.get(logs.ENV) or settings.serving.log_format
    if settings.features.online_store:  # requests may leave out features the online store holds
        environment["MLOPS_FEATURE_STORE_ENV"] = settings.env
    # imported here: `mlops invoke` (this module's client) starts without the executor's imports
    from mlops_kit.executor import launch

    spec = launch.Container(
        arguments=["serve"],  # SageMaker runs a hosting image with the argument `serve`
        root=folder,
        environment=environment,
        aws_environment=role.environ(),
    )
    from mlops_kit.settings import project_root

    launcher = launch.launcher_for(project_root(settings.file.parent))
    if isinstance(launcher, launch.DockerLauncher):
        process = launcher.start(spec, log=log, name=name)
    else:
        process = launcher.start(spec, log=log)
    deadline = time.monotonic() + START_TIMEOUT_S
    while not ready.exists():
        if process.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-3:]
            raise DeployError(f"the endpoint exited at start: {' | '.join(tail)} (log: {log})")
        if time.monotonic() > deadline:
            process.kill()
            raise DeployError(f"the endpoint did not start within {START_TIMEOUT_S:.0f}s (log: {log})")
        time.sleep(0.05)
    bound = json.loads(ready.read_text())["port"]
    endpoint = LocalEndpoint(
        name=name,
        url=f"http://127.0.0.1:{bound}",
        port=bound,
        pid=process.pid,
        package_arn=arn,
        model_dir=str(model_dir),
        capture_to=capture_to,
        log=str(log),
        emulator_url=emulator.endpoint_url,
    )
    path = state_file(name)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(endpoint), indent=2))
    tmp.replace(path)
    try:
        register(settings, emulator, arn, endpoint)
    except Exception:
        endpoint.stop()  # an endpoint the emulator does not know is not one
        raise
    return endpoint


def endpoint_resources(
    settings: Settings, account: str, package_arn: str, kms_key_arn: str
) -> dict[str, Any]:
    """CreateModel, CreateEndpointConfig and CreateEndpoint requests for `package_arn`, with the values the
    Pulumi program's Serving component gives them (`mlops_kit.infra.components.serving`)."""
    from mlops_kit.infra.plans import iam
    from mlops_kit.infra.plans.serving import VARIANT
    from mlops_kit.infra.plans.storage import capture_prefix

    name = naming.endpoint(settings)
    version = package_arn.rsplit("/", 1)[-1].replace(":", "-")
    resource = f"{name}-{version}"[:63].rstrip("-")  # one model and config per package version
    role = iam.role_names(
        settings.prefix,
        jobs=naming.execution_role(settings),
        deploy=naming.deploy_role(settings),
        preview=naming.preview_role(settings),
    ).endpoint
    return {
        "model": {
            "ModelName": resource,
            "ExecutionRoleArn": f"arn:aws:iam::{account}:role/{role}",
            "PrimaryContainer": {"ModelPackageName": package_arn},
        },
        "config": {
            "EndpointConfigName": resource,
            "KmsKeyId": kms_key_arn,
            "ProductionVariants": [
                {
                    "VariantName": VARIANT,
                    "ModelName": resource,
                    "InstanceType": settings.serving.instance_type,
                    "InitialInstanceCount": settings.serving.instance_count,
                    "InitialVariantWeight": 1.0,
                }
            ],
            "DataCaptureConfig": {
                "EnableCapture": True,
                "InitialSamplingPercentage": settings.serving.capture_percent,
                "DestinationS3Uri": capture_prefix(naming.bucket(settings, "capture", account)),
                "KmsKeyId": kms_key_arn,
                "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
                "CaptureContentTypeHeader": {
                    "CsvContentTypes": ["text/csv"],
                    "JsonContentTypes": ["application/json"],
                },
            },
        },
        "endpoint": {"EndpointName": name, "EndpointConfigName": resource},
    }


def register(settings: Settings, emulator: Any, package_arn: str, endpoint: LocalEndpoint) -> None:
    """Create the endpoint in the emulator (module docstring) and route its invocations to `endpoint`."""
    from botocore.exceptions import ClientError

    from mlops_kit import emulator_routes

    account = emulator.client("sts").get_caller_identity()["Account"]
    key = emulator.client("kms").describe_key(KeyId=naming.kms_alias(settings))["KeyMetadata"]["Arn"]
    requests = endpoint_resources(settings, account, package_arn, key)
    sagemaker = emulator.client("sagemaker")
    with contextlib.suppress(ClientError):  # the same package deployed again: its model is there
        sagemaker.create_model(**requests["model"])
    with contextlib.suppress(ClientError):
        sagemaker.create_endpoint_config(**requests["config"])
    try:
        current = sagemaker.describe_endpoint(EndpointName=endpoint.name)["EndpointConfigName"]
    except ClientError:
        current = None
    wanted = requests["endpoint"]["EndpointConfigName"]
    if current != wanted:
        if current is not None:
            # AWS updates the endpoint in place (blue/green); moto has no UpdateEndpoint, so the emulator's
            # record is replaced: the same name and config, what DescribeEndpoint shows afterwards
            sagemaker.delete_endpoint(EndpointName=endpoint.name)
        sagemaker.create_endpoint(**requests["endpoint"])
    emulator_routes.register(emulator.endpoint_url, endpoint.name, endpoint.url, endpoint.pid)


# --- the client -----------------------------------------------------------------------------------


def ping(url: str, timeout: float = 2.0) -> bool:
    try:
        status, _, _ = _request(url, "GET", "/ping", None, {}, timeout)
    except OSError:
        return False
    return status == 200


def encode_rows(rows: Any, content_type: str) -> bytes:
    """Rows (lists, a numpy array, a DataFrame, or a body already encoded) as a request body."""
    if isinstance(rows, (bytes, str)):
        return rows.encode() if isinstance(rows, str) else rows
    kind = _media_type(content_type)
    if hasattr(rows, "to_dict") and hasattr(rows, "columns"):
        if kind == JSON:
            return contract.encode_json({"instances": rows.to_dict(orient="records")})
        rows = rows.to_numpy().tolist()
    rows = rows.tolist() if hasattr(rows, "tolist") else list(rows)
    if kind == CSV:
        return ("\n".join(",".join(map(str, row)) for row in rows) + "\n").encode()
    if kind == JSON:
        return contract.encode_json({"instances": rows})
    raise ValueError(f"cannot encode rows as {content_type}; use text/csv or application/json")


def decode_answer(body: bytes, content_type: str) -> Any:
    kind = _media_type(content_type)
    if kind == JSON:
        return json.loads(body)
    if kind == CSV:
        lines = [line.split(",") for line in body.decode().splitlines() if line]
        return [_number(line[0]) if len(line) == 1 else [_number(v) for v in line] for line in lines]
    return body


def _number(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def invoke(url: str, rows: Any, content_type: str = CSV, accept: str = JSON, timeout: float = 60.0) -> Any:
    """POST rows to `<url>/invocations`; returns the decoded predictions, raises with the server's reason."""
    body = encode_rows(rows, content_type)
    status, headers, answer = _request(
        url, "POST", "/invocations", body, {"Content-Type": content_type, "Accept": accept}, timeout
    )
    if status != 200:
        try:
            reason = json.loads(answer)["error"]
        except (ValueError, KeyError, TypeError):
            reason = answer[:200].decode(errors="replace")
        raise DeployError(f"{url}/invocations answered {status}: {reason}")
    return decode_answer(answer, headers.get("content-type", accept))


def _request(
    url: str, method: str, path: str, body: bytes | None, headers: dict[str, str], timeout: float
) -> tuple[int, dict[str, str], bytes]:
    parsed = urllib.parse.urlparse(url)
    factory = http.client.HTTPSConnection if parsed.scheme == "https" else http.client.HTTPConnection
    connection = factory(parsed.hostname or "127.0.0.1", parsed.port, timeout=timeout)
    try:
        connection.request(method, parsed.path.rstrip("/") + path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()
