"""The drift report: one self-contained HTML file (inline CSS and SVG, no script, no CDN) for a monitoring run.

It shows the run's verdict and where its inputs and outputs are, the PSI of each feature against the
threshold, the drift score per day of the window's event time, the violations, baseline-against-current
histograms per feature with every bucket named, model quality when labels arrived, the malformed capture
lines that were skipped, and the earlier runs found under the history folder. A window or a day with too
few rows to score says "insufficient data" and sets no chart's scale.

Why the days are the window's own and not merged with earlier runs': a run's summary holds each day's
score, not its counts, so an hourly schedule's runs could only be pasted side by side, each hour standing
for its whole day. Earlier runs are listed, each with its own window.

Every chart has both axes labelled, the value axis with a scale. `page` and `sections` are shared with the
demo's report, which embeds the drift report in its own page.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

from mlops_kit.monitoring import files

BASELINE_COLOR = "#7f8c9a"
CURRENT_COLOR = "#2f7ed8"
ALERT_COLOR = "#d9534f"
OK_COLOR = "#3c9a5f"
MUTED_COLOR = "#b8bec6"
HOURLY = {"binary": "auc", "multiclass": "accuracy", "regression": "rmse"}  # the by-hour chart per task
OK, NO_DATA, INSUFFICIENT = "ok", "no_data", "insufficient_data"  # monitoring.run's statuses
EARLIER_RUNS = 30  # the newest earlier runs listed
_FONT = "font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif"
STYLE = (
    f"body{{{_FONT};margin:1.5em 2em;color:#222}}"
    "table{border-collapse:collapse;margin:.4em 0}"
    "td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}"
    "td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}"
    "tr.deciding{background:#fff7d6}tr.fail td{color:" + ALERT_COLOR + "}"
    "h2{margin-top:1.6em;border-bottom:1px solid #eee;padding-bottom:.2em}"
    ".verdict{display:inline-block;padding:4px 12px;border-radius:4px;color:#fff}"
    ".bar{background:" + CURRENT_COLOR + ";height:12px;min-width:2px}"
    "svg.chart{display:block;width:100%;height:auto;max-height:460px}"
    ".grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(460px,1fr));gap:18px}"
    ".grid figure{margin:0}.grid svg{width:100%;height:auto}"
    "code{font-size:.92em;word-break:break-all}.pass{color:" + OK_COLOR + "}.fail{color:" + ALERT_COLOR + "}"
)


def write(run_dir: Path, out_file: Path, history: Path | None = None) -> Path:
    """Render the run in `run_dir` (and the history of runs under `history`) to `out_file`, atomically."""
    out_file = Path(out_file)
    content = sections(run_dir, history, location=out_file)
    summary = files.read_json(Path(run_dir) / files.RUN)
    page_text = page(
        f"Drift report: {summary.get('endpoint') or 'endpoint'}", "<h1>Drift report</h1>" + content
    )
    out_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_file.with_name(f".{out_file.name}.tmp")
    tmp.write_text(page_text, encoding="utf-8")
    tmp.replace(out_file)
    return out_file


def sections(run_dir: Path, history: Path | None = None, location: Path | None = None) -> str:
    """The report's body for the run in `run_dir`; `location` is where the report itself is written."""
    run_dir = Path(run_dir)
    summary = files.read_json(run_dir / files.RUN)
    violations_file = run_dir / files.VIOLATIONS
    violations = files.read_json(violations_file)["violations"] if violations_file.is_file() else []
    runs = load_history(Path(history) if history else run_dir.parent)
    return body(summary, violations, runs, location=location)


def page(title: str, content: str) -> str:
    """A whole self-contained page around `content`."""
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>\n"
        f"{content}\n</body></html>\n"
    )


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


def render(
    summary: dict[str, Any],
    violations: list[dict[str, str]],
    history: list[dict[str, Any]],
    location: Path | None = None,
) -> str:
    """The whole page of one run."""
    title = f"Drift report: {summary.get('endpoint') or 'endpoint'}"
    return page(title, "<h1>Drift report</h1>" + body(summary, violations, history, location))


