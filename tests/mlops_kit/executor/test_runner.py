"""The executor on small hand-written definitions: real subprocesses, real S3 in the emulator."""

from __future__ import annotations

import io
import json
import tarfile
import uuid
from pathlib import Path
from typing import Any

import pytest

from mlops_kit import container, local_platform, naming, pipeline, runtime, settings
from mlops_kit.executor import PipelineFailed, launch, runner

ENV = settings.load("local")
PROJECT = Path(__file__).resolve().parents[2] / "project"  # the kit's test project, ENV's


@pytest.fixture(scope="module")
def platform(emulator):
    return local_platform.ensure(ENV, emulator.client)


@pytest.fixture()
def ctx(platform) -> pipeline.PipelineContext:
    return pipeline.PipelineContext(
        role_arn="arn:aws:iam::123456789012:role/test",
        region="us-east-1",
        account_id=platform.account_id,
        buckets=platform.buckets,
        model_package_group=platform.model_package_group,
        image_uri=runtime.image_uri(
            platform.account_id, "us-east-1", naming.image_repository(ENV), runtime.image_tag(PROJECT)
        ),
    )


def _out(ctx: pipeline.PipelineContext, step: str, name: str) -> dict[str, Any]:
    bucket = ctx.buckets["artifacts"]
    return {
        "Std:Join": {
            "On": "/",
            "Values": [f"s3://{bucket}/tests", {"Get": "Execution.PipelineExecutionId"}, step, name],
        }
    }


def processing(
    ctx,
    name: str,
    script: str,
    *,
    inputs: dict | None = None,
    outputs=("out",),
    args=(),
    cache=True,
    files=(),
):
    step: dict[str, Any] = {
        "Name": name,
        "Type": "Processing",
        "Arguments": {
            "ProcessingResources": {
                "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}
            },
            "AppSpecification": {
                "ImageUri": ctx.image_uri,
                "ContainerEntrypoint": ["python3", "-c", script],
                "ContainerArguments": list(args),
            },
            "RoleArn": ctx.role_arn,
            "ProcessingInputs": [
                {
                    "InputName": key,
                    "S3Input": {
                        "S3Uri": uri,
                        "LocalPath": f"/opt/ml/processing/input/{key}",
                        "S3DataType": "S3Prefix",
                        "S3InputMode": "File",
                    },
                }
                for key, uri in (inputs or {}).items()
            ],
            "ProcessingOutputConfig": {
                "Outputs": [
                    {
                        "OutputName": o,
                        "S3Output": {
                            "S3Uri": _out(ctx, name, o),
                            "LocalPath": f"/opt/ml/processing/{o}",
                            "S3UploadMode": "EndOfJob",
                        },
                    }
                    for o in outputs
                ]
            },
        },
    }
    if cache:
        step["CacheConfig"] = {"Enabled": True, "ExpireAfter": "P30D"}
    if files:
        step["PropertyFiles"] = [
            {"PropertyFileName": f, "OutputName": "out", "FilePath": f"{f}.json"} for f in files
        ]
    return step


# A writes {"value": N} where N comes from its input file; B doubles it; the condition checks B's value.
WRITE = """
import json, pathlib, sys
source, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
n = json.loads(next(source.rglob('*.json')).read_text())['n']
(out / 'value.json').write_text(json.dumps({'value': n, 'tag': '%s'}))
"""
DOUBLE = """
import json, os, pathlib, sys
source, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
value = json.loads(next(source.rglob('value.json')).read_text())['value']
(out / 'partial.txt').write_text('half-written')
if os.path.exists(sys.argv[3]):
    sys.exit('B refuses to run: ' + sys.argv[3] + ' exists')
(out / 'Doubled.json').write_text(json.dumps({'value': 2 * value}))
"""


