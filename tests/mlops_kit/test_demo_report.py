"""The demo's HTML report, read back as its reader sees it: champion against challenger on the same rows in
one table (the deciding metric marked), every promotion's gates, the embedded drift report, the links;
and rendered by headless Chromium with no network."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_kit import demo
from mlops_kit.monitoring import files
from mlops_kit.usecase import Direction, Metric
from tests import report_html

CHAMPION = "arn:aws:sagemaker:us-east-1:123456789012:model-package/kit-local-models/1"
CHALLENGER = "arn:aws:sagemaker:us-east-1:123456789012:model-package/kit-local-models/2"
METRICS = [
    Metric("roc_auc", Direction.HIGHER),
    Metric("pr_auc", Direction.HIGHER),
    Metric("rmse", Direction.LOWER),
]
# Each model on its own test set (what the registry holds): the challenger looks worse there.
REGISTERED = (
    {"roc_auc": 0.8989, "pr_auc": 0.41, "rmse": 0.30},
    {"roc_auc": 0.8569, "pr_auc": 0.39, "rmse": 0.31},
)
# Both on the challenger's test set (what the gate measured): the challenger is better.
SAME_ROWS = {
    "rows": 3_000,
    "source": "s3://artifacts/runs/2/test.parquet",
    "champion": {"roc_auc": 0.8465, "pr_auc": 0.35, "rmse": 0.33},
    "candidate": {"roc_auc": 0.8569, "pr_auc": 0.39, "rmse": 0.31},
}


def _check(name: str, value, threshold, passed: bool, note: str = "") -> dict:
    return {"name": name, "value": value, "threshold": threshold, "passed": passed, "note": note}


def _report(tmp_path: Path) -> demo.DemoReport:
    report = demo.DemoReport(
        environment="local", metric_names=[m.name for m in METRICS], deciding_metric="roc_auc"
    )
    report.rows = 20_000
    for i, (arn, metrics) in enumerate(zip((CHAMPION, CHALLENGER), REGISTERED, strict=True)):
        report.models.append(
            demo.ModelSummary(
                arn,
                f"exec-{i + 1}",
                metrics,
                model_data_url=f"s3://artifacts/runs/{i + 1}/model.tar.gz",
                run_record=str(tmp_path / "state" / "runs" / f"exec-{i + 1}"),
            )
        )
    gates = [_check("min roc_auc", 0.8569, 0.75, True), _check("max segment_gap", 0.2, 0.15, False)]
    report.promotions = [
        {"stage": "dev", "package": CHAMPION, "champion": None, "checks": [gates[0]], "same_rows": None},
        {
            "stage": "staging",
            "package": CHALLENGER,
            "champion": CHAMPION,
            "checks": [
                *gates,
                _check("gain in roc_auc over champion", 0.0104, 0.0, True, "on the same rows"),
            ],
            "same_rows": SAME_ROWS,
        },
    ]
    report.comparison = demo.comparison(METRICS, "roc_auc", SAME_ROWS)
    report.comparison_basis = {"rows": SAME_ROWS["rows"], "source": SAME_ROWS["source"]}
    report.monitoring = {"drift_score": 0.41, "threshold": 0.2}
    report.alarm_state = "ALARM"
    report.serving_package_arn = CHALLENGER
    report.timeline = [{"stage": "train", "seconds": 10.0}, {"stage": "monitor", "seconds": 2.5}]
    report.locations = {
        "capture": "s3://capture/datacapture/kit-local-endpoint/",
        "HTML report": str(tmp_path / "demo-report.html"),
    }
    return report


def _monitoring_run(folder: Path) -> Path:
    """A scored monitoring run's files, as monitoring.run writes them."""
    histogram = {"edges": [0.0, 10.0, 20.0, 30.0], "baseline": [5, 3, 2], "current": [1, 3, 6]}
    summary = {
        "run_id": "r1",
        "created": "2026-03-03T00:00:00Z",
        "endpoint": "kit-local-endpoint",
        "status": "ok",
        "items": 600,
        "min_rows": 100,
        "window": {"first_event": "2026-03-01T00:00:00Z", "last_event": "2026-03-02T23:00:00Z"},
        "threshold": 0.2,
        "drift_score": 0.41,
        "drifted": True,
        "violations": 1,
        "malformed": {"count": 0, "examples": []},
        "features": [{"name": "amount", "psi": 0.41, "ks": 0.3, "histogram": histogram, "violations": 1}],
        "by_day": [
            {"day": "2026-03-01", "items": 300, "status": "ok", "drift_score": 0.1, "drifted": False},
            {"day": "2026-03-02", "items": 300, "status": "ok", "drift_score": 0.41, "drifted": True},
        ],
        "retrain_on_drift": True,
        "retraining": {"started": True, "execution": "exec-2", "reason": "drift score 0.41 > 0.2"},
        "locations": {"capture": "s3://capture/datacapture/kit-local-endpoint/", "output": str(folder)},
        "quality": None,
    }
    files.write_json(folder / files.RUN, summary)
    return folder


