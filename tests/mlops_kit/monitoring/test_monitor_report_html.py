"""The drift report as its reader sees it: read back with an HTML parser (tables, axes, bucket names,
links) and rendered by headless Chromium with no network; and the minimum window below which a run
says "insufficient data" instead of scoring."""

from __future__ import annotations

from pathlib import Path

import pytest
from monitor_helpers import FEATURES, PREDICTION, transactions, write_capture

from mlops_kit.monitoring import files, report
from mlops_kit.monitoring import run as monitor
from tests import report_html

DAY1, DAY2, DAY3 = "2026-03-01", "2026-03-02", "2026-03-03"
PACKAGE = "arn:aws:sagemaker:us-east-1:123456789012:model-package/m/3"


def _three_days(folder: Path, small_day: int = 30) -> Path:
    """A capture over three days: a calm one, a drifted one, and one too small to score (drifted too)."""
    write_capture(folder / "a.jsonl", transactions(1_200, seed=81), start=f"{DAY1}T08:00:00Z")
    write_capture(folder / "b.jsonl", transactions(1_200, seed=82, drifted=True), start=f"{DAY2}T08:00:00Z")
    write_capture(
        folder / "c.jsonl", transactions(small_day, seed=83, drifted=True), start=f"{DAY3}T08:00:00Z"
    )
    return folder


class Recorder:
    """A CloudWatch client that keeps what it is sent."""

    def __init__(self) -> None:
        self.data: list[dict] = []

    def put_metric_data(self, **request) -> dict:
        self.data.extend(request["MetricData"])
        return {}


@pytest.fixture
def three_days(tmp_path: Path, baseline_dir: Path) -> tuple[Path, Path]:
    out = tmp_path / "runs" / "r1"
    monitor.run(
        baseline_dir,
        _three_days(tmp_path / "capture"),
        out,
        endpoint="ep",
        min_rows=100,
        retrain_on_drift=False,
        package=PACKAGE,
    )
    return out, report.write(out, tmp_path / "report.html")


def test_drift_is_scored_per_day_of_event_time_and_a_small_day_is_not(three_days) -> None:
    out, _ = three_days
    days = files.read_json(out / files.RUN)["by_day"]
    assert [(d["day"], d["items"], d["status"]) for d in days] == [
        (DAY1, 1_200, "ok"),
        (DAY2, 1_200, "ok"),
        (DAY3, 30, "insufficient_data"),
    ]
    assert days[0]["drift_score"] < 0.2 < days[1]["drift_score"]
    assert days[0]["drifted"] is False and days[1]["drifted"] is True
    assert days[2]["drift_score"] is None and days[2]["drifted"] is False


def test_the_day_chart_names_every_day_labels_both_axes_and_a_small_day_sets_no_scale(
    three_days, tmp_path: Path, baseline_dir: Path
) -> None:
    out, path = three_days
    page = report_html.read(path)
    assert "Drift score per day of event time" in page.headings
    chart = page.chart("drift score per day of event time")
    assert chart.with_class("tick-label") == [DAY1, DAY2, DAY3]
    assert chart.with_class("axis-label") == ["drift score (max PSI)", "event day (UTC)"]
    scale = [float(t.words) for t in chart.texts if t.attrs.get("text-anchor") == "end" and _number(t.words)]
    days = files.read_json(out / files.RUN)["by_day"]
    assert scale[0] == 0 and len(scale) >= 3
    # The scale is the scored days' (and the threshold's): the small, drifted day would be far above it.
    assert scale[-1] == report.nice_ticks(max(days[1]["drift_score"], 0.2 * 1.25))[-1]
    alone = monitor.evaluate(
        *files.read_baseline(baseline_dir),
        _window(tmp_path, 30, seed=83),
        min_rows=1,
    )
    assert alone.drift_score > scale[-1]
    hollow = [a for tag, a in chart.shapes if tag == "circle" and a.get("class") == "insufficient"]
    assert len(hollow) == 1
    table = page.table_after("Drift score per day of event time", "days")
    assert table.as_dicts()[2] == {"day (UTC)": DAY3, "rows": "30", "drift score": "insufficient data"}
    assert float(table.as_dicts()[1]["drift score"]) == pytest.approx(days[1]["drift_score"], abs=1e-4)