def _definition(ctx, input_uri: str, marker: Path, tag: str, minimum: float = 0) -> dict[str, Any]:
    a = processing(
        ctx,
        "A",
        WRITE % tag,
        inputs={"n": {"Get": "Parameters.Numbers"}},
        args=["/opt/ml/processing/input/n", "/opt/ml/processing/out"],
    )
    b = processing(
        ctx,
        "B",
        DOUBLE,
        inputs={"v": {"Get": "Steps.A.ProcessingOutputConfig.Outputs['out'].S3Output.S3Uri"}},
        args=["/opt/ml/processing/input/v", "/opt/ml/processing/out", str(marker)],
        files=("Doubled",),
    )
    doubled = {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.B.PropertyFiles.Doubled"}, "Path": "value"}}
    check = {
        "Name": "Check",
        "Type": "Condition",
        "Arguments": {
            "Conditions": [{"Type": "GreaterThanOrEqualTo", "LeftValue": doubled, "RightValue": minimum}],
            "IfSteps": [
                processing(
                    ctx,
                    "C",
                    "import sys; open(sys.argv[1] + '/done.txt', 'w').write('ok')",
                    args=["/opt/ml/processing/out"],
                    cache=False,
                )
            ],
            "ElseSteps": [
                {
                    "Name": "TooSmall",
                    "Type": "Fail",
                    "Arguments": {
                        "ErrorMessage": {
                            "Std:Join": {"On": "", "Values": ["value ", doubled, f" is below {minimum}"]}
                        }
                    },
                }
            ],
        },
    }
    return {
        "Version": "2020-12-01",
        "Parameters": [{"Name": "Numbers", "Type": "String", "DefaultValue": input_uri}],
        "Steps": [check, b, a],
    }


@pytest.fixture()
def numbers(emulator, ctx) -> str:
    prefix = f"inputs/{uuid.uuid4().hex}/"
    emulator.client("s3").put_object(Bucket=ctx.buckets["raw"], Key=f"{prefix}n.json", Body=b'{"n": 21}')
    return f"s3://{ctx.buckets['raw']}/{prefix}"


def _keys(emulator, uri: str) -> list[str]:
    bucket, prefix = uri[5:].split("/", 1)
    listed = emulator.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"].rsplit("/", 1)[-1] for o in listed.get("Contents", []))


def test_runs_steps_in_order_and_follows_the_condition(emulator, ctx, numbers, tmp_path) -> None:
    definition = _definition(ctx, numbers, tmp_path / "absent", uuid.uuid4().hex)
    record = runner.execute(definition, settings=ENV, emulator=emulator, ctx=ctx)
    assert record.status == "Succeeded"
    assert [(s.name, s.status) for s in record.steps] == [
        ("A", "Succeeded"), ("B", "Succeeded"), ("Check", "Succeeded"), ("TooSmall", "Skipped"), ("C", "Succeeded"),
    ]  # fmt: skip
    assert record.step("B").property_files == {"Doubled": {"value": 42}}
    b_out = record.step("B").properties["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    assert record.execution_id in b_out
    assert _keys(emulator, b_out) == ["Doubled.json", "partial.txt"]
    assert Path(record.step("A").log).is_file()
    assert runner.load(record.execution_id).status == "Succeeded"  # the record is on disk
    # The job was recorded in the emulator too, under the execution's name.
    described = emulator.client("sagemaker").describe_processing_job(
        ProcessingJobName=f"{record.pipeline}-A-{record.execution_id}"
    )
    assert described["ProcessingJobName"].endswith(record.execution_id)


def test_a_fail_step_names_the_value(emulator, ctx, numbers, tmp_path) -> None:
    definition = _definition(ctx, numbers, tmp_path / "absent", uuid.uuid4().hex, minimum=100)
    with pytest.raises(PipelineFailed, match="value 42 is below 100") as failed:
        runner.execute(definition, settings=ENV, emulator=emulator, ctx=ctx)
    assert failed.value.record.status == "Failed"
    assert [s.name for s in failed.value.record.steps if s.status == "Skipped"] == ["C"]


def test_a_crashed_step_leaves_no_output_and_the_run_resumes_from_it(
    emulator, ctx, numbers, tmp_path
) -> None:
    marker = tmp_path / "broken"
    marker.write_text("")
    definition = _definition(ctx, numbers, marker, uuid.uuid4().hex)
    with pytest.raises(PipelineFailed, match="step B failed: exit code 1: B refuses to run") as failed:
        runner.execute(definition, settings=ENV, emulator=emulator, ctx=ctx)
    record = failed.value.record
    b_uri = ex_uri(ctx, record.execution_id, "B")
    assert _keys(emulator, b_uri) == []  # not even the half-written file
    assert "B refuses to run" in Path(record.step("B").log).read_text()

    marker.unlink()
    resumed = runner.execute(definition, settings=ENV, emulator=emulator, ctx=ctx, resume=record.execution_id)
    assert resumed.execution_id == record.execution_id
    assert [(s.name, s.status) for s in resumed.steps][:2] == [("A", "Reused"), ("B", "Succeeded")]
    assert _keys(emulator, b_uri) == ["Doubled.json", "partial.txt"]
    with pytest.raises(ValueError, match="nothing to resume"):
        runner.execute(definition, settings=ENV, emulator=emulator, ctx=ctx, resume=record.execution_id)


def ex_uri(ctx, execution_id: str, step: str) -> str:
    return f"s3://{ctx.buckets['artifacts']}/tests/{execution_id}/{step}/out"


def test_unchanged_steps_come_from_the_cache(emulator, ctx, numbers, tmp_path) -> None:
    definition = _definition(ctx, numbers, tmp_path / "absent", uuid.uuid4().hex)
    first = runner.execute(definition, settings=ENV, emulator=emulator, ctx=ctx)
    second = runner.execute(definition, settings=ENV, emulator=emulator, ctx=ctx)
    assert [(s.name, s.status) for s in second.steps if s.name in "AB"] == [("A", "Cached"), ("B", "Cached")]
    assert second.step("B").property_files == first.step("B").property_files
    assert second.step("C").status == "Succeeded"  # C has no cache config
    fresh = runner.execute(definition, settings=ENV, emulator=emulator, ctx=ctx, use_cache=False)
    assert fresh.step("A").status == "Succeeded"


def test_new_input_data_misses_the_cache(emulator, ctx, numbers, tmp_path) -> None:
    definition = _definition(ctx, numbers, tmp_path / "absent", uuid.uuid4().hex)
    first = runner.execute(definition, settings=ENV, emulator=emulator, ctx=ctx)
    other = f"s3://{ctx.buckets['raw']}/inputs/{uuid.uuid4().hex}/"
    emulator.client("s3").put_object(
        Bucket=ctx.buckets["raw"],
        Key=other[len(f"s3://{ctx.buckets['raw']}/") :] + "n.json",
        Body=b'{"n": 5}',
    )
    again = runner.execute(
        definition, settings=ENV, emulator=emulator, ctx=ctx, parameters={"Numbers": other}
    )
    assert again.step("A").status == "Succeeded"
    assert again.step("B").property_files == {"Doubled": {"value": 10}}
    assert again.input_fingerprint != first.input_fingerprint
    assert {r.execution_id for r in runner.list_runs()} >= {first.execution_id, again.execution_id}


def test_an_invalid_request_is_refused_by_the_service_model(emulator, ctx, numbers, tmp_path) -> None:
    definition = _definition(ctx, numbers, tmp_path / "absent", uuid.uuid4().hex)
    step_a = next(s for s in definition["Steps"] if s["Name"] == "A")
    step_a["Arguments"]["ProcessingResources"]["ClusterConfig"]["InstanceCount"] = "one"
    with pytest.raises(ValueError, match="(?s)create_processing_job request is not valid.*InstanceCount"):
        runner.execute(definition, settings=ENV, emulator=emulator, ctx=ctx)


def _training(ctx, tag: str, **hyperparameters: str) -> dict[str, Any]:
    bucket = ctx.buckets["artifacts"]
    return {
        "Name": "Fit",
        "Type": "Training",
        "Arguments": {
            "AlgorithmSpecification": {"TrainingImage": ctx.image_uri, "TrainingInputMode": "File"},
            "HyperParameters": {"max_iter": "50", **hyperparameters},
            "Environment": {container.TRAIN_MODULE_VARIABLE: "kit_fixture.probe_train"},
            "InputDataConfig": [
                {
                    "ChannelName": "train",
                    "DataSource": {
                        "S3DataSource": {
                            "S3DataType": "S3Prefix",
                            "S3Uri": f"s3://{bucket}/data/{tag}/",
                            "S3DataDistributionType": "FullyReplicated",
                        }
                    },
                }
            ],
            "OutputDataConfig": {
                "S3OutputPath": {
                    "Std:Join": {
                        "On": "/",
                        "Values": [f"s3://{bucket}/fits", {"Get": "Execution.PipelineExecutionId"}],
                    }
                }
            },
            "ResourceConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 10},
            "RoleArn": ctx.role_arn,
            "StoppingCondition": {"MaxRuntimeInSeconds": 600},
            "EnableNetworkIsolation": True,
        },
    }


def test_training_runs_the_images_train_entry_point(emulator, ctx) -> None:
    s3 = emulator.client("s3")
    bucket = ctx.buckets["artifacts"]
    tag = uuid.uuid4().hex
    s3.put_object(Bucket=bucket, Key=f"data/{tag}/data.txt", Body=b"rows")
    record = runner.execute(
        {"Version": "2020-12-01", "Parameters": [], "Steps": [_training(ctx, tag)]},
        settings=ENV,
        emulator=emulator,
        ctx=ctx,
    )
    artifact = record.artifacts["model"]
    job = f"{record.pipeline}-Fit-{record.execution_id}"
    assert artifact.endswith(f"/fits/{record.execution_id}/{job}/output/model.tar.gz")
    b, key = artifact[5:].split("/", 1)
    with tarfile.open(fileobj=io.BytesIO(s3.get_object(Bucket=b, Key=key)["Body"].read())) as tar:
        model = json.load(tar.extractfile("model.json"))
    # script mode's contract, from the image's `train`; the job's name as SageMaker sets it; and with
    # network isolation the job's AWS calls go nowhere
    assert model == {
        "data": "rows",
        "args": {"--max_iter": "50"},
        "hps": {"max_iter": 50},
        "job": job,
        "aws": launch.NO_NETWORK_ENDPOINT,
    }
    assert Path(record.step("Fit").log).read_text().startswith("$ python3 -m mlops_kit.container train")


def test_a_failed_training_job_reports_its_failure_file(emulator, ctx) -> None:
    s3 = emulator.client("s3")
    tag = uuid.uuid4().hex
    s3.put_object(Bucket=ctx.buckets["artifacts"], Key=f"data/{tag}/data.txt", Body=b"rows")
    definition = {"Version": "2020-12-01", "Parameters": [], "Steps": [_training(ctx, tag, fail="true")]}
    with pytest.raises(PipelineFailed, match="probe_train exited with code 1: probe_train: asked to fail"):
        runner.execute(definition, settings=ENV, emulator=emulator, ctx=ctx)


@pytest.mark.parametrize("kind", ["Processing", "Training"])
def test_only_the_projects_image_runs_here(emulator, ctx, numbers, tmp_path, kind: str) -> None:
    prebuilt = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.4-2-cpu-py3"
    if kind == "Processing":
        definition = _definition(ctx, numbers, tmp_path / "absent", uuid.uuid4().hex)
        step = next(s for s in definition["Steps"] if s["Name"] == "A")
        step["Arguments"]["AppSpecification"]["ImageUri"] = prebuilt
        first = "A"
    else:
        step = _training(ctx, uuid.uuid4().hex)
        step["Arguments"]["AlgorithmSpecification"]["TrainingImage"] = prebuilt
        definition = {"Version": "2020-12-01", "Parameters": [], "Steps": [step]}
        first = "Fit"
    with pytest.raises(PipelineFailed, match=f"step {first} failed: the request runs image '{prebuilt}'"):
        runner.execute(definition, settings=ENV, emulator=emulator, ctx=ctx)


# Each of two independent steps leaves its mark and waits for the other's: only steps that run at the
# same time both finish.
RENDEZVOUS = """
import pathlib, sys, time
folder, me, other, patience = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
(folder / me).write_text('here')
deadline = time.monotonic() + patience
while not (folder / other).exists():
    if time.monotonic() > deadline:
        sys.exit(me + ' waited ' + str(patience) + 's for ' + other + ', which never started')
    time.sleep(0.05)
"""


def _rendezvous(ctx, folder: Path, patience: float, parallelism: int | None = None) -> dict[str, Any]:
    steps = [
        processing(ctx, me, RENDEZVOUS, args=[str(folder), me, other, str(patience)], cache=False, outputs=())
        for me, other in (("Left", "Right"), ("Right", "Left"))
    ]
    definition: dict[str, Any] = {"Version": "2020-12-01", "Parameters": [], "Steps": steps}
    if parallelism is not None:
        definition["ParallelismConfiguration"] = {"MaxParallelExecutionSteps": parallelism}
    return definition


def test_steps_that_do_not_depend_on_each_other_run_at_the_same_time(emulator, ctx, tmp_path) -> None:
    """As in SageMaker Pipelines: a step starts once the steps it depends on are done, not after the
    steps listed before it; the record keeps the definition's order."""
    record = runner.execute(_rendezvous(ctx, tmp_path, patience=60), settings=ENV, emulator=emulator, ctx=ctx)
    assert [(s.name, s.status) for s in record.steps] == [("Left", "Succeeded"), ("Right", "Succeeded")]


def test_the_definitions_parallelism_bounds_the_steps_at_once(emulator, ctx, tmp_path) -> None:
    """`MaxParallelExecutionSteps: 1` runs one step at a time: Left waits for Right in vain, fails, and
    Right never starts."""
    definition = _rendezvous(ctx, tmp_path, patience=2, parallelism=1)
    with pytest.raises(PipelineFailed, match="Left waited 2.0s for Right, which never started") as failed:
        runner.execute(definition, settings=ENV, emulator=emulator, ctx=ctx)
    assert [(s.name, s.status) for s in failed.value.record.steps] == [("Left", "Failed")]