@pytest.fixture
def page(tmp_path: Path) -> tuple[Path, report_html.Page]:
    path = demo.write_html(
        _report(tmp_path), tmp_path / "demo-report.html", _monitoring_run(tmp_path / "run")
    )
    return path, report_html.read(path)


def test_the_comparison_is_one_table_on_the_same_rows_with_the_deciding_metric_marked(page) -> None:
    _, read = page
    table = next(t for t in read.tables if "comparison" in t.attrs.get("class", ""))
    assert table.rows[0] == ["metric", "direction", "champion", "challenger", "gain"]
    rows = table.as_dicts()
    assert [r["metric"] for r in rows] == ["roc_auc ★ deciding", "pr_auc", "rmse"]
    assert [c for c in table.row_classes[1:]] == ["deciding", "metric", "metric"]
    # the same rows' values, never a model's own test set's (0.8989 would read as a regression)
    assert (rows[0]["champion"], rows[0]["challenger"], rows[0]["gain"]) == ("0.8465", "0.8569", "+0.0104")
    assert (rows[2]["champion"], rows[2]["challenger"], rows[2]["gain"]) == ("0.3300", "0.3100", "+0.0200")
    assert "lower is better" in rows[2]["direction"]
    assert "0.8989" not in " ".join(" ".join(r) for r in table.rows)


def test_the_gain_follows_each_metrics_direction() -> None:
    rows = {r["metric"]: r for r in demo.comparison(METRICS, "pr_auc", SAME_ROWS)}
    assert rows["roc_auc"]["gain"] == pytest.approx(0.0104)
    assert rows["rmse"]["gain"] == pytest.approx(0.02)  # lower is better: 0.31 beats 0.33
    assert [m for m, r in rows.items() if r["deciding"]] == ["pr_auc"]
    partial = demo.comparison(METRICS, "roc_auc", {**SAME_ROWS, "candidate": {"roc_auc": 0.9}})
    assert partial[1]["gain"] is None and partial[1]["challenger"] is None


def test_every_promotion_has_its_gate_table(page) -> None:
    _, read = page
    tables = [t for t in read.tables if "gates" in t.attrs.get("class", "")]
    assert len(tables) == 2 and "Promotion gates" in read.headings
    assert all(t.rows[0] == ["gate", "threshold", "value", "result", "note"] for t in tables)
    staging = tables[1].as_dicts()
    assert [(r["gate"], r["threshold"], r["value"], r["result"]) for r in staging] == [
        ("min roc_auc", "0.7500", "0.8569", "pass"),
        ("max segment_gap", "0.1500", "0.2000", "FAIL"),
        ("gain in roc_auc over champion", "0.0000", "0.0104", "pass"),
    ]
    assert tables[1].row_classes[1:] == ["pass", "fail", "pass"]
    assert "to staging: refused" in read.headings and "to dev: approved" in read.headings


def test_the_links_lead_to_runs_packages_capture_and_reports(page, tmp_path: Path) -> None:
    path, read = page
    links = next(t for t in read.tables if "links" in t.attrs.get("class", ""))
    rows = dict(links.rows[:6])
    assert rows["champion's model package"] == CHAMPION and rows["challenger's model package"] == CHALLENGER
    assert (tmp_path / "state" / "runs" / "exec-1").as_uri() in links.links
    assert (tmp_path / "state" / "runs" / "exec-2").as_uri() in links.links
    assert "s3://artifacts/runs/2/model.tar.gz" in links.links
    assert "s3://capture/datacapture/kit-local-endpoint/" in links.links
    assert path.resolve().as_uri() in links.links
    # the embedded drift report brings its own locations, and its charts with labelled axes
    assert (tmp_path / "run" / "report.html").resolve().as_uri() in [h for h, _ in read.links]
    chart = read.chart("drift score per day of event time")
    assert chart.with_class("tick-label") == ["2026-03-01", "2026-03-02"]
    assert read.fetched == [] and read.scripts == 0


def test_chromium_renders_the_demo_report_offline_and_it_is_not_blank(page, tmp_path: Path) -> None:
    path, _ = page
    png = report_html.screenshot(path, tmp_path / "demo.png", tmp_path / "profile")
    inked, rightmost = report_html.ink(png)
    assert inked > 0.03 and rightmost > 0.8
