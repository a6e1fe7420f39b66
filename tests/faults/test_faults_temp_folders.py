"""Every temporary folder the kit makes is gone when the work ends, whether it succeeded or failed: the
executor's container roots, champion/challenger scoring, a local deploy's download, the model archive a
server unpacks, a capture buffer's own spool, the emulator's start-up folder.

Each test points the temp folder (`tempfile.tempdir` here, `TMPDIR` for child processes) at an empty
folder of its own and checks it is empty again afterwards.
"""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest
from registry_fixtures import World
from serving_helpers import pack

from mlops_kit import emulator as emu
from mlops_kit import local_platform, naming, runtime, settings
from mlops_kit.executor import jobs, launch
from mlops_kit.registry import rescore
from mlops_kit.registry.gates import Package
from mlops_kit.serving import capture
from mlops_kit.serving.local import DeployError, download_model

ENV = settings.load("local")
PROJECT = Path(__file__).resolve().parents[1] / "project"


@pytest.fixture
def temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "TMPDIR"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    monkeypatch.setenv("TMPDIR", str(folder))
    return folder


def _left(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _processing_request(image: str, script: str, output: str) -> dict:
    return {
        "ProcessingResources": {
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}
        },
        "AppSpecification": {
            "ImageUri": image,
            "ContainerEntrypoint": ["python3", "-c", script],
            "ContainerArguments": ["/opt/ml/processing/out"],
        },
        "RoleArn": "arn:aws:iam::123456789012:role/test",
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "out",
                    "S3Output": {
                        "S3Uri": output,
                        "LocalPath": "/opt/ml/processing/out",
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ]
        },
    }


@pytest.mark.fault("temp folders: processing and training jobs that succeed and that fail")
def test_the_executors_container_roots_are_removed(emulator, temp: Path, tmp_path: Path) -> None:
    platform = local_platform.ensure(ENV, emulator.client)
    image = runtime.image_uri(
        platform.account_id, "us-east-1", naming.image_repository(ENV), runtime.image_tag(PROJECT)
    )
    env = jobs.JobEnv(
        client=emulator.client,
        aws_env=emulator.environ(),
        log_path=tmp_path / "job.log",
        launcher=launch.launcher_for(PROJECT),
        image_uri=image,
    )
    out = f"s3://{platform.buckets['artifacts']}/temp-folders/out"
    ok = "import sys; open(sys.argv[1] + '/x.txt', 'w').write('x')"
    jobs.run_processing("Ok", "temp-ok", _processing_request(image, ok, out), env)
    assert _left(temp) == []
    with pytest.raises(jobs.StepFailed, match="exit code 3"):
        jobs.run_processing("Bad", "temp-bad", _processing_request(image, "raise SystemExit(3)", out), env)
    assert _left(temp) == []
    training = {
        "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
        "RoleArn": "arn:aws:iam::123456789012:role/test",
        "OutputDataConfig": {"S3OutputPath": out},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        "Environment": {"MLOPS_TRAIN_MODULE": "no_such_module_anywhere"},
    }
    with pytest.raises(jobs.StepFailed):
        jobs.run_training("Fit", "temp-fit", training, env)
    assert _left(temp) == []


@pytest.mark.fault("temp folders: champion/challenger scoring that succeeds and that fails")
def test_rescoring_removes_its_folder(world: World, temp: Path) -> None:
    test_uri = world.test_set()
    sagemaker = world.client("sagemaker")
    candidate = Package.from_description(world.describe(world.package(lineage={"test": test_uri})))
    champion = Package.from_description(world.describe(world.package(column="weak")))
    measured = rescore.same_data(world.settings, world.client("s3"), sagemaker, candidate, champion)
    assert measured is not None and measured.rows > 0
    assert _left(temp) == []
    bucket, key = champion_url = world.describe(champion.arn)["InferenceSpecification"]["Containers"][0][
        "ModelDataUrl"
    ][5:].split("/", 1)
    assert champion_url
    world.client("s3").put_object(Bucket=bucket, Key=key, Body=b"not a tar archive")
    with pytest.raises(rescore.RescoreError):
        rescore.same_data(world.settings, world.client("s3"), sagemaker, candidate, champion)
    assert _left(temp) == []


