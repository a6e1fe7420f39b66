"""The emulator's state survives `kill -9`: a journal of the requests that changed it, replayed at start
into the very same state (ids, ARNs, key material and timestamps included)."""

from __future__ import annotations

import io
import os
import signal
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from mlops_kit import emulator as emu
from mlops_kit import emulator_journal as journal
from mlops_kit.cli import main

OTHER_ACCOUNT = "222222222222"
PACKAGE = {
    "InferenceSpecification": {
        "Containers": [{"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/r:t"}],
        "SupportedContentTypes": ["text/csv"],
        "SupportedResponseMIMETypes": ["text/csv"],
    }
}


def _kill(running: emu.Emulator) -> None:
    assert running.pid is not None
    os.kill(running.pid, signal.SIGKILL)
    if running._process is not None:
        running._process.wait()
    running._process, running.pid = None, None


def _everything(running: emu.Emulator, assumed: dict[str, str]) -> dict[str, Any]:
    """What a restart must give back: names, ids, ARNs and timestamps moto made up, and the contents."""
    s3, sagemaker = running.client("s3"), running.client("sagemaker")
    state: dict[str, Any] = {"buckets": {}}
    for bucket in s3.list_buckets()["Buckets"]:
        versions = s3.list_object_versions(Bucket=bucket["Name"]).get("Versions", [])
        state["buckets"][bucket["Name"]] = [
            str(bucket["CreationDate"]),
            [(v["Key"], v["VersionId"], v["ETag"], str(v["LastModified"])) for v in versions],
        ]
    state["packages"] = [
        (p["ModelPackageArn"], str(p["CreationTime"]))
        for p in sagemaker.list_model_packages(ModelPackageGroupName="durable")["ModelPackageSummaryList"]
    ]
    state["executions"] = [
        e["PipelineExecutionArn"]
        for e in sagemaker.list_pipeline_executions(PipelineName="durable")["PipelineExecutionSummaries"]
    ]
    state["keys"] = [k["KeyArn"] for k in running.client("kms").list_keys()["Keys"]]
    items = running.client("dynamodb").scan(TableName="durable")["Items"]
    state["items"] = sorted(items, key=lambda item: item["k"]["S"])
    other = boto3.client(
        "s3",
        endpoint_url=running.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=assumed["AccessKeyId"],
        aws_secret_access_key=assumed["SecretAccessKey"],
        aws_session_token=assumed["SessionToken"],
        config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
    )
    state["other_account"] = [b["Name"] for b in other.list_buckets()["Buckets"]]
    return state


def _fill(running: emu.Emulator, tmp_path: Path) -> tuple[dict[str, str], bytes]:
    s3, sagemaker, kms = running.client("s3"), running.client("sagemaker"), running.client("kms")
    key = kms.create_key(Description="durable")["KeyMetadata"]["KeyId"]
    sealed = kms.encrypt(KeyId=key, Plaintext=b"sealed before the kill")["CiphertextBlob"]
    s3.create_bucket(Bucket="durable-data")
    s3.put_bucket_versioning(Bucket="durable-data", VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket="durable-data", Key="a key/with spaces%2F.txt", Body=b"one")
    s3.put_object(Bucket="durable-data", Key="a key/with spaces%2F.txt", Body=b"two")  # a second version
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(9 * 1024 * 1024))  # past boto3's multipart threshold: upload ids
    s3.upload_file(str(big), "durable-data", "big.bin")
    sagemaker.create_model_package_group(ModelPackageGroupName="durable")
    for _ in range(2):
        sagemaker.create_model_package(ModelPackageGroupName="durable", **PACKAGE)
    sagemaker.create_pipeline(
        PipelineName="durable",
        PipelineDefinition='{"Version": "2020-12-01", "Steps": []}',
        RoleArn="arn:aws:iam::123456789012:role/r",
    )
    sagemaker.start_pipeline_execution(PipelineName="durable")
    ddb = running.client("dynamodb")
    ddb.create_table(
        TableName="durable",
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for i in range(20):
        ddb.put_item(TableName="durable", Item={"k": {"S": str(i)}, "v": {"N": str(i)}})
    assumed = running.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{OTHER_ACCOUNT}:role/stage", RoleSessionName="promoter"
    )["Credentials"]
    boto3.client(
        "s3",
        endpoint_url=running.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=assumed["AccessKeyId"],
        aws_secret_access_key=assumed["SecretAccessKey"],
        aws_session_token=assumed["SessionToken"],
        config=Config(s3={"addressing_style": "path"}),
    ).create_bucket(Bucket="in-the-other-account")
    return assumed, sealed


