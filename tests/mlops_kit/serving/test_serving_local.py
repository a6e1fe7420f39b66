"""`mlops deploy --env local`, `invoke` and `batch` under the emulator: registry -> endpoint -> capture."""

from __future__ import annotations

import io
import json
import time
import uuid
from pathlib import Path

import botocore.session
import pytest
from botocore.stub import Stubber
from serving_helpers import fitted_model, pack, write_model_dir

from mlops_kit import local_platform, naming, runtime, settings
from mlops_kit.registry import packages
from mlops_kit.serving import batch, capture, local
from mlops_kit.serving.handler import Handler

PROJECT_IMAGE = runtime.image_uri(
    "123456789012", "us-east-1", naming.image_repository(settings.load("local")), "0" * runtime.TAG_LENGTH
)


@pytest.fixture(scope="module")
def config() -> settings.Settings:
    return settings.load("local")


def register(
    emulator,
    config,
    tmp_path: Path,
    approve: bool = True,
    group: str | None = None,
    image: str = PROJECT_IMAGE,
) -> str:
    platform = local_platform.ensure(config, emulator.client)
    model = write_model_dir(tmp_path / f"m-{uuid.uuid4().hex[:6]}")
    archive = pack(model, tmp_path / "model.tar.gz")
    key = f"models/{uuid.uuid4().hex}/model.tar.gz"
    emulator.client("s3").put_object(Bucket=platform.buckets["artifacts"], Key=key, Body=archive.read_bytes())
    sagemaker = emulator.client("sagemaker")
    group = group or platform.model_package_group
    if group != platform.model_package_group:
        sagemaker.create_model_package_group(ModelPackageGroupName=group)
    arn = packages.register(
        sagemaker,
        packages.PackageRequest(
            group=group,
            image_uri=image,
            model_data_url=f"s3://{platform.buckets['artifacts']}/{key}",
            metrics={"roc_auc": 0.9},
            metrics_uri=f"s3://{platform.buckets['artifacts']}/{key}.json",
        ),
    )
    if approve:
        sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus=packages.APPROVED)
    return arn


@pytest.mark.parametrize(
    "image",
    [
        "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.4-2-cpu-py3",
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/another-project-runtime:abc",
        "python:3.11-slim",
    ],
)
def test_deploy_refuses_a_package_that_runs_another_image(
    emulator, config, tmp_path: Path, image: str
) -> None:
    arn = register(emulator, config, tmp_path, image=image)
    with pytest.raises(
        local.DeployError, match="this machine runs only the project's image|not an ECR image"
    ):
        local.deploy(config, emulator, arn, port=0)


def _capture_keys(emulator, config) -> set[str]:
    bucket = naming.bucket(config, "capture", emulator.client("sts").get_caller_identity()["Account"])
    prefix = f"datacapture/{naming.endpoint(config)}/AllTraffic/"
    pages = emulator.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {o["Key"] for page in pages for o in page.get("Contents", [])}


def test_deploy_serves_the_package_captures_to_s3_and_stops(emulator, config, tmp_path: Path) -> None:
    arn = register(emulator, config, tmp_path)
    before = _capture_keys(emulator, config)  # the session's emulator holds other tests' capture too
    endpoint = local.deploy(config, emulator, arn, port=0)
    try:
        assert local.running(naming.endpoint(config)).pid == endpoint.pid
        rows = [[1.0, 2.0, 3.0], [-1.0, 0.0, 2.0]]
        answer = endpoint.invoke(rows)
        assert answer == pytest.approx(fitted_model().predict_proba(rows)[:, 1].tolist())
        assert local.invoke(endpoint.url, rows, "application/json", "text/csv") == pytest.approx(answer)
        with pytest.raises(local.DeployError, match="400: rows have 2 columns"):
            local.invoke(endpoint.url, [[1.0, 2.0]])
    finally:
        local.stop(config)
    assert local.running(naming.endpoint(config)) is None
    # it logs as the Pulumi program's endpoint does: the settings' format (json by default)
    assert config.serving.log_format == "json"
    refused = [json.loads(line) for line in Path(endpoint.log).read_text().splitlines() if '"refused' in line]
    assert refused and refused[0]["status"] == 400 and "rows have 2 columns" in refused[0]["reason"]
    bucket = naming.bucket(config, "capture", emulator.client("sts").get_caller_identity()["Account"])
    assert endpoint.capture_to == f"s3://{bucket}/datacapture"
    s3 = emulator.client("s3")
    prefix = f"datacapture/{naming.endpoint(config)}/AllTraffic/"
    keys = sorted(_capture_keys(emulator, config) - before)
    assert all(k.startswith(prefix) for k in keys)
    records = [
        r
        for k in keys
        for r in capture.parse_lines(s3.get_object(Bucket=bucket, Key=k)["Body"].read().decode())
    ]
    inputs = sorted(r["captureData"]["endpointInput"]["data"] for r in records)
    assert inputs == sorted(["1.0,2.0,3.0\n-1.0,0.0,2.0\n", '{"instances":[[1.0,2.0,3.0],[-1.0,0.0,2.0]]}'])


def test_redeploy_replaces_the_running_endpoint(emulator, config, tmp_path: Path) -> None:
    first = local.deploy(config, emulator, register(emulator, config, tmp_path), port=0)
    try:
        second_arn = register(emulator, config, tmp_path)
        second = local.deploy(config, emulator, second_arn, port=0)
        assert second.pid != first.pid
        assert local.running(naming.endpoint(config)).package_arn == second_arn
        deadline = time.monotonic() + 30
        while local.ping(first.url) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not local.ping(first.url)
    finally:
        local.stop(config)