def test_every_histogram_names_each_bucket_and_has_a_scaled_labelled_y_axis(three_days) -> None:
    out, path = three_days
    page = report_html.read(path)
    features = {f["name"]: f for f in files.read_json(out / files.RUN)["features"] if "histogram" in f}
    assert set(features) == {*FEATURES, PREDICTION}
    for name, feature in features.items():
        [chart] = [c for c in page.charts if c.label.startswith(f"{name}: PSI")]
        labels, _, _ = report.bucket_labels(feature["histogram"])
        assert len(labels) >= 2
        assert chart.with_class("bucket") == labels  # every bucket, not the first and the last
        axis = chart.with_class("axis-label")
        assert axis[0] == "share of values" and axis[1].startswith(name)
        percent = [t.words for t in chart.texts if t.words.endswith("%") and t.words[:-1].isdigit()]
        assert percent[0] == "0%" and len(percent) >= 3


def test_the_psi_chart_has_a_labelled_scale(three_days) -> None:
    _, path = three_days
    chart = report_html.read(path).chart("PSI per feature")
    assert "PSI (population stability index)" in chart.with_class("axis-label")
    assert [t.words for t in chart.texts if t.words in FEATURES] == [*FEATURES]


def test_the_locations_are_links_to_the_run_capture_baseline_and_report(
    three_days, tmp_path: Path, baseline_dir: Path
) -> None:
    out, path = three_days
    page = report_html.read(path)
    table = next(t for t in page.tables if "links" in t.attrs.get("class", ""))
    rows = {row[0]: row[1] for row in table.rows}
    assert rows["model package"] == PACKAGE
    assert set(table.links) == {
        out.resolve().as_uri(),
        (tmp_path / "capture").resolve().as_uri(),
        baseline_dir.resolve().as_uri(),
        path.resolve().as_uri(),
    }
    assert report.link("s3://bucket/datacapture/ep/") == (
        "<a href='s3://bucket/datacapture/ep/'><code>s3://bucket/datacapture/ep/</code></a>"
    )


def test_retraining_reads_off_when_it_is_off_and_not_needed_only_when_on(
    tmp_path: Path, baseline_dir: Path
) -> None:
    source = tmp_path / "capture"
    write_capture(source / "a.jsonl", transactions(1_200, seed=81), start=f"{DAY1}T08:00:00Z")
    for retrain, words in ((False, "off (monitoring.retrain_on_drift)"), (True, "not needed")):
        out = tmp_path / str(retrain)
        monitor.run(baseline_dir, source, out, endpoint="ep", retrain_on_drift=retrain, trigger=lambda _: "x")
        rows = dict(r for r in report_html.read(report.write(out, out / "r.html")).tables[0].rows)
        assert rows["retraining"] == words


@pytest.mark.parametrize(("rows", "scored"), [(99, False), (100, True)])
def test_the_minimum_window_at_its_boundary(
    tmp_path: Path, baseline_dir: Path, rows: int, scored: bool
) -> None:
    """One row fewer than the minimum: insufficient data, no score, no violation, no drift metric, no
    retraining, even when every row drifted; the minimum itself is scored."""
    source = tmp_path / "capture"
    write_capture(source / "a.jsonl", transactions(rows, seed=85, drifted=True), start=f"{DAY1}T08:00:00Z")
    started: list[str] = []
    cloudwatch = Recorder()
    outcome = monitor.run(
        baseline_dir,
        source,
        tmp_path / "out",
        endpoint="ep",
        min_rows=100,
        retrain_on_drift=True,
        trigger=lambda _: started.append("run") or "run-1",
        cloudwatch=cloudwatch,
    )
    names = {d["MetricName"] for d in cloudwatch.data}
    page = report_html.read(report.write(tmp_path / "out", tmp_path / "r.html"))
    verdict = "insufficient data: 99 rows, fewer than the 100 a window needs to be scored"
    [day] = outcome.summary["by_day"]  # the same minimum holds for a day of the window
    assert (day["items"], day["status"], day["drift_score"] is not None) == (
        rows,
        "ok" if scored else "insufficient_data",
        scored,
    )
    if scored:
        assert outcome.status == "ok" and outcome.drift_score > 0.2 and outcome.violations
        assert started == ["run"] and {"drift_score", "feature_psi", "prediction_psi"} <= names
        assert "PSI per feature" in page.headings
    else:
        assert outcome.status == "insufficient_data" and outcome.drift_score is None
        assert outcome.violations == [] and not outcome.drifted and started == []
        assert names and not names & {"drift_score", "feature_psi", "prediction_psi"}
        assert files.read_json(tmp_path / "out" / files.VIOLATIONS)["violations"] == []
        assert "PSI per feature" not in page.headings and not [c for c in page.charts if "PSI" in c.label]
        assert verdict in report.verdict(outcome.summary)[0]
        assert dict(r for r in page.tables[0].rows)["retraining"] == "not needed: the window was not scored"


