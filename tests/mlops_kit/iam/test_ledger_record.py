"""The recorder (a botocore client plugin) and the table of what each call needs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from mlops_kit.iam import actions, ledger, record

ACCOUNT = "123456789012"


def test_calls_are_recorded_in_every_process_with_the_callers_identity(emulator, tmp_path, monkeypatch):
    path = tmp_path / "ledger.jsonl"
    for key, value in record.environ(path).items():
        monkeypatch.setenv(key, value)
    s3 = emulator.client("s3")
    s3.create_bucket(Bucket="ledger-record-test")
    with record.unrecorded():
        s3.put_object(Bucket="ledger-record-test", Key="harness", Body=b"x")
    role = emulator.as_role(f"arn:aws:iam::{ACCOUNT}:role/some-job")
    child = "import boto3; boto3.client('s3').get_object(Bucket='ledger-record-test', Key='harness')"
    subprocess.run([sys.executable, "-c", child], env={**os.environ, **role.environ()}, check=True)
    calls = ledger.read(path)
    assert [(c.operation, c.params.get("Key")) for c in calls] == [
        ("CreateBucket", None),
        ("GetObject", "harness"),
    ]
    assert calls[0].caller.endswith(":user/moto") and calls[0].site.endswith(
        "in test_calls_are_recorded_in_every_process_with_the_callers_identity"
    )
    assert calls[1].caller == f"arn:aws:sts::{ACCOUNT}:assumed-role/some-job/SageMaker"
    assert ledger.role_of(calls[1].caller) == f"arn:aws:iam::{ACCOUNT}:role/some-job"
    assert ledger.role_of(calls[0].caller) == ""
    # bodies are never recorded
    assert all("Body" not in json.dumps(c.params) for c in calls)


def test_without_the_variable_nothing_is_recorded(emulator, tmp_path, monkeypatch):
    monkeypatch.setenv(record.PLUGIN_VARIABLE, record.PLUGIN)
    monkeypatch.delenv(record.LEDGER_VARIABLE, raising=False)
    emulator.client("s3").list_buckets()
    assert record.active() == {}
    assert list(tmp_path.iterdir()) == []


WHERE = actions.Where(
    ACCOUNT,
    "us-east-1",
    {"src-bucket": "arn:aws:kms:us-east-1:1:key/s", "dst-bucket": "arn:aws:kms:us-east-1:2:key/t"},
)


def test_an_object_copy_reads_the_source_and_writes_the_target_under_each_key():
    needs = actions.needs(
        "s3",
        "CopyObject",
        {"CopySource": "src-bucket/a/b%20c.json?versionId=3", "Bucket": "dst-bucket", "Key": "x/y.json"},
        WHERE,
    )
    assert [(n.action, n.resource) for n in needs] == [
        ("s3:GetObject", "arn:aws:s3:::src-bucket/a/b c.json"),
        ("kms:Decrypt", "arn:aws:kms:us-east-1:1:key/s"),
        ("s3:PutObject", "arn:aws:s3:::dst-bucket/x/y.json"),
        ("kms:GenerateDataKey", "arn:aws:kms:us-east-1:2:key/t"),
    ]
    assert dict(needs[1].context) == {
        "kms:ViaService": "s3.us-east-1.amazonaws.com",
        "kms:EncryptionContext:aws:s3:arn": "arn:aws:s3:::src-bucket",
    }
    # a bucket without SSE-KMS needs no key
    assert [n.action for n in actions.needs("s3", "GetObject", {"Bucket": "plain", "Key": "k"}, WHERE)] == [
        "s3:GetObject"
    ]


def test_a_job_request_passes_its_role_and_packages_answer_to_their_group():
    needs = actions.needs(
        "sagemaker",
        "CreateProcessingJob",
        {"ProcessingJobName": "P-x", "RoleArn": "arn:aws:iam::1:role/r"},
        WHERE,
    )
    assert [(n.action, n.resource, dict(n.context)) for n in needs] == [
        ("sagemaker:CreateProcessingJob", f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:processing-job/p-x", {}),
        ("iam:PassRole", "arn:aws:iam::1:role/r", {"iam:PassedToService": "sagemaker.amazonaws.com"}),
    ]
    (describe,) = actions.needs(
        "sagemaker",
        "DescribeModelPackage",
        {"ModelPackageName": "arn:aws:sagemaker:us-east-1:2:model-package/g-models/3"},
        WHERE,
    )
    assert describe.owner == "group:g-models"
    (listing,) = actions.needs("sagemaker", "ListModelPackages", {"ModelPackageGroupName": "g-models"}, WHERE)
    assert listing.resource.endswith(":model-package-group/g-models") and listing.owner == "group:g-models"


def test_an_unknown_call_or_a_missing_parameter_is_named():
    with pytest.raises(actions.UnknownCall, match=r"s3:PutBucketPolicy is not in the access ledger's table"):
        actions.needs("s3", "PutBucketPolicy", {"Bucket": "b"}, WHERE)
    with pytest.raises(ValueError, match=r"s3:GetObject: the call has no Key parameter"):
        actions.needs("s3", "GetObject", {"Bucket": "b"}, WHERE)
    # a call that needs no permission
    assert actions.needs("sts", "GetCallerIdentity", {}, WHERE) == []


def test_a_ledger_that_cannot_be_written_never_breaks_the_call(emulator, tmp_path, monkeypatch, capsys):
    for key, value in record.environ(tmp_path / "missing-folder" / "ledger.jsonl").items():
        monkeypatch.setenv(key, value)
    assert "Buckets" in emulator.client("s3").list_buckets()
    assert "mlops access ledger: cannot record to" in capsys.readouterr().err


def test_an_environments_clients_hand_out_a_service_roles_credentials_in_its_account(emulator):
    """The local endpoint of a stage in another emulated account runs with that account's serving role
    (`clients.Clients.as_role`, as `Emulator.as_role` for the default account)."""
    from mlops_kit import clients

    base = clients.Clients(region="us-east-1", endpoint_url=emulator.endpoint_url, account_id=ACCOUNT)
    deploy = clients.assume(base, "arn:aws:iam::222222222222:role/stage-deploy", "222222222222")
    serving = deploy.as_role("arn:aws:iam::222222222222:role/stage-serving")
    caller = serving.client("sts").get_caller_identity()
    assert caller["Arn"] == "arn:aws:sts::222222222222:assumed-role/stage-serving/SageMaker"
    assert serving.environ()["AWS_SESSION_TOKEN"] and serving.account_id == "222222222222"
