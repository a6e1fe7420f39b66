"""The local endpoint is an endpoint of the emulator: SageMaker's API describes it, SageMaker Runtime's
InvokeEndpoint reaches its model, and stopping the emulator stops it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from serving_helpers import fitted_model
from test_serving_local import register

from mlops_kit import emulator_routes, naming, settings
from mlops_kit.emulator import Emulator
from mlops_kit.serving import local

CONFIG = settings.load("local")
ENDPOINT = naming.endpoint(CONFIG)


@pytest.fixture(scope="module")
def served(emulator, tmp_path_factory: pytest.TempPathFactory):
    arn = register(emulator, CONFIG, tmp_path_factory.mktemp("served"))
    endpoint = local.deploy(CONFIG, emulator, arn, port=0)
    try:
        yield endpoint
    finally:
        local.stop(CONFIG)


def _application_client(emulator, monkeypatch: pytest.MonkeyPatch):
    """What an application writes against SageMaker, configured only by the environment."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", emulator.endpoint_url)
    return boto3.client(
        "sagemaker-runtime", region_name="us-east-1", config=Config(retries={"max_attempts": 1})
    )


def test_an_applications_own_invoke_endpoint_gets_the_models_answer(
    emulator, served, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = _application_client(emulator, monkeypatch)
    rows = [[1.0, 2.0, 3.0], [-1.0, 0.0, 2.0]]
    answer = runtime.invoke_endpoint(
        EndpointName=ENDPOINT,
        ContentType="text/csv",
        Accept="application/json",
        Body="1.0,2.0,3.0\n-1.0,0.0,2.0\n",
    )
    assert answer["ContentType"].startswith("application/json")
    assert answer["InvokedProductionVariant"] == "AllTraffic"
    got = json.loads(answer["Body"].read())
    got = got.get("predictions", got) if isinstance(got, dict) else got
    assert got == pytest.approx(fitted_model().predict_proba(rows)[:, 1].tolist())
    # the model's refusal is SageMaker's ModelError, with the model's status and reason
    with pytest.raises(runtime.exceptions.ModelError) as refused:
        runtime.invoke_endpoint(EndpointName=ENDPOINT, ContentType="text/csv", Body="1.0,2.0\n")
    assert refused.value.response["OriginalStatusCode"] == 400
    assert "rows have 2 columns" in refused.value.response["OriginalMessage"]


def test_describe_endpoint_shows_it_in_service_with_its_capture(emulator, served) -> None:
    sagemaker = emulator.client("sagemaker")
    assert ENDPOINT in [e["EndpointName"] for e in sagemaker.list_endpoints()["Endpoints"]]
    described = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    assert described["EndpointStatus"] == "InService"
    capture = described["DataCaptureConfig"]
    assert capture["EnableCapture"] and capture["DestinationS3Uri"] == served.capture_to
    config = sagemaker.describe_endpoint_config(EndpointConfigName=described["EndpointConfigName"])
    assert config["DataCaptureConfig"]["InitialSamplingPercentage"] == CONFIG.serving.capture_percent
    assert [o["CaptureMode"] for o in config["DataCaptureConfig"]["CaptureOptions"]] == ["Input", "Output"]
    [variant] = config["ProductionVariants"]
    model = sagemaker.describe_model(ModelName=variant["ModelName"])
    assert model["PrimaryContainer"]["ModelPackageName"] == served.package_arn


def test_an_unknown_endpoint_is_a_validation_error(emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = _application_client(emulator, monkeypatch)
    with pytest.raises(runtime.exceptions.ClientError) as unknown:
        runtime.invoke_endpoint(EndpointName="no-such-endpoint", ContentType="text/csv", Body="1,2,3\n")
    error = unknown.value.response["Error"]
    assert error["Code"] == "ValidationError"
    assert "Endpoint no-such-endpoint of account" in error["Message"] and "not found" in error["Message"]


def test_a_stopped_endpoint_is_no_longer_routed(emulator, tmp_path: Path) -> None:
    server = subprocess.Popen(["sleep", "60"])  # stands for a server: only its stop is watched here
    endpoint = local.LocalEndpoint(
        name="routed-then-stopped",
        url="http://127.0.0.1:9",
        port=9,
        pid=server.pid,
        package_arn="arn",
        model_dir=str(tmp_path),
        capture_to="",
        log=str(tmp_path / "log"),
        emulator_url=emulator.endpoint_url,
    )
    emulator_routes.register(emulator.endpoint_url, endpoint.name, endpoint.url, endpoint.pid)
    assert endpoint.name in emulator_routes.registered(emulator.endpoint_url)
    endpoint.stop()
    assert endpoint.name not in emulator_routes.registered(emulator.endpoint_url)
    assert server.wait(timeout=10) is not None


def test_stopping_the_emulator_stops_the_endpoints_it_serves(tmp_path: Path) -> None:
    with Emulator() as own:
        endpoint = local.deploy(CONFIG, own, register(own, CONFIG, tmp_path), port=0)
        assert emulator_routes._alive(endpoint.pid) and local.ping(endpoint.url)
    # stopped by the emulator as it stopped (the server is this test's child: it is only reaped here)
    assert not emulator_routes._alive(endpoint.pid)
    _, status = os.waitpid(endpoint.pid, 0)
    # asked to stop (SIGTERM), and it did: not killed at the end of the emulator's patience
    assert not (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL), status
    assert local.running(ENDPOINT) is None


def _keys(value):
    """camelCase (the program's inputs) and PascalCase (the API's requests) compared alike."""
    if isinstance(value, dict):
        return {k.replace("_", "").lower(): _keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_keys(v) for v in value]
    return value


def test_the_emulators_endpoint_is_the_one_the_program_declares(tmp_path: Path) -> None:
    """The same capture, variant and model as the Serving component's, for an environment that serves."""
    import shutil

    from mlops_kit import infra_plan

    project = tmp_path / "project"
    shutil.copytree(Path(CONFIG.file).parents[1], project, ignore=shutil.ignore_patterns("__pycache__"))
    arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package/kit-fixture-local-models/3"
    settings_file = project / "environments" / "Pulumi.local.yaml"
    settings_file.write_text(
        settings_file.read_text().replace('model_package_arn: ""', f"model_package_arn: {arn}")
    )
    plan = infra_plan.plan("local", project)
    served = settings.load("local", project)
    key = plan.outputs["kms_key_arn"]
    requests = local.endpoint_resources(served, infra_plan.PLACEHOLDER_ACCOUNT, arn, key)
    [config] = plan.of_type("aws:sagemaker/endpointConfiguration:EndpointConfiguration")
    declared = _keys(config.inputs)
    wanted = _keys(requests["config"])
    assert declared["datacaptureconfig"] == wanted["datacaptureconfig"]
    [variant], [want] = declared["productionvariants"], wanted["productionvariants"]
    assert {k: v for k, v in variant.items() if k != "modelname"} == {
        k: v for k, v in want.items() if k != "modelname"
    }
    assert declared["kmskeyarn"] == wanted["kmskeyid"] == key
    [model] = plan.of_type("aws:sagemaker/model:Model")
    assert model.inputs["primaryContainer"]["modelPackageName"] == arn
    assert requests["model"]["PrimaryContainer"] == {"ModelPackageName": arn}
    [role] = [r for r in plan.of_type("aws:iam/role:Role") if r.inputs["name"].endswith("-serving")]
    assert requests["model"]["ExecutionRoleArn"].endswith(f":role/{role.inputs['name']}")
