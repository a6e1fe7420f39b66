"""Registration happens exactly once per execution: a crash between any two AWS calls of the Register
step, then a resumed run, leaves one package."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from mlops_kit import local_platform, settings
from mlops_kit.executor import jobs
from mlops_kit.executor.launch import VenvLauncher
from mlops_kit.registry import metadata

ENV = settings.load("local")


class Crash(RuntimeError):
    pass


def _request(group: str, bucket: str, execution: str) -> dict:
    return {
        "ModelPackageGroupName": group,
        "ModelApprovalStatus": "PendingManualApproval",
        "InferenceSpecification": {
            "Containers": [
                {
                    "Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/r:t",
                    "ModelDataUrl": f"s3://{bucket}/m.tar.gz",
                }
            ],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        "CustomerMetadataProperties": {metadata.lineage_key("execution"): execution, "metric:auc": "0.9"},
    }


def _env(emulator, tmp_path: Path, crash_at: int | None, calls: list[str]) -> jobs.JobEnv:
    def client(service: str):
        real = emulator.client(service)
        if service != "sagemaker":
            return real
        original = real._make_api_call

        def counted(operation, params):
            if crash_at is not None and len(calls) == crash_at:
                calls.append(f"crash before {operation}")
                raise Crash(operation)
            calls.append(operation)
            return original(operation, params)

        real._make_api_call = counted
        return real

    return jobs.JobEnv(client, {}, tmp_path / "log", VenvLauncher(tmp_path), image_uri="unused")


def _packages(emulator, group: str, execution: str) -> list[str]:
    sagemaker = emulator.client("sagemaker")
    found = sagemaker.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"]
    return [
        p["ModelPackageArn"]
        for p in found
        if metadata.lineage(
            sagemaker.describe_model_package(ModelPackageName=p["ModelPackageArn"])[
                "CustomerMetadataProperties"
            ]
        ).get("execution")
        == execution
    ]


@pytest.mark.fault("Register run twice (a rerun after success)")
def test_a_clean_registration_and_its_rerun_give_one_package(emulator, tmp_path: Path) -> None:
    platform = local_platform.ensure(ENV, emulator.client)
    group = f"once-{uuid.uuid4().hex[:8]}"
    emulator.client("sagemaker").create_model_package_group(ModelPackageGroupName=group)
    request = _request(group, platform.buckets["artifacts"], "exec-clean")
    first = jobs.register_model("Register", request, _env(emulator, tmp_path, None, []))
    again = jobs.register_model("Register", request, _env(emulator, tmp_path, None, []))
    assert first["ModelPackageArn"] == again["ModelPackageArn"]
    assert _packages(emulator, group, "exec-clean") == [first["ModelPackageArn"]]


@pytest.mark.fault("crash before each AWS call of the Register step, then --resume")
def test_a_crash_between_any_two_calls_then_a_resume_gives_one_package(emulator, tmp_path: Path) -> None:
    platform = local_platform.ensure(ENV, emulator.client)
    bucket = platform.buckets["artifacts"]

    def new_group() -> str:
        group = f"once-{uuid.uuid4().hex[:8]}"
        emulator.client("sagemaker").create_model_package_group(ModelPackageGroupName=group)
        return group

    clean: list[str] = []
    jobs.register_model(
        "Register", _request(new_group(), bucket, "exec-0"), _env(emulator, tmp_path, None, clean)
    )
    assert clean == ["ListModelPackages", "CreateModelPackage", "DescribeModelPackage"]
    for crash_at in range(len(clean)):  # before the 1st call, between each pair, before the last
        group, execution = new_group(), f"exec-crash-{crash_at}"
        request = _request(group, bucket, execution)
        calls: list[str] = []
        with pytest.raises(Crash):
            jobs.register_model("Register", request, _env(emulator, tmp_path, crash_at, calls))
        assert calls[-1] == f"crash before {clean[crash_at]}"
        resumed = jobs.register_model("Register", request, _env(emulator, tmp_path, None, []))
        assert _packages(emulator, group, execution) == [resumed["ModelPackageArn"]], calls
