"""The drift report: one self-contained HTML file (inline SVG, no script, no CDN) for a monitoring run.

It shows the run's verdict, a PSI bar chart against the threshold, the drift score of every run found
under the history folder over time, the violations, baseline-against-current histograms per feature,
model quality when labels arrived, and the malformed capture lines that were skipped.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from mlops_kit.monitoring import files

BASELINE_COLOR = "#7f8c9a"
CURRENT_COLOR = "#2f7ed8"
ALERT_COLOR = "#d9534f"
OK_COLOR = "#3c9a5f"
HOURLY = {"binary": "auc", "multiclass": "accuracy", "regression": "rmse"}  # the by-hour chart per task
_FONT = "font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif"


def write(run_dir: Path, out_file: Path, history: Path | None = None) -> Path:
    """Render the run in `run_dir` (and the history of runs under `history`) to `out_file`, atomically."""
    run_dir = Path(run_dir)
    summary = files.read_json(run_dir / files.RUN)
    violations_file = run_dir / files.VIOLATIONS
    violations = files.read_json(violations_file)["violations"] if violations_file.is_file() else []
    runs = load_history(Path(history) if history else run_dir.parent)
    page = render(summary, violations, runs)
    out_file = Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_file.with_name(f".{out_file.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(out_file)
    return out_file


def load_history(root: Path) -> list[dict[str, Any]]:
    """Every run summary (`run.json`) under `root`, oldest first; unreadable ones are left out."""
    runs = []
    for path in root.rglob(files.RUN):
        try:
            summary = files.read_json(path)
        except (OSError, ValueError):
            continue
        if isinstance(summary, dict) and "created" in summary:
            runs.append(summary)
    return sorted(runs, key=lambda r: (r.get("window", {}).get("last_event") or r["created"], r["created"]))


def render(summary: dict[str, Any], violations: list[dict[str, str]], history: list[dict[str, Any]]) -> str:
    e = html.escape
    threshold = float(summary["threshold"])
    score = summary.get("drift_score")
    drifted = bool(summary.get("drifted"))
    verdict = (
        "no data in this window"
        if summary["status"] == "no_data"
        else ("drift detected" if drifted else "no drift above the threshold")
    )
    color = ALERT_COLOR if drifted else (BASELINE_COLOR if summary["status"] == "no_data" else OK_COLOR)
    window = summary.get("window") or {}
    facts = [
        ("endpoint", summary.get("endpoint") or "-"),
        ("items", f"{summary['items']:,}"),
        ("events", f"{window.get('first_event') or '-'} to {window.get('last_event') or '-'}"),
        ("drift score (max PSI)", "n/a" if score is None else f"{score:.4f}"),
        ("threshold", f"{threshold:g}"),
        ("violations", str(summary["violations"])),
        ("malformed lines skipped", str(summary["malformed"]["count"])),
        ("retraining", _retraining(summary.get("retraining"))),
        ("run", f"{summary['run_id']} at {summary['created']}"),
    ]
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Drift report: {e(summary.get('endpoint') or 'endpoint')}</title>",
        f"<style>body{{{_FONT};margin:2em;color:#222;max-width:1100px}}table{{border-collapse:collapse}}"
        "td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}"
        "h2{margin-top:1.6em}.verdict{display:inline-block;padding:4px 12px;border-radius:4px;color:#fff}"
        ".grid{display:flex;flex-wrap:wrap;gap:18px}.grid figure{margin:0}</style></head><body>",
        "<h1>Drift report</h1>",
        f"<p><span class='verdict' style='background:{color}'>{e(verdict)}</span></p>",
        "<table>" + "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in facts) + "</table>",
    ]
    compared = [f for f in summary["features"] if "psi" in f]
    if compared:
        parts.append("<h2>PSI per feature</h2>")
        parts.append(psi_chart([(f["name"], float(f["psi"])) for f in compared], threshold))
    series = [(r.get("window", {}).get("last_event") or r["created"], r.get("drift_score")) for r in history]
    if any(v is not None for _, v in series):
        parts.append("<h2>Drift score over time</h2>")
        parts.append(line_chart(series, threshold, label="drift score"))
    parts.append("<h2>Violations</h2>")
    if violations:
        rows = "".join(
            f"<tr><td>{e(v['feature_name'])}</td><td>{e(v['constraint_check_type'])}</td>"
            f"<td>{e(v['description'])}</td></tr>"
            for v in violations
        )
        parts.append(f"<table><tr><th>feature</th><th>check</th><th>description</th></tr>{rows}</table>")
    else:
        parts.append("<p>None.</p>")
    if compared:
        parts.append(
            "<h2>Baseline against current</h2><p>Share of values per bucket: "
            f"<span style='color:{BASELINE_COLOR}'>&#9632; baseline</span> "
            f"<span style='color:{CURRENT_COLOR}'>&#9632; current</span></p><div class='grid'>"
        )
        for feature in compared:
            if "histogram" in feature:
                parts.append(histogram(feature))
        parts.append("</div>")
    quality = summary.get("quality")
    if quality:
        task = quality.get("task", "binary")
        parts.append(f"<h2>Model quality ({e(task)})</h2>")
        if quality.get("error"):
            parts.append(f"<p>Not measured: {e(quality['error'])}</p>")
        else:
            # The task's own metrics, as run.json lists them: never an accuracy for a regression.
            shown = [(k, v) for k, v in quality.items() if k not in ("task", "by_hour", "recall_by_class")]
            shown += [(f"recall of {c}", v) for c, v in (quality.get("recall_by_class") or {}).items()]
            parts.append(
                "<table>"
                + "".join(
                    f"<tr><th>{e(k)}</th><td>{'-' if v is None else f'{v:.4g}'}</td></tr>" for k, v in shown
                )
                + "</table>"
            )
            metric = HOURLY.get(task, "auc")
            hourly = [(h["start"], h.get(metric)) for h in quality.get("by_hour", [])]
            if any(v is not None for _, v in hourly):
                parts.append(line_chart(hourly, None, label=f"{metric} by hour"))
    problems = summary["malformed"]["examples"]
    if problems:
        parts.append(f"<h2>Malformed capture lines ({summary['malformed']['count']})</h2><ul>")
        parts.extend(f"<li><code>{e(p)}</code></li>" for p in problems)
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _retraining(info: dict[str, Any] | None) -> str:
    if not info:
        return "not needed"
    if info.get("started"):
        return f"started ({info.get('execution')}): {info.get('reason')}"
    return f"not started: {info.get('error') or info.get('reason')}"


# --- charts -----------------------------------------------------------------------------------------


def psi_chart(items: list[tuple[str, float]], threshold: float) -> str:
    """Horizontal bars of PSI per feature, with the threshold as a dashed line."""
    e = html.escape
    label_w, bar_w, row_h = 180, 420, 22
    top = max([threshold * 1.25] + [v for _, v in items])
    height = row_h * len(items) + 30

    def x(v: float) -> float:
        return label_w + bar_w * min(v, top) / top

    body = []
    for i, (name, value) in enumerate(items):
        y = 10 + i * row_h
        fill = ALERT_COLOR if value > threshold else CURRENT_COLOR
        body.append(
            f"<text x='{label_w - 6}' y='{y + 14}' text-anchor='end' font-size='12'>{e(name)}</text>"
            f"<rect x='{label_w}' y='{y + 3}' width='{x(value) - label_w:.1f}' height='{row_h - 6}' fill='{fill}'>"
            f"<title>{e(name)}: PSI {value:.4f}</title></rect>"
            f"<text x='{x(value) + 4:.1f}' y='{y + 14}' font-size='11'>{value:.3f}</text>"
        )
    tx = x(threshold)
    body.append(
        f"<line x1='{tx:.1f}' x2='{tx:.1f}' y1='5' y2='{height - 18}' stroke='{ALERT_COLOR}' stroke-dasharray='4 3'/>"
        f"<text x='{tx:.1f}' y='{height - 4}' font-size='11' text-anchor='middle'>threshold {threshold:g}</text>"
    )
    return _svg(label_w + bar_w + 60, height, body, "PSI per feature")


def line_chart(points: list[tuple[str, float | None]], threshold: float | None, label: str) -> str:
    """A line over time (one point per run or hour), with an optional threshold line."""
    e = html.escape
    width, height, left, bottom = 640, 220, 50, 40
    values = [v for _, v in points if v is not None]
    top = max(values + ([threshold * 1.25] if threshold else [])) or 1.0
    n = len(points)

    def x(i: int) -> float:
        return left + (width - left - 20) * (i / (n - 1) if n > 1 else 0.5)

    def y(v: float) -> float:
        return 10 + (height - bottom - 10) * (1 - v / top)

    body = [
        f"<line x1='{left}' x2='{left}' y1='10' y2='{height - bottom}' stroke='#999'/>",
        f"<line x1='{left}' x2='{width - 20}' y1='{height - bottom}' y2='{height - bottom}' stroke='#999'/>",
        f"<text x='{left - 6}' y='14' font-size='11' text-anchor='end'>{top:.2g}</text>",
        f"<text x='{left - 6}' y='{height - bottom}' font-size='11' text-anchor='end'>0</text>",
    ]
    coords = [(x(i), y(v), t, v) for i, (t, v) in enumerate(points) if v is not None]
    if len(coords) > 1:
        path = " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy, _, _ in coords)
        body.append(f"<polyline points='{path}' fill='none' stroke='{CURRENT_COLOR}' stroke-width='2'/>")
    for cx, cy, t, v in coords:
        fill = ALERT_COLOR if threshold is not None and v > threshold else CURRENT_COLOR
        body.append(
            f"<circle cx='{cx:.1f}' cy='{cy:.1f}' r='4' fill='{fill}'><title>{e(t)}: {v:.4f}</title></circle>"
        )
    if coords:
        body.append(f"<text x='{left}' y='{height - 8}' font-size='11'>{e(str(points[0][0]))}</text>")
        body.append(
            f"<text x='{width - 20}' y='{height - 8}' font-size='11' text-anchor='end'>{e(str(points[-1][0]))}</text>"
        )
    if threshold is not None:
        ty = y(threshold)
        body.append(
            f"<line x1='{left}' x2='{width - 20}' y1='{ty:.1f}' y2='{ty:.1f}' stroke='{ALERT_COLOR}' "
            f"stroke-dasharray='4 3'/><text x='{width - 20}' y='{ty - 4:.1f}' font-size='11' "
            f"text-anchor='end'>threshold {threshold:g}</text>"
        )
    return _svg(width, height, body, label)


def histogram(feature: dict[str, Any]) -> str:
    """Grouped bars: the baseline's and the window's share of values per bucket of the baseline."""
    e = html.escape
    hist = feature["histogram"]
    base = [float(v) for v in hist["baseline"]]
    current = [float(v) for v in hist["current"]]
    if "values" in hist:
        labels = [str(v) for v in hist["values"]]
    else:
        edges = hist["edges"]
        labels = [f"{edges[i]:.4g}-{edges[i + 1]:.4g}" for i in range(len(edges) - 1)]
        outside = hist.get("below", 0) + hist.get("above", 0)
        if outside:
            labels.append("outside")
            base.append(0.0)
            current.append(float(outside))
    base_total, current_total = sum(base) or 1.0, sum(current) or 1.0
    base_share = [v / base_total for v in base]
    current_share = [v / current_total for v in current]
    width, height, bottom = 320, 180, 30
    top = max(base_share + current_share) or 1.0
    slot = (width - 20) / max(len(labels), 1)
    bar = max(slot / 2 - 2, 1)
    body = []
    for i, name in enumerate(labels):
        x0 = 10 + i * slot
        for j, (share, color) in enumerate(
            ((base_share[i], BASELINE_COLOR), (current_share[i], CURRENT_COLOR))
        ):
            h = (height - bottom - 20) * share / top
            kind = "baseline" if j == 0 else "current"
            body.append(
                f"<rect x='{x0 + j * bar:.1f}' y='{height - bottom - h:.1f}' width='{bar:.1f}' height='{h:.1f}' "
                f"fill='{color}'><title>{e(name)} ({kind}): {share:.2%}</title></rect>"
            )
    psi = feature.get("psi")
    distance = feature.get("ks", feature.get("linf"))
    metric = "KS" if "ks" in feature else "L-inf"
    caption = f"{feature['name']}: PSI {psi:.3f}" + (
        f", {metric} {distance:.3f}" if distance is not None else ""
    )
    body.append(f"<text x='10' y='14' font-size='12'>{e(caption)}</text>")
    if labels:
        body.append(f"<text x='10' y='{height - 10}' font-size='10'>{e(labels[0])}</text>")
        body.append(
            f"<text x='{width - 10}' y='{height - 10}' font-size='10' text-anchor='end'>{e(labels[-1])}</text>"
        )
    return f"<figure>{_svg(width, height, body, caption)}</figure>"


def _svg(width: float, height: float, body: list[str], title: str) -> str:
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width:.0f}' height='{height:.0f}' "
        f"viewBox='0 0 {width:.0f} {height:.0f}' role='img' aria-label='{html.escape(title)}'>"
        + "".join(body)
        + "</svg>"
    )