def test_a_pending_package_is_refused(emulator, config, tmp_path: Path) -> None:
    arn = register(emulator, config, tmp_path, approve=False)
    with pytest.raises(local.DeployError, match="PendingManualApproval, not Approved"):
        local.deploy(config, emulator, arn, port=0)


def test_newest_approved_skips_pending_and_fails_on_none(emulator, config, tmp_path: Path) -> None:
    group = f"serving-test-{uuid.uuid4().hex[:8]}"
    approved = register(emulator, config, tmp_path, group=group)
    register(emulator, config, tmp_path, approve=False, group=group)
    assert local.newest_approved(emulator.client("sagemaker"), group) == approved
    empty = f"serving-empty-{uuid.uuid4().hex[:8]}"
    emulator.client("sagemaker").create_model_package_group(ModelPackageGroupName=empty)
    with pytest.raises(local.DeployError, match="has no Approved package"):
        local.newest_approved(emulator.client("sagemaker"), empty)


def test_stop_without_an_endpoint_says_so(config) -> None:
    assert local.stop(config) is None
    assert local.running(naming.endpoint(config)) is None


def test_invoke_an_unreachable_url_fails_clearly() -> None:
    assert not local.ping("http://127.0.0.1:9")
    with pytest.raises(OSError):
        local.invoke("http://127.0.0.1:9", [[1, 2, 3]], timeout=2)


def test_encode_and_decode_rows() -> None:
    import pandas as pd

    assert local.encode_rows([[1, 2], [3, 4]], "text/csv") == b"1,2\n3,4\n"
    frame = pd.DataFrame({"a": [1], "b": [2.5]})
    assert local.encode_rows(frame, "application/json") == b'{"instances":[{"a":1,"b":2.5}]}'
    assert local.decode_answer(b"1\n0.5\n", "text/csv") == [1, 0.5]
    with pytest.raises(ValueError, match="cannot encode rows as application/x-npy"):
        local.encode_rows([[1]], "application/x-npy")


# --- batch ---------------------------------------------------------------------------------------


def test_mini_batches_keep_records_whole_and_under_the_limit() -> None:
    text = "".join(f"{i},{i},{i}\n" for i in range(100))
    batches = list(batch.mini_batches(text, 64))
    assert "".join(b for _, b in batches) == text
    assert all(len(b.encode()) <= 64 for _, b in batches)
    assert [n for n, _ in batches][:2] == [1, 11]  # records 1-10 are 60 bytes; record 11 would overflow
    with pytest.raises(batch.BatchError, match="record 1 is 11 bytes"):
        list(batch.mini_batches("1234567890\n", 8))


def test_batch_locally_through_the_handler(model_dir: Path, tmp_path: Path) -> None:
    rows = [[float(i), -float(i) / 2, 1.0] for i in range(500)]
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "part-1.csv").write_text("".join(",".join(map(str, r)) + "\n" for r in rows))
    result = batch.run_local(
        Handler(model_dir), str(tmp_path / "in"), str(tmp_path / "out"), max_payload_mb=0.001
    )
    assert result.records == 500 and result.outputs == [str(tmp_path / "out" / "part-1.csv.out")]
    got = [float(v) for v in (tmp_path / "out" / "part-1.csv.out").read_text().split()]
    assert got == pytest.approx(fitted_model().predict_proba(rows)[:, 1].tolist())


def test_batch_names_the_refused_record(model_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "bad.csv"
    source.write_text("1,2,3\n4,5,oops\n")
    with pytest.raises(
        batch.BatchError, match=r"bad.csv: the batch from record 1 was refused \(400\).*'oops'"
    ):
        batch.run_local(Handler(model_dir), str(source), str(tmp_path / "out"))
    with pytest.raises(batch.BatchError, match="no input file"):
        batch.run_local(Handler(model_dir), str(tmp_path / "missing"), str(tmp_path / "out"))


def test_batch_reads_and_writes_s3(emulator, model_dir: Path) -> None:
    s3 = emulator.client("s3")
    bucket = f"batch-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="in/a.jsonl", Body=b"[[1,2,3]]\n[[0,0,0],[1,1,1]]\n")
    result = batch.run_local(
        Handler(model_dir),
        f"s3://{bucket}/in/",
        f"s3://{bucket}/out",
        content_type="application/json",
        accept="application/json",
        storage=batch.Storage(lambda: s3),
    )
    assert result.outputs == [f"s3://{bucket}/out/a.jsonl.out"]
    lines = s3.get_object(Bucket=bucket, Key="out/a.jsonl.out")["Body"].read().decode().splitlines()
    assert len(lines) == 2 and len(io.StringIO(lines[1]).read().split(",")) == 2


def test_transform_job_request_is_valid_for_sagemaker(config) -> None:
    request = batch.transform_job_request(
        config, "m", "s3://in/x", "s3://out/", kms_key_id="arn:aws:kms:k", now=0
    )
    assert request["TransformJobName"] == "kit-fixture-local-batch-19700101000000"
    assert request["TransformInput"]["SplitType"] == "Line" and request["BatchStrategy"] == "MultiRecord"
    client = botocore.session.get_session().create_client(
        "sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stub:
        stub.add_response(
            "create_transform_job",
            {"TransformJobArn": "arn:aws:sagemaker:us-east-1:1:transform-job/m"},
            request,
        )
        client.create_transform_job(**request)  # raises ParamValidationError if the shape is wrong
        model = batch.model_request(
            config, "arn:aws:sagemaker:us-east-1:1:model-package/g/1", "123456789012", "m"
        )
        stub.add_response("create_model", {"ModelArn": "arn:aws:sagemaker:us-east-1:1:model/m"}, model)
        client.create_model(**model)