def verdict(summary: dict[str, Any]) -> tuple[str, str]:
    """(what the run found, in words; its colour)."""
    status = summary["status"]
    if status == NO_DATA:
        return "no data in this window", BASELINE_COLOR
    if status == INSUFFICIENT:
        return (
            f"insufficient data: {summary['items']:,} rows, fewer than the {summary.get('min_rows')} "
            "a window needs to be scored",
            BASELINE_COLOR,
        )
    if summary.get("drifted"):
        return "drift detected", ALERT_COLOR
    return "no drift above the threshold", OK_COLOR


def body(
    summary: dict[str, Any],
    violations: list[dict[str, str]],
    history: list[dict[str, Any]],
    location: Path | None = None,
) -> str:
    e = html.escape
    threshold = float(summary["threshold"])
    score = summary.get("drift_score")
    words, color = verdict(summary)
    window = summary.get("window") or {}
    facts = [
        ("endpoint", summary.get("endpoint") or "-"),
        ("items", f"{summary['items']:,}"),
        ("events", f"{window.get('first_event') or '-'} to {window.get('last_event') or '-'}"),
        ("drift score (max PSI)", "n/a" if score is None else f"{score:.4f}"),
        ("threshold", f"{threshold:g}"),
        ("minimum window", f"{summary['min_rows']:,} rows" if summary.get("min_rows") else "-"),
        ("violations", str(summary["violations"])),
        ("malformed lines skipped", str(summary["malformed"]["count"])),
        ("retraining", retraining(summary)),
        ("run", f"{summary['run_id']} at {summary['created']}"),
    ]
    parts = [
        f"<p><span class='verdict' style='background:{color}'>{e(words)}</span></p>",
        "<table>" + "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in facts) + "</table>",
        locations_table(_locations(summary, location)),
    ]
    compared = [f for f in summary["features"] if "psi" in f] if summary["status"] == OK else []
    if compared:
        parts.append("<h2>PSI per feature</h2>")
        parts.append(psi_chart([(f["name"], float(f["psi"])) for f in compared], threshold))
    days = summary.get("by_day") or []
    if days:
        parts.append("<h2>Drift score per day of event time</h2>")
        parts.append(
            "<p>Each day's requests (by their capture's <code>inferenceTime</code>, UTC) scored on their own "
            f"against the baseline; a day with fewer than {summary.get('min_rows') or 1:,} rows is not scored.</p>"
        )
        if len(days) == 1:
            parts.append(
                f"<p>Every request of this window was served on {e(days[0]['day'])}: the chart gains a day as "
                "capture accumulates (a replay sent in minutes, as the demo's, is one day).</p>"
            )
        parts.append(day_chart(days, threshold))
        parts.append(day_table(days))
    parts.append("<h2>Violations</h2>")
    if violations:
        rows = "".join(
            f"<tr><td>{e(v['feature_name'])}</td><td>{e(v['constraint_check_type'])}</td>"
            f"<td>{e(v['description'])}</td></tr>"
            for v in violations
        )
        parts.append(f"<table><tr><th>feature</th><th>check</th><th>description</th></tr>{rows}</table>")
    elif summary["status"] == INSUFFICIENT:
        parts.append("<p>None: the window was too small to check.</p>")
    else:
        parts.append("<p>None.</p>")
    if compared:
        parts.append(
            "<h2>Baseline against current</h2><p>Share of values per bucket of the baseline: "
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
                    f"<tr><th>{e(k)}</th><td class='num'>{'-' if v is None else f'{v:.4g}'}</td></tr>"
                    for k, v in shown
                )
                + "</table>"
            )
            metric = HOURLY.get(task, "auc")
            hourly = [(h["start"], h.get(metric)) for h in quality.get("by_hour", [])]
            if any(v is not None for _, v in hourly):
                parts.append(
                    line_chart(hourly, None, y_label=metric, x_label="hour (UTC)", title=f"{metric} by hour")
                )
    problems = summary["malformed"]["examples"]
    if problems:
        parts.append(f"<h2>Malformed capture lines ({summary['malformed']['count']})</h2><ul>")
        parts.extend(f"<li><code>{e(p)}</code></li>" for p in problems)
        parts.append("</ul>")
    earlier = [r for r in history if r.get("run_id") != summary.get("run_id")]
    if earlier:
        parts.append("<h2>Earlier runs</h2>")
        parts.append(runs_table(earlier[::-1][:EARLIER_RUNS]))
    return "\n".join(parts)


