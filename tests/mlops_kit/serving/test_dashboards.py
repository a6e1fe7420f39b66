"""The Grafana dashboard in the repository queries only what the server exports: every metric name and
every label its queries use is in a real server's /metrics answer."""

from __future__ import annotations

import json
import re
from pathlib import Path

from serving_helpers import RunningServer

from mlops_kit.serving import metrics

DASHBOARD = Path(__file__).resolve().parents[3] / "dashboards" / "grafana" / "mlops-serving.json"
# Labels Prometheus adds to every scraped series (the target's), which no server exports itself.
TARGET_LABELS = {"job", "instance"}
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_KEYWORDS = {"and", "or", "unless", "bool", "offset"}


def queries(dashboard: dict) -> list[str]:
    found = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    found += [v["query"] for v in dashboard.get("templating", {}).get("list", []) if "query" in v]
    return found


def names_and_labels(expr: str) -> tuple[set[str], set[str]]:
    """The metric names and label names a PromQL expression refers to."""
    labels = {
        name.strip() for _, group in _GROUPING.findall(expr) for name in group.split(",") if name.strip()
    }
    rest = _GROUPING.sub(" ", expr)
    for matchers in re.findall(r"\{([^}]*)\}", rest):
        labels |= set(re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)", matchers))
    labels |= set(re.findall(r"label_values\(\s*[\w:]+\s*,\s*(\w+)\s*\)", rest))
    rest = re.sub(r"label_values\(\s*([\w:]+)\s*,\s*\w+\s*\)", r" \1 ", rest)
    rest = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\"[^\"]*\"|\$\w+", " ", rest)
    names = {
        token
        for token, call in re.findall(r"([a-zA-Z_:][\w:]*)\s*(\(?)", rest)
        if not call and token not in _KEYWORDS and not re.fullmatch(r"\d.*|e\d+", token)
    }
    return names, labels


def exported(text: str) -> tuple[set[str], set[str]]:
    """Every series name and label name in a /metrics answer."""
    names, labels = set(), set()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series = line.rpartition(" ")[0]
            name, _, rest = series.partition("{")
            names.add(name)
            labels |= set(re.findall(r"(\w+)=\"", rest))
    return names, labels


def test_the_parser_sees_names_and_labels() -> None:
    names, labels = names_and_labels(
        'histogram_quantile(0.99, sum by (le) (rate(mlops_x_bucket{job=~"$job",path="/i"}[$__rate_interval])))'
        " / on (instance) mlops_y + count(label_values(mlops_z, job))"
    )
    assert names == {"mlops_x_bucket", "mlops_y", "mlops_z"}
    assert labels == {"le", "job", "path", "instance"}


def test_every_metric_and_label_the_dashboard_queries_is_exported(server: RunningServer) -> None:
    server.invoke("1,2,3")  # a predict, so every family has its series
    server.request("GET", "/nowhere")
    text = server.request("GET", "/metrics")[2].decode()
    have_names, have_labels = exported(text)
    dashboard = json.loads(DASHBOARD.read_text())
    used_names, used_labels = set(), set()
    for expr in queries(dashboard):
        names, labels = names_and_labels(expr)
        used_names |= names
        used_labels |= labels
    assert used_names, "the dashboard queries nothing"
    assert used_names <= have_names, sorted(used_names - have_names)
    assert used_labels <= have_labels | TARGET_LABELS, sorted(used_labels - have_labels - TARGET_LABELS)
    # and it shows every family the server exports, so a new metric gets a panel or a decision
    families = {n.removesuffix("_bucket").removesuffix("_sum").removesuffix("_count") for n in used_names}
    assert set(metrics.FAMILIES) <= families, sorted(set(metrics.FAMILIES) - families)


def test_a_query_of_a_metric_the_server_does_not_export_is_caught() -> None:
    names, _ = names_and_labels('sum(rate(mlops_serving_request_seconds_count{job=~"$job"}[5m]))')
    assert names == {"mlops_serving_request_seconds_count"}
    assert not names <= exported(metrics.Metrics().render().decode())[0]


def test_panels_have_titles_and_a_prometheus_datasource() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    titles = [p["title"] for p in dashboard["panels"]]
    assert len(titles) == len(set(titles)) and all(titles)
    assert {p["datasource"]["type"] for p in dashboard["panels"]} == {"prometheus"}
