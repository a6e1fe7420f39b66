"""The CloudWatch dashboard each environment gets in AWS shows what the repository's Grafana dashboard
shows from the kit's server, from SageMaker's own metrics: each panel has its counterpart by title, or a
stated reason why there is none."""

from __future__ import annotations

import json
import re
from pathlib import Path

from mlops_kit.infra.plans import monitoring as plan

GRAFANA = Path(__file__).resolve().parents[3] / "dashboards" / "grafana" / "mlops-serving.json"

# Grafana panel -> (Prometheus metric it reads, SageMaker metrics its CloudWatch widget must read)
EQUIVALENT = {
    "Invocations": ("mlops_http_request_duration_seconds_count", {"Invocations"}),
    "Errors": ("mlops_http_request_duration_seconds_count", {"Invocation4XXErrors", "Invocation5XXErrors"}),
    "Model latency": ("mlops_http_request_duration_seconds_bucket", {"ModelLatency"}),
}
# What the server knows and SageMaker does not publish: no CloudWatch counterpart, on purpose.
SERVER_ONLY = {
    "Predict time": "SageMaker's ModelLatency includes the predict; it publishes no predict time alone",
    "Model served": "the endpoint's model package is in its settings and the stack's outputs",
    "Data capture": "SageMaker writes capture files itself and publishes no counts of them",
    "Shared predicts": "a property of the kit's server, not of the endpoint",
    "Connections closed on a limit": "the nginx in SageMaker's containers reports none",
    "Workers": "the endpoint's instance count is a setting (serving.instance_count)",
}
# What only AWS has: the monitoring job's drift metrics and alarm go to CloudWatch, not Prometheus.
CLOUDWATCH_ONLY = {"Drift", "Drift alarm"}


def stem(title: str) -> str:
    """A title without its unit: "Model latency (µs)" -> "Model latency"."""
    return re.sub(r"\s*\([^)]*\)$", "", title)


def cloudwatch() -> dict[str, dict]:
    body = plan.dashboard_body(
        region="us-east-1",
        endpoint="kit-dev-endpoint",
        drift_alarm_arn="arn:aws:cloudwatch:us-east-1:123456789012:alarm:kit-dev-drift",
        drift_threshold=0.2,
        features=["amount"],
    )
    return {stem(w["properties"]["title"]): w["properties"] for w in json.loads(body)["widgets"]}


def grafana() -> dict[str, dict]:
    return {p["title"]: p for p in json.loads(GRAFANA.read_text())["panels"]}


def test_every_grafana_panel_has_a_cloudwatch_counterpart_or_a_reason() -> None:
    panels, widgets = grafana(), cloudwatch()
    assert set(panels) == set(EQUIVALENT) | set(SERVER_ONLY), set(panels) ^ (
        set(EQUIVALENT) | set(SERVER_ONLY)
    )
    for title, (prometheus, sagemaker) in EQUIVALENT.items():
        exprs = " ".join(t["expr"] for t in panels[title]["targets"])
        assert prometheus in exprs, (title, exprs)
        assert title in widgets, f"the CloudWatch dashboard has no {title!r} widget"
        read = {m[1] for m in widgets[title]["metrics"] if m[0] == "AWS/SageMaker"}
        assert sagemaker <= read, (title, read)


def test_every_cloudwatch_widget_is_a_grafana_panel_or_aws_only() -> None:
    assert set(cloudwatch()) == set(EQUIVALENT) | CLOUDWATCH_ONLY


def test_latency_panels_show_the_same_percentiles() -> None:
    exprs = " ".join(t["expr"] for t in grafana()["Model latency"]["targets"])
    quantiles = {f"p{round(float(q) * 100)}" for q in re.findall(r"histogram_quantile\(([\d.]+)", exprs)}
    stats = {m[-1]["stat"] for m in cloudwatch()["Model latency"]["metrics"]}
    assert quantiles == stats == {"p50", "p99"}