def test_everything_is_back_the_same_after_kill_9_and_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "state"
    first = emu.Emulator(data_dir=data).start()
    try:
        assumed, sealed = _fill(first, tmp_path)
        before = _everything(first, assumed)
    finally:
        _kill(first)
    again = emu.Emulator(data_dir=data).start()
    try:
        after = _everything(again, assumed)
        assert after == before
        assert len(before["packages"]) == 2 and before["other_account"] == ["in-the-other-account"]
        assert before["buckets"]["durable-data"][1][0][1] != before["buckets"]["durable-data"][1][1][1]
        body = again.client("s3").get_object(Bucket="durable-data", Key="big.bin")["Body"].read()
        assert body == (tmp_path / "big.bin").read_bytes()
        # the key material is the same too: what was encrypted before the kill decrypts after it
        assert again.client("kms").decrypt(CiphertextBlob=sealed)["Plaintext"] == b"sealed before the kill"
        # and new resources carry on from there: the registry numbers the next version 3, not 1
        made = again.client("sagemaker").create_model_package(ModelPackageGroupName="durable", **PACKAGE)
        assert made["ModelPackageArn"].endswith("/durable/3")
    finally:
        again.stop()


def test_an_emulator_without_a_state_folder_forgets(tmp_path: Path) -> None:
    """The nearest case: memory only (tests' and sessions' emulators) starts empty after a restart."""
    first = emu.Emulator().start()
    first.client("s3").create_bucket(Bucket="forgotten")
    _kill(first)
    with emu.Emulator() as again:
        assert again.client("s3").list_buckets()["Buckets"] == []


def test_mlops_emulator_start_after_kill_9_has_the_state(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["emulator", "start"]) == 0
    running = emu.running()
    assert running is not None
    running.client("s3").create_bucket(Bucket="kept-by-the-cli")
    os.kill(running.pid, signal.SIGKILL)
    assert main(["emulator", "start"]) == 0  # the dead one's record is stale; its journal is not
    try:
        again = emu.running()
        assert again is not None and again.pid != running.pid
        assert [b["Name"] for b in again.client("s3").list_buckets()["Buckets"]] == ["kept-by-the-cli"]
        assert main(["emulator", "stop"]) == 0  # a clean stop keeps it too
        assert main(["emulator", "start"]) == 0
        third = emu.running()
        assert third is not None
        assert [b["Name"] for b in third.client("s3").list_buckets()["Buckets"]] == ["kept-by-the-cli"]
    finally:
        assert main(["emulator", "stop"]) == 0


def test_concurrent_clients_replay_to_the_same_state(tmp_path: Path) -> None:
    """Eight clients at once: the journal's order is the order moto applied them in (one lock), so ids
    moto draws come out the same after kill -9 and a replay."""
    import threading

    data = tmp_path / "state"
    first = emu.Emulator(data_dir=data).start()
    try:
        sagemaker, s3 = first.client("sagemaker"), first.client("s3")
        sagemaker.create_model_package_group(ModelPackageGroupName="durable")
        s3.create_bucket(Bucket="durable-data")
        errors: list[BaseException] = []

        def client(n: int) -> None:
            try:
                own_sagemaker, own_s3 = first.client("sagemaker"), first.client("s3")
                for i in range(6):
                    own_sagemaker.create_model_package(ModelPackageGroupName="durable", **PACKAGE)
                    own_s3.put_object(Bucket="durable-data", Key=f"{n}/{i}", Body=f"{n}-{i}".encode())
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert errors == []
        listed = sagemaker.list_model_packages(ModelPackageGroupName="durable", MaxResults=100)
        before = sorted(
            (p["ModelPackageArn"], str(p["CreationTime"])) for p in listed["ModelPackageSummaryList"]
        )
        objects = sorted(
            (o["Key"], o["ETag"], str(o["LastModified"]))
            for o in s3.list_objects_v2(Bucket="durable-data")["Contents"]
        )
    finally:
        _kill(first)
    with emu.Emulator(data_dir=data) as again:
        listed = again.client("sagemaker").list_model_packages(
            ModelPackageGroupName="durable", MaxResults=100
        )
        after = sorted(
            (p["ModelPackageArn"], str(p["CreationTime"])) for p in listed["ModelPackageSummaryList"]
        )
        contents = again.client("s3").list_objects_v2(Bucket="durable-data")["Contents"]
        assert after == before and len(before) == 48
        assert sorted((o["Key"], o["ETag"], str(o["LastModified"])) for o in contents) == objects


def test_two_emulators_cannot_share_a_journal(tmp_path: Path) -> None:
    with emu.Emulator(data_dir=tmp_path) as first:
        with pytest.raises(emu.EmulatorError, match="held by another running emulator"):
            emu.Emulator(data_dir=tmp_path).start()
        assert first.answers()