def test_a_minimum_below_one_is_refused(baseline_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="min_rows must be at least 1, got 0"):
        monitor.evaluate(*files.read_baseline(baseline_dir), _window(tmp_path, 5, seed=86), min_rows=0)


def test_the_page_uses_the_full_width_and_fetches_nothing(three_days) -> None:
    _, path = three_days
    page = report_html.read(path)
    assert page.fetched == [] and page.scripts == 0
    css = "".join(page.styles)
    assert "max-width" not in css.split("svg.chart")[0]  # the body is not narrowed
    assert all(c.label for c in page.charts)


def test_chromium_renders_the_report_offline_and_it_is_not_blank(three_days, tmp_path: Path) -> None:
    _, path = three_days
    png = report_html.screenshot(path, tmp_path / "report.png", tmp_path / "profile")
    inked, rightmost = report_html.ink(png)
    assert inked > 0.03  # text, tables and charts: not an empty page
    assert rightmost > 0.8  # the charts reach across the page, not a third of it


def _window(tmp_path: Path, rows: int, seed: int):
    from mlops_kit.monitoring import capture, stats

    source = tmp_path / f"w{seed}-{rows}"
    write_capture(source / "a.jsonl", transactions(rows, seed=seed, drifted=True), start=f"{DAY3}T08:00:00Z")
    baseline_statistics = files.read_json(source.parent / "baseline" / files.STATISTICS)
    return capture.read(source, stats.input_features(baseline_statistics))


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize(("rows", "state"), [(99, "OK"), (100, "ALARM")])
def test_an_insufficient_window_raises_no_drift_alarm(
    tmp_path: Path, baseline_dir: Path, rows: int, state: str
) -> None:
    import boto3
    from botocore.config import Config
    from moto import mock_aws

    from mlops_kit.monitoring import metrics

    source = tmp_path / "capture"
    write_capture(source / "a.jsonl", transactions(rows, seed=85, drifted=True), start=f"{DAY1}T08:00:00Z")
    with mock_aws():
        cloudwatch = boto3.client(
            "cloudwatch", region_name="us-east-1", config=Config(retries={"max_attempts": 1})
        )
        cloudwatch.put_metric_alarm(**metrics.drift_alarm("ep-drift", "ep", 0.2))
        monitor.run(
            baseline_dir, source, tmp_path / "out", endpoint="ep", min_rows=100, cloudwatch=cloudwatch
        )
        assert metrics.evaluate_alarms(cloudwatch, prefix="ep-drift") == {"ep-drift": state}


def test_the_alarm_evaluation_counts_a_datapoint_of_its_own_second() -> None:
    """GetMetricStatistics drops its end time's fraction of a second: a drift score put earlier in that
    second still counts (the monitor evaluates its alarm right after putting it)."""
    import datetime as dt

    import boto3
    from botocore.config import Config
    from moto import mock_aws

    from mlops_kit.monitoring import metrics

    now = dt.datetime.now(dt.UTC).replace(microsecond=600_000)
    with mock_aws():
        cloudwatch = boto3.client(
            "cloudwatch", region_name="us-east-1", config=Config(retries={"max_attempts": 1})
        )
        cloudwatch.put_metric_alarm(**metrics.drift_alarm("ep-drift", "ep", 0.2))
        metrics.put(
            cloudwatch,
            metrics.metric_data(
                "ep",
                now - dt.timedelta(microseconds=100_000),
                items=1,
                malformed=0,
                violations=0,
                drift_score=0.9,
                feature_psi={},
            ),
        )
        assert metrics.evaluate_alarms(cloudwatch, prefix="ep-drift", now=now) == {"ep-drift": "ALARM"}