def runs_table(runs: list[dict[str, Any]]) -> str:
    """Each run: when, the events of its window, its rows, and its score or why it has none."""
    e = html.escape
    rows = []
    for run in runs:
        window = run.get("window") or {}
        score = run.get("drift_score")
        status = run.get("status", OK)
        shown = (
            f"{score:.4f}"
            if score is not None
            else {NO_DATA: "no data", INSUFFICIENT: "insufficient data"}.get(status, "n/a")
        )
        rows.append(
            f"<tr><td>{e(str(run.get('created', '')))}</td>"
            f"<td>{e(str(window.get('first_event') or '-'))} to {e(str(window.get('last_event') or '-'))}</td>"
            f"<td class='num'>{run.get('items', 0):,}</td><td class='num'>{e(shown)}</td></tr>"
        )
    return (
        "<table class='runs'><tr><th>run at</th><th>events</th><th class='num'>rows</th>"
        f"<th class='num'>drift score</th></tr>{''.join(rows)}</table>"
    )


def retraining(summary: dict[str, Any]) -> str:
    """What became of retraining: started, not started (why), off, or not needed."""
    info = summary.get("retraining")
    if info:
        if info.get("started"):
            return f"started ({info.get('execution')}): {info.get('reason')}"
        return f"not started: {info.get('error') or info.get('reason')}"
    if summary.get("retrain_on_drift") is False:
        return "off (monitoring.retrain_on_drift)"
    if summary["status"] != OK:
        return "not needed: the window was not scored"
    return "not needed"


def _locations(summary: dict[str, Any], report: Path | None) -> list[tuple[str, str]]:
    where = summary.get("locations") or {}
    found = [
        ("run output", where.get("output")),
        ("model package", where.get("package")),
        ("capture", where.get("capture")),
        ("baseline", where.get("baseline")),
        ("ground truth", where.get("ground_truth")),
        ("this report", str(Path(report).resolve()) if report else None),
    ]
    return [(k, v) for k, v in found if v]


def locations_table(items: list[tuple[str, str]]) -> str:
    """Where things are, each a link: s3:// URIs and files as themselves, ARNs as text."""
    if not items:
        return ""
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{link(v)}</td></tr>" for k, v in items)
    return f"<h2>Locations</h2><table class='links'>{rows}</table>"


def link(location: str) -> str:
    """An anchor for a location: `s3://` as is, a local path as `file://`; an ARN (no URL) as code."""
    e = html.escape
    if location.startswith("arn:"):
        return f"<code>{e(location)}</code>"
    href = location if location.startswith(("s3://", "file://")) else Path(location).resolve().as_uri()
    return f"<a href='{e(href, quote=True)}'><code>{e(location)}</code></a>"


# --- charts -----------------------------------------------------------------------------------------


def nice_ticks(top: float, count: int = 5) -> list[float]:
    """0 and round steps (1, 2, 2.5 or 5 times a power of ten) up to at least `top`."""
    if not math.isfinite(top) or top <= 0:
        top = 1.0
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    n = math.ceil(top / step - 1e-9)
    return [round(i * step, 10) for i in range(n + 1)]


def _tick(v: float) -> str:
    return f"{v:.3g}"


def _value_axis(
    ticks: list[float], y: Any, left: float, right: float, label: str, mid: float, fmt: Any = _tick
) -> list[str]:
    """Gridlines and labels of the value (y) axis, and its title written upwards."""
    out = []
    for v in ticks:
        out.append(
            f"<line x1='{left}' x2='{right}' y1='{y(v):.1f}' y2='{y(v):.1f}' stroke='#eee'/>"
            f"<text x='{left - 6}' y='{y(v) + 4:.1f}' font-size='11' text-anchor='end'>{fmt(v)}</text>"
        )
    out.append(
        f"<text class='axis-label' x='14' y='{mid:.1f}' font-size='12' text-anchor='middle' "
        f"transform='rotate(-90 14 {mid:.1f})'>{html.escape(label)}</text>"
    )
    return out


