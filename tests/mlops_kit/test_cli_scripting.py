"""The command line for scripts: `--json` documents that parse, nothing cut or wrapped when piped, one
flag name per meaning, exit codes as documented, and a credentials error that says what to do."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from mlops_kit.cli import exit_codes, main, output


def test_features_groups_and_data_generate_as_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["features", "groups", "--json"]) == 0
    groups = json.loads(capsys.readouterr().out)
    assert groups and all({"group", "record_id", "event_time", "features"} <= set(g) for g in groups)
    target = tmp_path / "d.csv"
    assert main(["data", "generate", "--rows", "50", "--output", str(target), "--json"]) == 0
    written = json.loads(capsys.readouterr().out)
    assert written["rows"] == 50 and written["output"] == str(target) and len(pd.read_csv(target)) == 50


def test_piped_tables_are_tab_separated_and_long_lines_stay_whole(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = output.console()
    assert not out.is_terminal  # under pytest stdout is captured: the piped case
    uri = "s3://" + "b" * 150 + "/key"
    out.print(f"written to {uri}")
    output.table(out, ("name", "value"), [("a", uri), ("b", None)], title="things")
    assert capsys.readouterr().out.splitlines() == [
        f"written to {uri}",
        "things",
        "name\tvalue",
        f"a\t{uri}",
        "b\t",
    ]


def test_features_groups_piped_is_one_line_per_group(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["features", "groups"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split("\t") == ["group", "record id", "event time", "features"]
    assert len(lines) > 1 and all(len(line.split("\t")) == 4 for line in lines)


def test_one_name_per_meaning_and_old_spellings_map_to_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["promote", "--help"]) == 0
    shown = capsys.readouterr().out
    assert "--stage" in shown and "--to " not in shown
    for command in (["data", "generate"], ["features", "training-set"], ["monitor", "run"]):
        assert main([*command, "--help"]) == 0
        text = capsys.readouterr().out
        assert "--output" in text and "--out " not in text, command
    # `--to` still reaches `--stage`: a stage the settings do not know is refused by the command, not
    # by the parser (which would be exit code 2)
    code = main(["promote", "--to", "nowhere", "--latest", "--env", "nowhere"])
    captured = capsys.readouterr()
    assert code == exit_codes.ERROR and "--to is deprecated; use --stage" in captured.err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["monitor", "run"]) == exit_codes.USAGE  # required options missing
    assert main(["runs", "list", "--jsn"]) == exit_codes.USAGE


def test_missing_aws_credentials_say_how_to_give_them_for_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import os

    for name in [n for n in os.environ if n.startswith("AWS_")]:  # every source of credentials
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    import boto3

    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # an earlier test's session keeps its credentials
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    data = tmp_path / "x.csv"
    data.write_text("a\n1\n")
    assert main(["data", "upload", str(data), "--env", "dev"]) == exit_codes.ERROR
    err = " ".join(capsys.readouterr().err.split())
    assert "no AWS credentials for environment dev" in err
    assert "AWS_PROFILE" in err and "AWS_ACCESS_KEY_ID" in err
    assert "kit-fixture-dev-deploy" in err and "AWS_DEPLOY_ROLE_ARN" in err and "'dev'" in err
    assert "Unable to locate credentials" not in err


def test_other_errors_are_not_taken_for_missing_credentials(capsys: pytest.CaptureFixture[str]) -> None:
    from mlops_kit.cli import credentials

    assert not credentials.missing_credentials(RuntimeError("Unable to locate credentials"))
    try:
        try:
            from botocore.exceptions import NoCredentialsError

            raise NoCredentialsError()
        except Exception as inner:
            raise RuntimeError("cannot read the AWS account") from inner
    except RuntimeError as wrapped:
        assert credentials.missing_credentials(wrapped)
    assert credentials.env_of(["data", "upload", "f", "--env=staging"]) == "staging"
    assert credentials.env_of(["runs", "list"]) == "local"


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["invoke", "--url", "http://127.0.0.1:9", "--input", "/dev/null"],
    ],
)
def test_fast_paths_import_no_pandas_boto3_pyarrow_or_sdk(argv: list[str]) -> None:
    """What keeps `mlops --help` and `mlops invoke` fast (benchmarks/cli measures it): they never import
    the heavy libraries."""
    heavy = (
        "pandas",
        "boto3",
        "botocore",
        "sagemaker",
        "pulumi",
        "pyarrow",
        "sklearn",
        "duckdb",
        "numpy",
        "yaml",
    )
    code = (
        "import sys; from mlops_kit.cli import main; main(sys.argv[1:]); "
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout + result.stderr


def test_deploy_status_without_an_endpoint_is_json_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["deploy", "--status", "--json"]) == 1
    assert json.loads(capsys.readouterr().out) == {"running": False}
    assert main(["deploy", "--status"]) == 1
    assert "no local endpoint running for local" in capsys.readouterr().out


def test_emulator_start_and_stop_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["emulator", "stop", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"stopped": False}


def test_runs_list_and_compare_as_json_and_piped(capsys: pytest.CaptureFixture[str]) -> None:
    from mlops_kit.executor import runner

    for run_id, auc, seed in (("run-a", 0.81, "1"), ("run-b", 0.84, "2")):
        runner.save(
            runner.RunRecord(
                execution_id=run_id,
                execution_arn=f"arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/{run_id}",
                pipeline="p",
                environment="local",
                status="Succeeded",
                started=f"2026-11-29T09:0{seed}:00Z",
                parameters={"Seed": seed},
                metrics={"roc_auc": auc},
                artifacts={
                    "model_package": f"arn:aws:sagemaker:us-east-1:123456789012:model-package/g/{seed}"
                },
            )
        )
    assert main(["runs", "list", "--json"]) == 0
    assert [r["execution_id"] for r in json.loads(capsys.readouterr().out)] == ["run-b", "run-a"]
    assert main(["runs", "compare", "run-a", "run-b", "--json"]) == 0
    rows = {row["what"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["param Seed"]["run-a"] == "1" and rows["param Seed"]["differs"] is True
    assert rows["roc_auc"]["run-b"] == "0.8400" and rows["status"]["differs"] is False
    assert main(["runs", "compare", "run-a", "run-b"]) == 0  # piped: a header, then one line a row
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split("\t") == ["", "run-a", "run-b", "differs"]
    assert "param Seed\t1\t2\t≠" in lines
    assert main(["runs", "compare", "run-a", "nowhere", "--json"]) == exit_codes.ERROR
