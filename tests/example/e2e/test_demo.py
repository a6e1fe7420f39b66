"""The whole lifecycle, end to end on the embedded default, as `make demo` runs it."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest

from mlops_kit.cli import main

ROOT = Path(__file__).resolve().parents[3]
ARN = r"arn:aws:sagemaker:us-east-1:\d{12}:model-package/mlops-kit-local-models/(\d+)"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("demo")
    settings_before = {p.name: p.read_text() for p in (ROOT / "environments").glob("*.yaml")}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLOPS_STATE_DIR", str(folder / "state"))
        code = main(["demo", "--report", str(folder / "demo-report.json")])
    assert code == 0
    report = json.loads((folder / "demo-report.json").read_text())
    return report, folder, settings_before


def test_two_models_were_registered_by_two_pipeline_runs(demo, monkeypatch: pytest.MonkeyPatch) -> None:
    report, folder, _ = demo
    monkeypatch.setenv("MLOPS_STATE_DIR", str(folder / "state"))
    champion, challenger = report["models"]
    assert re.fullmatch(ARN, champion["package_arn"]) and re.fullmatch(ARN, challenger["package_arn"])
    assert champion["package_arn"] != challenger["package_arn"]
    assert champion["pipeline_run"] != challenger["pipeline_run"]
    for model in (champion, challenger):
        assert 0.5 < model["metrics"]["roc_auc"] <= 1.0
    from mlops_kit.executor import load

    first = load(champion["pipeline_run"])
    assert [s.name for s in first.steps if s.status in ("Succeeded", "Cached")] == [
        "Partition", "Prepare", "Features", "Train", "Evaluate", "Profile", "Baseline", "CheckGates", "Register",
    ]  # fmt: skip
    properties = first.step("Register").properties["CustomerMetadataProperties"]
    assert properties["lineage:execution"] == first.execution_id
    assert properties["lineage:code"] == first.code_sha256
    quality = first.step("Register").properties["ModelMetrics"]["ModelDataQuality"]
    assert quality["Statistics"]["S3Uri"].endswith("/Baseline/baseline/statistics.json")


def test_features_were_ingested(demo) -> None:
    report, _, _ = demo
    assert set(report["feature_records"]) == {"customer-profile", "transaction-aggregates"}
    assert all(count > 0 for count in report["feature_records"].values())


def test_each_promotion_passed_its_gates_in_stage_order(demo) -> None:
    report, _, settings_before = demo
    champion, challenger = (m["package_arn"] for m in report["models"])
    assert [(p["stage"], p["package"]) for p in report["promotions"]] == [
        ("dev", champion), ("staging", champion), ("dev", challenger), ("staging", challenger),
    ]  # fmt: skip
    for promotion in report["promotions"]:
        assert promotion["checks"] and all(c["passed"] for c in promotion["checks"])
    # Staging is local-staging, a stage in an emulated account of its own: each model was copied into its
    # registry, and the challenger measured against the copy of the champion the stage served.
    copies = [p for p in report["promotions"] if p["stage"] == "staging"]
    for promoted in copies:
        assert promoted["environment"] == "local-staging" and promoted["account"] == "222222222222"
        assert re.fullmatch(
            r"arn:aws:sagemaker:us-east-1:222222222222:model-package/mlops-kit-local-staging-models/\d+",
            promoted["copy"],
        )
    assert copies[0]["copy"] != copies[1]["copy"]
    assert report["promotions"][3]["champion"] == copies[0]["copy"]
    assert report["promotions"][2]["champion"] == champion  # dev: the stage's own registry
    assert any(c["name"].startswith("gain") for c in report["promotions"][3]["checks"])
    # The promotions rewrote a scratch copy of the settings, never the project's own files.
    assert {p.name: p.read_text() for p in (ROOT / "environments").glob("*.yaml")} == settings_before


def test_traffic_was_captured_and_the_monitor_found_the_drift(demo) -> None:
    report, _, _ = demo
    traffic, monitoring = report["traffic"], report["monitoring"]
    assert traffic["predictions"] == traffic["rows"] > 0
    assert traffic["captured_files"] > 0
    assert monitoring["items"] == traffic["rows"]  # 100 % capture: every row came back
    assert monitoring["drift_score"] > monitoring["threshold"]
    assert monitoring["violations"] > 0 and "baseline_drift_check" in monitoring["violation_checks"]
    assert report["alarm_state"] == "ALARM"
    assert monitoring["retraining"]["started"] is True
    assert monitoring["retraining"]["execution"] == report["models"][1]["pipeline_run"]


def test_the_endpoint_served_the_new_model_and_nothing_is_left_running(demo, monkeypatch) -> None:
    report, folder, _ = demo
    assert report["serving_package_arn"] == report["models"][1]["package_arn"]
    monkeypatch.setenv("MLOPS_STATE_DIR", str(folder / "state"))
    from mlops_kit.serving import local

    assert local.running("mlops-kit-local-endpoint") is None
    port = int(report["endpoint_url"].rsplit(":", 1)[1])
    from mlops_kit.emulator import Emulator

    assert not Emulator(port=port).answers()
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # closed connections may linger
        probe.bind(("127.0.0.1", port))  # nobody listens on the emulator's port any more
    html = (folder / "demo-report.html").read_text()
    assert "Timeline" in html and "challenger" in html and "<svg" in html


def test_the_html_report_compares_on_the_same_rows_lists_the_gates_and_links(demo) -> None:
    from tests import report_html

    report, folder, _ = demo
    page = report_html.read(folder / "demo-report.html")
    comparison = next(t for t in page.tables if "comparison" in t.attrs.get("class", ""))
    rows = comparison.as_dicts()
    assert [r["metric"].replace(" ★ deciding", "") for r in rows] == report["metric_names"]
    deciding = [r for r, c in zip(rows, comparison.row_classes[1:], strict=True) if c == "deciding"]
    assert [r["metric"] for r in deciding] == [f"{report['deciding_metric']} ★ deciding"]
    same = report["promotions"][3]["same_rows"]  # the challenger into staging, against the champion
    first = rows[0]
    assert float(first["champion"]) == pytest.approx(same["champion"][report["metric_names"][0]], abs=1e-4)
    assert float(first["challenger"]) == pytest.approx(same["candidate"][report["metric_names"][0]], abs=1e-4)
    gates = [t for t in page.tables if "gates" in t.attrs.get("class", "")]
    assert len(gates) == len(report["promotions"])
    assert all(len(t.rows) - 1 == len(p["checks"]) for t, p in zip(gates, report["promotions"], strict=True))
    local = [Path(href.removeprefix("file://")) for href, _ in page.links if href.startswith("file://")]
    assert any(p.name == report["models"][1]["pipeline_run"] and p.is_dir() for p in local)
    assert (folder / "demo-report-monitoring" / "run" / "report.html").is_file()
    assert (folder / "demo-report-monitoring" / "run" / "report.html").as_uri() in [h for h, _ in page.links]
    assert "Drift score per day of event time" in page.headings
    # the demo promoted in a scratch copy: the project's local state holds no package of its emulator
    assert not (folder / "state" / "settings").exists()


def test_chromium_renders_the_demo_report(demo, tmp_path: Path) -> None:
    from tests import report_html

    _, folder, _ = demo
    png = report_html.screenshot(folder / "demo-report.html", tmp_path / "demo.png", tmp_path / "profile")
    inked, rightmost = report_html.ink(png)
    assert inked > 0.03 and rightmost > 0.8