def psi_chart(items: list[tuple[str, float]], threshold: float) -> str:
    """Horizontal bars of PSI per feature, a PSI scale below them, the threshold as a dashed line."""
    e = html.escape
    label_w, bar_w, row_h, top_pad, axis_h = 200, 760, 24, 22, 46  # the threshold's name above the bars
    ticks = nice_ticks(max([threshold * 1.25] + [v for _, v in items]))
    top = ticks[-1]
    plot_h = row_h * len(items)
    height = top_pad + plot_h + axis_h

    def x(v: float) -> float:
        return label_w + bar_w * min(v, top) / top

    body = []
    base = top_pad + plot_h
    for v in ticks:
        body.append(
            f"<line x1='{x(v):.1f}' x2='{x(v):.1f}' y1='{top_pad}' y2='{base}' stroke='#eee'/>"
            f"<text x='{x(v):.1f}' y='{base + 16}' font-size='11' text-anchor='middle'>{_tick(v)}</text>"
        )
    for i, (name, value) in enumerate(items):
        y = top_pad + i * row_h
        fill = ALERT_COLOR if value > threshold else CURRENT_COLOR
        body.append(
            f"<text x='{label_w - 8}' y='{y + 16}' text-anchor='end' font-size='12'>{e(name)}</text>"
            f"<rect x='{label_w}' y='{y + 4}' width='{x(value) - label_w:.1f}' height='{row_h - 8}' fill='{fill}'>"
            f"<title>{e(name)}: PSI {value:.4f}</title></rect>"
            f"<text x='{x(value) + 4:.1f}' y='{y + 16}' font-size='11'>{value:.3f}</text>"
        )
    tx = x(threshold)
    body.append(
        f"<line x1='{label_w}' x2='{label_w + bar_w}' y1='{base}' y2='{base}' stroke='#999'/>"
        f"<line x1='{tx:.1f}' x2='{tx:.1f}' y1='{top_pad}' y2='{base}' stroke='{ALERT_COLOR}' "
        f"stroke-dasharray='4 3'/><text x='{tx:.1f}' y='{top_pad - 6}' font-size='11' text-anchor='middle' "
        f"fill='{ALERT_COLOR}'>threshold {threshold:g}</text>"
        f"<text class='axis-label' x='{label_w + bar_w / 2}' y='{height - 6}' font-size='12' "
        "text-anchor='middle'>PSI (population stability index)</text>"
        f"<text class='axis-label' x='{label_w - 8}' y='{height - 6}' font-size='12' text-anchor='end'>feature</text>"
    )
    return _svg(label_w + bar_w + 60, height, body, "PSI per feature")


def day_chart(days: list[dict[str, Any]], threshold: float) -> str:
    """The drift score of each day, with the threshold; an unscored day is a hollow grey mark on the
    axis that sets nothing of the scale."""
    e = html.escape
    left, right_pad, top_pad, bottom = 70, 20, 14, 78
    slot = max(26.0, 870 / max(len(days), 1))  # the page's width, however few the days
    width = left + slot * len(days) + right_pad
    height = 300
    scored = [d["drift_score"] for d in days if d.get("drift_score") is not None]
    ticks = nice_ticks(max(scored + [threshold * 1.25]))
    top = ticks[-1]
    base = height - bottom

    def x(i: int) -> float:
        return left + slot * (i + 0.5)

    def y(v: float) -> float:
        return top_pad + (base - top_pad) * (1 - min(v, top) / top)

    body = _value_axis(ticks, y, left, width - right_pad, "drift score (max PSI)", (top_pad + base) / 2)
    body.append(f"<line x1='{left}' x2='{left}' y1='{top_pad}' y2='{base}' stroke='#999'/>")
    body.append(f"<line x1='{left}' x2='{width - right_pad}' y1='{base}' y2='{base}' stroke='#999'/>")
    ty = y(threshold)
    body.append(
        f"<line x1='{left}' x2='{width - right_pad}' y1='{ty:.1f}' y2='{ty:.1f}' stroke='{ALERT_COLOR}' "
        f"stroke-dasharray='4 3'/><text x='{width - right_pad}' y='{ty - 4:.1f}' font-size='11' "
        f"text-anchor='end' fill='{ALERT_COLOR}'>threshold {threshold:g}</text>"
    )
    line = [(x(i), y(d["drift_score"])) for i, d in enumerate(days) if d.get("drift_score") is not None]
    if len(line) > 1:
        path = " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy in line)
        body.append(f"<polyline points='{path}' fill='none' stroke='{CURRENT_COLOR}' stroke-width='2'/>")
    for i, d in enumerate(days):
        cx = x(i)
        value = d.get("drift_score")
        if value is None:
            body.append(
                f"<circle class='insufficient' cx='{cx:.1f}' cy='{base:.1f}' r='5' fill='#fff' "
                f"stroke='{MUTED_COLOR}' stroke-width='2'><title>{e(d['day'])}: insufficient data "
                f"({d['items']:,} rows)</title></circle>"
            )
        else:
            fill = ALERT_COLOR if value > threshold else CURRENT_COLOR
            body.append(
                f"<circle cx='{cx:.1f}' cy='{y(value):.1f}' r='5' fill='{fill}'><title>{e(d['day'])}: "
                f"{value:.4f} ({d['items']:,} rows)</title></circle>"
            )
        body.append(
            f"<text class='tick-label' x='{cx:.1f}' y='{base + 12}' font-size='11' text-anchor='end' "
            f"transform='rotate(-45 {cx:.1f} {base + 12})'>{e(d['day'])}</text>"
        )
    body.append(
        f"<text class='axis-label' x='{(left + width - right_pad) / 2:.1f}' y='{height - 4}' font-size='12' "
        "text-anchor='middle'>event day (UTC)</text>"
    )
    return _svg(width, height, body, "drift score per day of event time")