@pytest.mark.fault("temp folders: a local deploy's download that succeeds, is a bomb, is not a tar")
def test_a_local_deploys_download_leaves_nothing_half_unpacked(
    emulator, model_dir: Path, temp: Path, tmp_path: Path
) -> None:
    s3 = emulator.client("s3")
    bucket = local_platform.ensure(ENV, emulator.client).buckets["artifacts"]
    s3.put_object(
        Bucket=bucket, Key="temp/model.tar.gz", Body=pack(model_dir, tmp_path / "m.tar.gz").read_bytes()
    )
    target = tmp_path / "endpoint"
    assert (download_model(s3, f"s3://{bucket}/temp/model.tar.gz", target) / "model.joblib").is_file()
    bomb = io.BytesIO()
    with tarfile.open(fileobj=bomb, mode="w:gz") as archive:
        zeros = tarfile.TarInfo("weights.bin")
        zeros.size = 3 * 2**20
        archive.addfile(zeros, io.BytesIO(bytes(zeros.size)))
    s3.put_object(Bucket=bucket, Key="temp/bomb.tar.gz", Body=bomb.getvalue())
    with pytest.raises(DeployError, match="unpacks to more than"):
        download_model(s3, f"s3://{bucket}/temp/bomb.tar.gz", target, max_model_mb=2)
    escaping = io.BytesIO()  # extraction fails part-way: a good file first, then a path out of the folder
    with tarfile.open(fileobj=escaping, mode="w:gz") as archive:
        archive.add(model_dir / "model.joblib", arcname="model.joblib")
        outside = tarfile.TarInfo("../escaped.txt")
        outside.size = 2
        archive.addfile(outside, io.BytesIO(b"hi"))
    s3.put_object(Bucket=bucket, Key="temp/escaping.tar.gz", Body=escaping.getvalue())
    with pytest.raises(DeployError, match="is not a model.tar.gz"):
        download_model(s3, f"s3://{bucket}/temp/escaping.tar.gz", target)
    assert sorted(p.name for p in target.iterdir()) == ["model"]  # the last good model, no model.partial
    assert _left(temp) == []


UNPACK = """
import sys
from pathlib import Path
from mlops_kit.serving.handler import materialize
unpacked = materialize(Path(sys.argv[1]))
assert (unpacked / "model.joblib").is_file()
if sys.argv[2] == "fail":
    raise RuntimeError("the server failed after unpacking its model")
"""


@pytest.mark.fault("temp folders: a server's unpacked model.tar.gz at a clean exit and at a crash")
@pytest.mark.parametrize("outcome", ["ok", "fail"])
def test_an_unpacked_model_archive_is_removed_when_the_process_ends(
    model_dir: Path, temp: Path, tmp_path: Path, outcome: str
) -> None:
    archive = pack(model_dir, tmp_path / "model.tar.gz")
    done = subprocess.run(
        [sys.executable, "-c", UNPACK, str(archive), outcome], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == (0 if outcome == "ok" else 1), done.stderr[-2000:]
    assert _left(temp) == []


@pytest.mark.fault("temp folders: a capture buffer's own spool folder")
def test_a_capture_buffers_own_spool_folder_is_removed_at_close(temp: Path, tmp_path: Path) -> None:
    buffer = capture.CaptureBuffer(capture.sink_for(str(tmp_path / "captured")), "ep", 100).start()
    assert buffer.offer("text/csv", b"1,2,3", "text/csv", b"0.5")
    assert _left(temp) != []
    buffer.close()
    assert _left(temp) == []
    assert len(list((tmp_path / "captured").rglob("*.jsonl"))) == 1


@pytest.mark.fault("temp folders: an emulator that fails to start")
def test_the_emulators_start_folder_is_removed_even_when_it_fails(temp: Path) -> None:
    with emu.Emulator() as first:
        assert _left(temp) == []
        with pytest.raises(emu.EmulatorError, match="exited at start"):
            emu.Emulator(port=first.port).start()
    assert _left(temp) == []
