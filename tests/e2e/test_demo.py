"""The demo, end to end on the embedded default, as `make demo` runs it (smaller data)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mlops_kit.cli import main


def test_demo_registers_a_model_and_leaves_nothing_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report_path = tmp_path / "demo-report.json"
    assert main(["demo", "--rows", "6000", "--report", str(report_path)]) == 0
    out = capsys.readouterr().out
    report = json.loads(report_path.read_text())

    arn = report["model_package_arn"]
    assert re.fullmatch(r"arn:aws:sagemaker:us-east-1:\d{12}:model-package/mlops-kit-local-models/\d+", arn)
    assert arn in out.replace("\n", "").replace("│", "").replace(" ", "")
    assert report["approval_status"] == "PendingManualApproval"
    assert 0.5 < report["metrics"]["roc_auc"] <= 1.0
    assert 0.0 <= report["metrics"]["pr_auc"] <= 1.0
    assert report["raw_data_uri"].startswith("s3://mlops-kit-local-raw-")
    assert [s["stage"] for s in report["timeline"]][0] == "provision the local platform"
    # The model was trained through the pipeline's own definition, and its package carries metrics,
    # baseline and lineage.
    assert "run the training pipeline" in [s["stage"] for s in report["timeline"]]
    from mlops_kit.executor import load

    run = load(report["pipeline_run"])
    assert [s.name for s in run.steps if s.status == "Succeeded"] == [
        "Prepare", "Train", "Evaluate", "Baseline", "CheckGates", "Register",
    ]  # fmt: skip
    package = run.step("Register").properties
    assert package["ModelPackageArn"] == arn
    properties = package["CustomerMetadataProperties"]
    assert float(properties["metric:roc_auc"]) == pytest.approx(report["metrics"]["roc_auc"], abs=1e-4)
    assert properties["lineage:execution"] == run.execution_id
    assert properties["lineage:input"].startswith("s3://mlops-kit-local-raw-")
    assert properties["lineage:code"] == run.code_sha256
    quality = package["ModelMetrics"]["ModelDataQuality"]
    assert quality["Statistics"]["S3Uri"].endswith("/Baseline/baseline/statistics.json")
    assert quality["Constraints"]["S3Uri"].endswith("/Baseline/baseline/constraints.json")
    assert package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"].endswith("/evaluation.json")

    # The demo started its own emulator and stopped it: its port no longer answers.
    from mlops_kit.emulator import Emulator

    assert not Emulator(port=int(report["endpoint_url"].rsplit(":", 1)[1])).answers()
