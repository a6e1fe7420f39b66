"""`mlops monitor ... --json`: one JSON document on stdout that a script can parse, the documented exit
codes with it, and a baseline read from s3:// as well as from a folder."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from monitor_helpers import transactions
from moto import mock_aws

from mlops_kit.cli import exit_codes, main
from mlops_kit.cli import monitor as monitor_cli
from mlops_kit.monitoring import files


def test_run_json_is_parseable_and_drift_still_exits_4(
    tmp_path: Path, baseline_dir: Path, capture_writer, capsys: pytest.CaptureFixture[str]
) -> None:
    capture = capture_writer("drifted", transactions(1_000, seed=51, drifted=True))
    argv = ["monitor", "run", "--baseline", str(baseline_dir), "--capture", str(capture)]
    argv += ["--no-emit-metrics", "--no-retrain", "--task", "binary", "--json"]
    capsys.readouterr()
    assert main([*argv, "--output", str(tmp_path / "a")]) == exit_codes.OK
    document = json.loads(capsys.readouterr().out)
    assert document["drifted"] is True and document["output"] == str(tmp_path / "a")
    assert document["summary"]["items"] == 1_000 and document["summary"]["features"]
    assert main([*argv, "--output", str(tmp_path / "b"), "--fail-on-drift"]) == exit_codes.DRIFT
    assert json.loads(capsys.readouterr().out)["drifted"] is True  # the result first, then the code


def test_baseline_and_report_json(
    tmp_path: Path, training, baseline_dir: Path, capture_writer, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "train.csv"
    training.to_csv(data, index=False)
    capsys.readouterr()
    assert (
        main(["monitor", "baseline", "--input", str(data), "--output", str(tmp_path / "base"), "--json"]) == 0
    )
    written = json.loads(capsys.readouterr().out)
    assert written["rows"] == len(training) and Path(written["statistics"]).is_file()
    capture = capture_writer("calm", training.sample(500, random_state=1))
    run = ["monitor", "run", "--baseline", str(baseline_dir), "--capture", str(capture), "--no-emit-metrics"]
    assert main([*run, "--no-retrain", "--task", "binary", "--output", str(tmp_path / "r")]) == 0
    capsys.readouterr()
    html = tmp_path / "r.html"
    assert main(["monitor", "report", "--run", str(tmp_path / "r"), "--output", str(html), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"report": str(html)}


def test_the_old_flag_spellings_still_work_with_a_warning(
    tmp_path: Path, training, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "train.csv"
    training.head(200).to_csv(data, index=False)
    assert main(["monitor", "baseline", "--data", str(data), "--out", str(tmp_path / "base")]) == 0
    err = capsys.readouterr().err
    assert "--data is deprecated; use --input" in err and "--out is deprecated; use --output" in err
    assert (tmp_path / "base" / files.STATISTICS).is_file()
    assert main(["monitor", "baseline", "--help"]) == 0
    shown = capsys.readouterr().out
    assert "--input" in shown and "--output" in shown and "--data" not in shown and "--out " not in shown


@mock_aws
def test_an_s3_baseline_is_read_from_s3_not_mangled_into_a_path(tmp_path: Path, baseline_dir: Path) -> None:
    """`--baseline s3://b/p` once became `s3:/b/p/statistics.json: no such file` through Path()."""
    import contextlib

    s3 = boto3.client("s3", region_name="us-east-1", config=Config(retries={"max_attempts": 1}))
    s3.create_bucket(Bucket="kit-monitoring-test")
    for name in (files.STATISTICS, files.CONSTRAINTS):
        s3.upload_file(str(baseline_dir / name), "kit-monitoring-test", f"baselines/7/{name}")
    with contextlib.ExitStack() as stack:
        folder = monitor_cli._fetch_baseline(s3, "s3://kit-monitoring-test/baselines/7/", stack)
        assert files.read_baseline(folder) == files.read_baseline(baseline_dir)
        with pytest.raises(
            FileNotFoundError,
            match=r"--baseline s3://kit-monitoring-test/nothing: cannot read s3://kit-monitoring-test/nothing/statistics.json",
        ):
            monitor_cli._fetch_baseline(s3, "s3://kit-monitoring-test/nothing", stack)
    assert not folder.exists()  # removed when the run ends