def _environ(method: str, target: str = "", query: str = "", form: str = "") -> dict[str, Any]:
    environ = {"REQUEST_METHOD": method, "QUERY_STRING": query, "PATH_INFO": "/"}
    if target:
        environ["HTTP_X_AMZ_TARGET"] = target
    if form:
        environ["CONTENT_TYPE"] = "application/x-www-form-urlencoded; charset=utf-8"
    return environ


@pytest.mark.parametrize(
    ("method", "target", "query", "body", "changes"),
    [
        ("GET", "", "", "", False),
        ("HEAD", "", "", "", False),
        ("PUT", "", "", "", True),
        ("DELETE", "", "", "", True),
        ("POST", "", "uploads", "", True),  # S3 CreateMultipartUpload
        ("POST", "SageMaker.DescribeModelPackage", "", "", False),
        ("POST", "SageMaker.ListModelPackages", "", "", False),
        ("POST", "DynamoDB_20120810.BatchGetItem", "", "", False),
        ("POST", "DynamoDB_20120810.Query", "", "", False),
        ("POST", "SageMaker.CreateModelPackage", "", "", True),
        ("POST", "DynamoDB_20120810.BatchWriteItem", "", "", True),
        ("POST", "TrentService.GenerateDataKey", "", "", True),  # no read verb: kept, harmless
        ("POST", "TrentService.CreateKey", "", "", True),
        ("POST", "", "", "Action=GetCallerIdentity&Version=2011-06-15", False),
        ("POST", "", "", "Action=AssumeRole&Version=2011-06-15", True),
    ],
)
def test_what_goes_in_the_journal(method: str, target: str, query: str, body: str, changes: bool) -> None:
    assert journal.changes_state(_environ(method, target, query, body), body.encode()) is changes


def test_a_torn_last_record_is_cut_off_and_the_rest_kept(tmp_path: Path) -> None:
    """A kill in the middle of an append leaves part of a record: it is dropped, never half-applied."""
    first = journal.Journal(tmp_path)
    for seq in range(3):
        first.append({"seq": seq, "at": 0.0, "environ": {}, "body": b"x" * seq})
    first.close()
    whole = (tmp_path / journal.JOURNAL).read_bytes()
    (tmp_path / journal.JOURNAL).write_bytes(whole[:-2])
    again = journal.Journal(tmp_path)
    assert [r["seq"] for r in again.records()] == [0, 1]
    assert [r["body"] for r in again.records()] == [b"", b"x"]
    flipped = bytearray((tmp_path / journal.JOURNAL).read_bytes())
    flipped[-1] ^= 0xFF  # a record whose bytes are not those written: its checksum fails
    (tmp_path / journal.JOURNAL).write_bytes(bytes(flipped))
    assert [r["seq"] for r in again.records()] == [0]
    again.close()


def test_a_refused_request_is_not_journaled(tmp_path: Path) -> None:
    answered: list[str] = []

    def moto(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        code = "400 Bad Request" if environ["PATH_INFO"] == "/refused" else "200 OK"
        start_response(code, [("Content-Type", "text/plain")])
        return [b"done"]

    app = journal.durable(moto, tmp_path)
    for path in ("/kept", "/refused", "/kept-too"):
        body = b"payload"
        environ = {
            "REQUEST_METHOD": "PUT",
            "PATH_INFO": path,
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body),
        }
        assert b"".join(app(environ, lambda status, headers, exc=None: answered.append(status))) == b"done"
    app.journal.close()
    assert answered == ["200 OK", "400 Bad Request", "200 OK"]
    replayed = journal.Journal(tmp_path)
    records = [r for r in replayed.records() if "seq" in r]
    assert [(r["environ"]["PATH_INFO"], r["seq"], r["body"]) for r in records] == [
        ("/kept", 1, b"payload"),
        ("/kept-too", 2, b"payload"),
    ]
    replayed.close()


def test_a_change_the_journal_cannot_hold_is_never_answered(tmp_path: Path, monkeypatch) -> None:
    """Disk full (or any write error) after moto applied a change: the emulator stops without answering,
    so no client holds an answer that a restart would take back."""

    class Stopped(Exception):
        pass

    def moto(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"applied"]

    def stop(message: str) -> None:
        raise Stopped(message)

    app = journal.durable(moto, tmp_path)
    monkeypatch.setattr(journal, "_fail_stop", stop)
    monkeypatch.setattr(
        app.journal, "append", lambda record: (_ for _ in ()).throw(OSError(28, "No space left"))
    )
    answered: list[str] = []
    environ = {"REQUEST_METHOD": "PUT", "PATH_INFO": "/x", "CONTENT_LENGTH": "0", "wsgi.input": io.BytesIO()}
    with pytest.raises(Stopped, match="cannot write .*journal.bin .*No space left"):
        app(environ, lambda status, headers, exc=None: answered.append(status))
    assert answered == []
    app.journal.close()