def day_table(days: list[dict[str, Any]]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(d['day'])}</td><td class='num'>{d['items']:,}</td><td class='num'>"
        + ("insufficient data" if d.get("drift_score") is None else f"{d['drift_score']:.4f}")
        + "</td></tr>"
        for d in days
    )
    return (
        "<table class='days'><tr><th>day (UTC)</th><th class='num'>rows</th>"
        f"<th class='num'>drift score</th></tr>{rows}</table>"
    )


def line_chart(
    points: list[tuple[str, float | None]],
    threshold: float | None,
    *,
    y_label: str,
    x_label: str,
    title: str,
) -> str:
    """A line over time (one point per hour, say), both axes labelled, with an optional threshold line."""
    e = html.escape
    width, height, left, bottom, top_pad, right_pad = 960, 280, 70, 56, 14, 20
    values = [v for _, v in points if v is not None]
    ticks = nice_ticks(max(values + ([threshold * 1.25] if threshold else [])))
    top = ticks[-1]
    n = len(points)
    base = height - bottom

    def x(i: int) -> float:
        return left + (width - left - right_pad) * (i / (n - 1) if n > 1 else 0.5)

    def y(v: float) -> float:
        return top_pad + (base - top_pad) * (1 - min(v, top) / top)

    body = _value_axis(ticks, y, left, width - right_pad, y_label, (top_pad + base) / 2)
    body.append(f"<line x1='{left}' x2='{left}' y1='{top_pad}' y2='{base}' stroke='#999'/>")
    body.append(f"<line x1='{left}' x2='{width - right_pad}' y1='{base}' y2='{base}' stroke='#999'/>")
    coords = [(x(i), y(v), t, v) for i, (t, v) in enumerate(points) if v is not None]
    if len(coords) > 1:
        path = " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy, _, _ in coords)
        body.append(f"<polyline points='{path}' fill='none' stroke='{CURRENT_COLOR}' stroke-width='2'/>")
    for cx, cy, t, v in coords:
        fill = ALERT_COLOR if threshold is not None and v > threshold else CURRENT_COLOR
        body.append(
            f"<circle cx='{cx:.1f}' cy='{cy:.1f}' r='4' fill='{fill}'><title>{e(t)}: {v:.4f}</title></circle>"
        )
    every = max(1, math.ceil(n / 12))  # at most a dozen time labels side by side
    for i, (t, _) in enumerate(points):
        if i % every == 0 or i == n - 1:
            body.append(
                f"<text class='tick-label' x='{x(i):.1f}' y='{base + 16}' font-size='10' "
                f"text-anchor='middle'>{e(str(t)[:16])}</text>"
            )
    body.append(
        f"<text class='axis-label' x='{(left + width) / 2:.1f}' y='{height - 6}' font-size='12' "
        f"text-anchor='middle'>{e(x_label)}</text>"
    )
    if threshold is not None:
        ty = y(threshold)
        body.append(
            f"<line x1='{left}' x2='{width - right_pad}' y1='{ty:.1f}' y2='{ty:.1f}' stroke='{ALERT_COLOR}' "
            f"stroke-dasharray='4 3'/><text x='{width - right_pad}' y='{ty - 4:.1f}' font-size='11' "
            f"text-anchor='end'>threshold {threshold:g}</text>"
        )
    return _svg(width, height, body, title)


