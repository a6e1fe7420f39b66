"""The training pipeline definition: deterministic, side-effect free, and valid against botocore."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.validate import ParamValidator

from mlops_kit import container, naming, pipeline, runtime, settings

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
KEY = "arn:aws:kms:us-east-1:123456789012:key/0000"


def _build(env: str) -> tuple[dict[str, Any], pipeline.PipelineContext, str]:
    config = settings.load(env)
    ctx = pipeline.context_for(config, ACCOUNT, runtime.image_tag(ROOT), KEY)
    return pipeline.definition(config, ctx), ctx, pipeline.definition_json(config, ctx)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    # Module scope: one build per environment (the SDK is slow to import); a private definition cache.
    import os

    os.environ["MLOPS_STATE_DIR"] = str(tmp_path_factory.mktemp("definition-cache"))
    return {env: _build(env) for env in ("dev", "prod")}


def test_same_settings_give_the_same_bytes(built) -> None:
    definition, ctx, text = built["dev"]
    config = settings.load("dev")
    assert pipeline.definition_json(config, ctx) == text
    assert json.loads(text) == definition


def _images(value: Any) -> list[str]:
    """Every container image a request names (processing, training, model package containers)."""
    if isinstance(value, list):
        return [i for v in value for i in _images(v)]
    if not isinstance(value, dict):
        return []
    found = [v for k, v in value.items() if k in ("ImageUri", "TrainingImage", "Image")]
    return found + [
        i for k, v in value.items() if k not in ("ImageUri", "TrainingImage", "Image") for i in _images(v)
    ]


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_every_step_and_the_model_run_the_projects_image_only(built, env: str) -> None:
    definition, ctx, text = built[env]
    config = settings.load(env)
    expected = runtime.image_uri(
        ACCOUNT, config.region, naming.image_repository(config), runtime.image_tag(ROOT)
    )
    images = _images(definition["Steps"])
    assert len(images) == 8  # 7 job steps (Partition ... Baseline), and the Register step's model
    assert set(images) == {expected} == {ctx.image_uri}
    # nothing else that looks like an image: no prebuilt framework image is left anywhere
    assert text.count(".dkr.ecr.") == text.count(expected)
    assert "sagemaker-scikit-learn" not in text


def test_steps_start_the_images_entry_points(built) -> None:
    definition, _, _ = built["dev"]
    steps = {s["Name"]: s["Arguments"] for s in _all_steps(definition["Steps"])}
    for name, module in [("Prepare", "pipelines.steps.prepare"), ("Evaluate", "pipelines.steps.evaluate")]:
        assert steps[name]["AppSpecification"]["ContainerEntrypoint"] == container.processing_command(module)
        # nothing to fetch or install at start: no code input, no network for steps that call no AWS API
        assert [i["InputName"] for i in steps[name]["ProcessingInputs"]] != [] and all(
            i["InputName"] != "code" for i in steps[name]["ProcessingInputs"]
        )
        assert steps[name]["NetworkConfig"] == {"EnableNetworkIsolation": True}
    assert steps["Features"]["NetworkConfig"] == {"EnableNetworkIsolation": False}  # the feature store's API
    train = steps["Train"]
    assert train["Environment"] == {container.TRAIN_MODULE_VARIABLE: "pipelines.steps.train"}
    assert train["EnableNetworkIsolation"] is True
    assert not any(k.startswith("sagemaker_") for k in train["HyperParameters"])


def test_building_calls_no_aws_api(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import botocore.client

    def refuse(self, operation_name, api_params):
        raise AssertionError(f"building the definition called {operation_name}")

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", refuse)
    monkeypatch.setenv("MLOPS_STATE_DIR", str(tmp_path))  # no cached definition: really build it
    definition, _, _ = _build("staging")
    assert [s["Name"] for s in definition["Steps"]] == [
        "Partition",
        "Prepare",
        "Features",
        "Train",
        "Evaluate",
        "Profile",
        "Baseline",
        "CheckGates",
    ]


def test_the_shape_of_the_pipeline(built) -> None:
    definition, ctx, _ = built["dev"]
    steps = {s["Name"]: s for s in definition["Steps"]}
    assert [(s["Name"], s["Type"]) for s in definition["Steps"]] == [
        ("Partition", "Processing"), ("Prepare", "Processing"), ("Features", "Processing"),
        ("Train", "Training"), ("Evaluate", "Processing"), ("Profile", "Processing"),
        ("Baseline", "Processing"), ("CheckGates", "Condition"),
    ]  # fmt: skip
    check = steps["CheckGates"]["Arguments"]
    assert [s["Name"] for s in check["IfSteps"]] == ["Register"]
    assert [s["Type"] for s in check["ElseSteps"]] == ["Fail"]
    assert {p["Name"] for p in definition["Parameters"]} == {
        "InputData", "ProcessingInstanceType", "TrainingInstanceType", "ModelApprovalStatus",
    }  # fmt: skip
    assert steps["Evaluate"]["PropertyFiles"][0]["FilePath"] == "evaluation.json"
    # The code is in the image, named by the hash of its sources: the lineage records that hash.
    register = steps["CheckGates"]["Arguments"]["IfSteps"][0]["Arguments"]
    assert register["CustomerMetadataProperties"]["lineage:code"] == ctx.image_tag == runtime.image_tag(ROOT)


def test_gates_come_from_the_settings(built) -> None:
    for env in ("dev", "prod"):
        definition, _, _ = built[env]
        gates = settings.load(env).promotion.gates
        check = next(s for s in definition["Steps"] if s["Name"] == "CheckGates")["Arguments"]
        bounds = {
            (c["LeftValue"]["Std:JsonGet"]["Path"].removeprefix("metrics."), c["Type"]): c["RightValue"]
            for c in check["Conditions"]
        }
        expected = {(n, "GreaterThanOrEqualTo"): g.min for n, g in gates.items() if g.min is not None}
        expected |= {(n, "LessThanOrEqualTo"): g.max for n, g in gates.items() if g.max is not None}
        assert bounds == expected and len(bounds) == len(check["Conditions"])
        message = json.dumps(check["ElseSteps"][0]["Arguments"]["ErrorMessage"])
        for name, gate in gates.items():
            assert f"{name}=" in message
            assert (gate.min is None or f"(min {gate.min})" in message) and (
                gate.max is None or f"(max {gate.max})" in message
            )


def test_every_declared_metric_is_registered(built) -> None:
    from pipelines import USE_CASE

    definition, _, _ = built["dev"]
    check = next(s for s in definition["Steps"] if s["Name"] == "CheckGates")["Arguments"]
    metadata = check["IfSteps"][0]["Arguments"]["CustomerMetadataProperties"]
    assert {k.removeprefix("metric:") for k in metadata if k.startswith("metric:")} == set(
        USE_CASE.metric_names
    )
    assert metadata["lineage:label"] == USE_CASE.label


def test_the_environment_name_only_reaches_names(built, tmp_path: Path) -> None:
    """Dev's settings under another name give dev's definition but for the names: no code branches on it."""
    dev, _, _ = built["dev"]
    renamed = tmp_path / "Pulumi.qa.yaml"
    renamed.write_text((ROOT / "environments" / "Pulumi.dev.yaml").read_text())
    config = settings.load_file(renamed)
    config = dataclasses.replace(
        config, file=ROOT / "environments" / "Pulumi.dev.yaml"
    )  # same factory lookup
    ctx = pipeline.context_for(config, ACCOUNT, runtime.image_tag(ROOT), KEY)
    qa = json.dumps(pipeline.definition(config, ctx))
    assert qa != json.dumps(dev)
    assert (
        json.loads(
            qa.replace("mlops-kit-qa", "mlops-kit-dev").replace(
                '"lineage:environment": "qa"', '"lineage:environment": "dev"'
            )
        )
        == dev
    )


def test_prod_and_dev_differ_where_their_settings_differ(built) -> None:
    dev, _, _ = built["dev"]
    prod, _, _ = built["prod"]
    train = lambda d: next(s for s in d["Steps"] if s["Name"] == "Train")["Arguments"]  # noqa: E731
    assert train(prod)["HyperParameters"]["tuning_trials"] == str(
        settings.load("prod").training.tuning_trials
    )
    assert train(dev)["HyperParameters"]["tuning_trials"] == str(settings.load("dev").training.tuning_trials)


# --- every request is valid against botocore's SageMaker service model --------------------------------

OPERATIONS = {
    "Processing": ("CreateProcessingJob", {"ProcessingJobName": "job"}),
    "Training": ("CreateTrainingJob", {"TrainingJobName": "job"}),
    "RegisterModel": ("CreateModelPackage", {}),
}


def _substitute(value: Any) -> Any:
    """Replace pipeline expressions with a value of the right kind, as the service does at run time."""
    if isinstance(value, list):
        return [_substitute(v) for v in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Get"}:
        ref = value["Get"]
        if ref.endswith("InstanceType"):
            return "ml.m5.large"
        if ref == "Parameters.ModelApprovalStatus":
            return "PendingManualApproval"
        return "s3://bucket/substituted" if ("S3" in ref or "Input" in ref) else "substituted"
    if set(value) in ({"Std:Join"}, {"Std:JsonGet"}):
        return "s3://bucket/joined"
    return {k: _substitute(v) for k, v in value.items()}


def _all_steps(steps: list[dict[str, Any]]):
    for step in steps:
        yield step
        if step["Type"] == "Condition":
            yield from _all_steps(step["Arguments"]["IfSteps"] + step["Arguments"]["ElseSteps"])


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_every_step_is_a_valid_api_request(built, env: str) -> None:
    definition, _, _ = built[env]
    model = botocore.session.get_session().get_service_model("sagemaker")
    checked = []
    for step in _all_steps(definition["Steps"]):
        if step["Type"] not in OPERATIONS:
            continue
        operation, extra = OPERATIONS[step["Type"]]
        request = {**_substitute(step["Arguments"]), **extra}
        report = ParamValidator().validate(request, model.operation_model(operation).input_shape)
        assert not report.has_errors(), f"{step['Name']}: {report.generate_report()}"
        checked.append(step["Name"])
    assert checked == [
        "Partition", "Prepare", "Features", "Train", "Evaluate", "Profile", "Baseline", "Register",
    ]  # fmt: skip


SHARDED = {"Prepare": "raw", "Features": "records", "Profile": "train"}  # step: its data input


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_the_sharded_steps_deal_their_data_input_out_by_s3_key(built, env: str) -> None:
    """Prepare, Features and Profile run on the settings' instance count with their data input
    ShardedByS3Key (a value of botocore's enum), every other input and step FullyReplicated on one."""
    definition, _, _ = built[env]
    count = settings.load(env).training.processing_instance_count
    shape = botocore.session.get_session().get_service_model("sagemaker").shape_for("ProcessingS3Input")
    allowed = shape.members["S3DataDistributionType"].enum
    for step in _all_steps(definition["Steps"]):
        if step["Type"] != "Processing":
            continue
        arguments = step["Arguments"]
        distribution = {
            i["InputName"]: i["S3Input"]["S3DataDistributionType"] for i in arguments["ProcessingInputs"]
        }
        assert set(distribution.values()) <= set(allowed)
        sharded = SHARDED.get(step["Name"])
        assert {n for n, d in distribution.items() if d == "ShardedByS3Key"} == (
            {sharded} if sharded else set()
        )
        instances = arguments["ProcessingResources"]["ClusterConfig"]["InstanceCount"]
        assert instances == (count if sharded else 1), step["Name"]


def test_prod_runs_its_sharded_steps_on_two_instances(built) -> None:
    assert settings.load("prod").training.processing_instance_count == 2
    prod, _, _ = built["prod"]
    prepare = next(s for s in prod["Steps"] if s["Name"] == "Prepare")["Arguments"]
    assert prepare["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == 2


def test_botocore_knows_the_distribution_types_the_definition_uses() -> None:
    shape = botocore.session.get_session().get_service_model("sagemaker").shape_for("ProcessingS3Input")
    allowed = shape.members["S3DataDistributionType"].enum
    assert {"ShardedByS3Key", "FullyReplicated"} <= set(allowed)
    assert "ShardedByEntity" not in allowed


def test_the_validator_would_catch_a_bad_request(built) -> None:
    definition, _, _ = built["dev"]
    model = botocore.session.get_session().get_service_model("sagemaker")
    train = _substitute(next(s for s in definition["Steps"] if s["Name"] == "Train")["Arguments"])
    train["ResourceConfig"]["InstanceCount"] = "two"
    report = ParamValidator().validate(
        {**train, "TrainingJobName": "j"}, model.operation_model("CreateTrainingJob").input_shape
    )
    assert report.has_errors()


def test_the_cli_prints_a_definition_that_runs_only_the_projects_image(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`mlops pipeline definition --env dev --account-id 123456789012`, as the issue reads it."""
    from mlops_kit.cli import main

    monkeypatch.setenv("MLOPS_STATE_DIR", str(tmp_path))
    assert main(["pipeline", "definition", "--env", "dev", "--account-id", ACCOUNT]) == 0
    printed = json.loads(capsys.readouterr().out)
    config = settings.load("dev")
    expected = runtime.image_uri(
        ACCOUNT, config.region, naming.image_repository(config), runtime.image_tag(ROOT)
    )
    assert set(_images(printed["Steps"])) == {expected}


def test_prepare_gets_the_future_tolerance_of_the_settings(built) -> None:
    from pipelines.schema import EVENT_TIME, RAW_SCHEMA

    definition, _, _ = built["dev"]
    prepare = next(s for s in definition["Steps"] if s["Name"] == "Prepare")["Arguments"]
    arguments = prepare["AppSpecification"]["ContainerArguments"]
    given = arguments[arguments.index("--future-tolerance-hours") + 1]
    assert float(given) == settings.load("dev").training.future_tolerance_hours
    assert RAW_SCHEMA[EVENT_TIME].not_future  # event times from a broken clock are quarantined
