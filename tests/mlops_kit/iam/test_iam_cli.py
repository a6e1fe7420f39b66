"""`mlops iam ledger`: recorded calls checked against the environment's generated policies, each with the
statement that allows it, or the one that is missing; exit code 1 when AWS would deny a call."""

from __future__ import annotations

import json
from pathlib import Path

from mlops_kit import naming, settings
from mlops_kit.cli import main

ACCOUNT = "123456789012"


def entry(role: str, service: str, operation: str, params: dict, site: str = "kit.py:1 in f") -> str:
    caller = f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/SageMaker"
    return json.dumps(
        {"service": service, "operation": operation, "params": params, "caller": caller, "site": site}
    )


def write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "ledger.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_prints_each_call_with_the_statement_that_allows_it(tmp_path, capsys):
    config = settings.load("local")
    raw = naming.bucket(config, "raw", ACCOUNT)
    jobs = naming.execution_role(config)
    path = write(tmp_path, entry(jobs, "s3", "GetObject", {"Bucket": raw, "Key": "events/a.parquet"}))
    assert main(["iam", "ledger", "--env", "local", "--ledger", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["triples"] == 2 and report["denied"] == 0  # the object, and the key S3 decrypts it with
    by_action = {c["action"]: c for c in report["calls"]}
    assert by_action["s3:GetObject"]["allowed_by"] == [
        f"role {jobs} / {config.prefix}-training-execution-policy#ReadInputs"
    ]
    assert by_action["kms:Decrypt"]["allowed_by"][0].endswith("#DataKey")


def test_a_denied_call_exits_1_naming_the_call_and_the_missing_statement(tmp_path, capsys):
    config = settings.load("local")
    raw = naming.bucket(config, "raw", ACCOUNT)
    monitoring = naming.monitoring_role(config)
    path = write(
        tmp_path,
        entry(
            monitoring, "s3", "DeleteObject", {"Bucket": raw, "Key": "events/a.parquet"}, "job.py:9 in clean"
        ),
    )
    assert main(["iam", "ledger", "--env", "local", "--ledger", str(path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    denied = [line for line in lines if "DENIED (" in line]
    assert denied == [
        f"job.py:9 in clean: s3:DeleteObject as arn:aws:iam::{ACCOUNT}:role/{monitoring} needs s3:DeleteObject on "
        f"arn:aws:s3:::{raw}/events/a.parquet: DENIED (no policy allows it): missing identity policy role "
        f"{monitoring} / {config.prefix}-monitoring-role-policy: an Allow of s3:DeleteObject on "
        f"arn:aws:s3:::{raw}/events/a.parquet"
    ]
    assert lines[-1] == (
        "1 distinct (principal, action, resource) checked from 1 needs of 1 calls; 1 denied; "
        "0 stand-in calls not checked; 0 calls not understood"
    )


def test_an_unknown_call_is_an_error_and_a_missing_ledger_is_named(tmp_path, capsys):
    config = settings.load("local")
    path = write(tmp_path, entry(naming.execution_role(config), "s3", "PutBucketPolicy", {"Bucket": "b"}))
    assert main(["iam", "ledger", "--env", "local", "--ledger", str(path), "--json"]) == 1
    errors = json.loads(capsys.readouterr().out)["errors"]
    assert errors == [
        "kit.py:1 in f: s3:PutBucketPolicy is not in the access ledger's table (mlops_kit.iam.actions): "
        "add its IAM action and resource there"
    ]
    assert main(["iam", "ledger", "--env", "local", "--ledger", str(tmp_path / "none.jsonl")]) == 1
    assert "none.jsonl: no recorded calls" in capsys.readouterr().err