def bucket_labels(hist: dict[str, Any]) -> tuple[list[str], list[float], list[float]]:
    """Every bucket's name and the baseline's and the window's counts in it; values outside the
    baseline's range get a bucket of their own."""
    base = [float(v) for v in hist["baseline"]]
    current = [float(v) for v in hist["current"]]
    if "values" in hist:
        return [str(v) for v in hist["values"]], base, current
    edges = hist["edges"]
    labels = [f"{edges[i]:.4g} to {edges[i + 1]:.4g}" for i in range(len(edges) - 1)]
    outside = hist.get("below", 0) + hist.get("above", 0)
    if outside:
        labels.append("outside")
        base.append(0.0)
        current.append(float(outside))
    return labels, base, current


def histogram(feature: dict[str, Any]) -> str:
    """Grouped bars: the baseline's and the window's share of values per bucket of the baseline, every
    bucket named under its bars, the share on a labelled scale."""
    e = html.escape
    labels, base, current = bucket_labels(feature["histogram"])
    base_total, current_total = sum(base) or 1.0, sum(current) or 1.0
    base_share = [v / base_total for v in base]
    current_share = [v / current_total for v in current]
    longest = max((len(s) for s in labels), default=4)
    left, right_pad, top_pad = 64, 12, 28
    bottom = 34 + min(longest, 24) * 5.2  # room for the slanted bucket names
    slot = max(24.0, 380 / max(len(labels), 1))
    width = left + slot * len(labels) + right_pad
    plot_h = 190
    height = top_pad + plot_h + bottom
    base_y = top_pad + plot_h
    ticks = nice_ticks(max(base_share + current_share) or 1.0, count=4)
    top = ticks[-1]

    def y(share: float) -> float:
        return top_pad + plot_h * (1 - share / top)

    body = _value_axis(
        ticks, y, left, width - right_pad, "share of values", top_pad + plot_h / 2, fmt=lambda v: f"{v:.0%}"
    )
    bar = max(slot / 2 - 3, 2)
    for i, name in enumerate(labels):
        x0 = left + i * slot + 3
        for j, (share, color) in enumerate(
            ((base_share[i], BASELINE_COLOR), (current_share[i], CURRENT_COLOR))
        ):
            kind = "baseline" if j == 0 else "current"
            body.append(
                f"<rect x='{x0 + j * bar:.1f}' y='{y(share):.1f}' width='{bar:.1f}' height='{base_y - y(share):.1f}' "
                f"fill='{color}'><title>{e(name)} ({kind}): {share:.2%}</title></rect>"
            )
        cx = left + (i + 0.5) * slot
        shown = name if len(name) <= 24 else name[:23] + "…"
        body.append(
            f"<text class='bucket' x='{cx:.1f}' y='{base_y + 12}' font-size='10' text-anchor='end' "
            f"transform='rotate(-40 {cx:.1f} {base_y + 12})'><title>{e(name)}</title>{e(shown)}</text>"
        )
    body.append(f"<line x1='{left}' x2='{width - right_pad}' y1='{base_y}' y2='{base_y}' stroke='#999'/>")
    body.append(f"<line x1='{left}' x2='{left}' y1='{top_pad}' y2='{base_y}' stroke='#999'/>")
    psi = feature.get("psi")
    distance = feature.get("ks", feature.get("linf"))
    metric = "KS" if "ks" in feature else "L-inf"
    caption = f"{feature['name']}: PSI {psi:.3f}" + (
        f", {metric} {distance:.3f}" if distance is not None else ""
    )
    kind = "category" if "values" in feature["histogram"] else "bucket"
    body.append(f"<text x='{left}' y='16' font-size='13' font-weight='600'>{e(caption)}</text>")
    body.append(
        f"<text class='axis-label' x='{(left + width) / 2:.1f}' y='{height - 6}' font-size='12' "
        f"text-anchor='middle'>{e(feature['name'])} ({kind} of the baseline)</text>"
    )
    return f"<figure>{_svg(width, height, body, caption)}</figure>"


def _svg(width: float, height: float, body: list[str], title: str) -> str:
    return (
        f"<svg class='chart' xmlns='http://www.w3.org/2000/svg' width='{width:.0f}' height='{height:.0f}' "
        f"viewBox='0 0 {width:.0f} {height:.0f}' role='img' aria-label='{html.escape(title)}'>"
        + "".join(body)
        + "</svg>"
    )
