"""The whole lifecycle on the embedded default, one function per stage.

    emulator → data (drift injected in its recent window) → training pipeline (the SageMaker
    definition, through the local executor: prepare, feature ingestion, train, evaluate, baseline)
    → registration → promotion to the environment's stage through the gates, and a copy into each
    embedded stage fed by it (`mlops:promotion.source`: local-staging, in an emulated account of its
    own) → local endpoint → traffic from the recent window, captured → monitoring run that finds the
    drift → drift alarm → retraining run → challenger measured against the champion on the same data
    → promotion, and its copy → the endpoint serving the new model → HTML report and summary.

Promotions write the approved package into a scratch copy of `environments/` (the change a reviewed
pull request would make), so a demo never edits the project's own settings files. Everything the demo
starts (emulator, endpoint) is stopped when it ends, failure or not.

The HTML report puts champion and challenger side by side only as measured on the same rows (the
challenger's test set, by the use case's own evaluate, as the promotion gate measured them), lists every
gate of every promotion with its value, threshold and result, embeds the drift report, and links where
the runs, packages, capture and reports are. The monitoring run's files stay next to the report.
"""

from __future__ import annotations

import contextlib
import html
import io
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from mlops_kit import emulator as emu
from mlops_kit import executor, local_platform, naming, project, usecase
from mlops_kit.s3 import list_objects, split_uri
from mlops_kit.settings import PROJECT_FILE, Settings, project_root

Progress = Callable[[str], None]
TRAFFIC_BATCH = 25  # rows per request: the recent window goes out as a few hundred requests
WINDOW_DAYS, DRIFT_DAYS = 42, 14


@dataclass
class ModelSummary:
    package_arn: str
    pipeline_run: str
    metrics: dict[str, float]  # as registered: on the model's own test set
    stage: str = ""
    model_data_url: str = ""
    run_record: str = ""  # the local pipeline run's record and logs


@dataclass
class DemoReport:
    environment: str
    metric_names: list[str] = field(default_factory=list)  # the use case's, in its order
    endpoint_url: str = ""
    rows: int = 0
    raw_data_uri: str = ""
    pipeline_run: str = ""
    model_data_url: str = ""
    model_package_arn: str = ""
    approval_status: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    feature_records: dict[str, int] = field(default_factory=dict)
    models: list[ModelSummary] = field(default_factory=list)
    promotions: list[dict[str, Any]] = field(default_factory=list)
    traffic: dict[str, Any] = field(default_factory=dict)
    monitoring: dict[str, Any] = field(default_factory=dict)
    alarm_state: str = ""
    serving_package_arn: str = ""
    timeline: list[dict[str, Any]] = field(default_factory=list)
    deciding_metric: str = ""
    # Champion against challenger on the same rows: one entry per metric (see `comparison`).
    comparison: list[dict[str, Any]] = field(default_factory=list)
    comparison_basis: dict[str, Any] = field(default_factory=dict)  # rows, source
    locations: dict[str, str] = field(default_factory=dict)


def run_demo(
    settings: Settings,
    rows: int = 20_000,
    report_path: Path = Path("demo-report.json"),
    progress: Progress = lambda _: None,
    html_path: Path | None = None,
) -> DemoReport:
    case = project.use_case(settings)
    report = DemoReport(
        environment=settings.env, metric_names=list(case.metric_names), deciding_metric=case.deciding_metric
    )
    html_path = html_path or Path(report_path).with_suffix(".html")
    # The monitoring run's files (baseline, statistics, violations, drift report) stay beside the report.
    workdir = Path(report_path).resolve().parent / f"{Path(report_path).stem}-monitoring"

    def stage(name: str, fn: Callable[[], Any]) -> Any:
        progress(name)
        started = time.perf_counter()
        result = fn()
        report.timeline.append({"stage": name, "seconds": round(time.perf_counter() - started, 3)})
        return result

    with (
        emu.session(region=settings.region, port=settings.runtime.emulator_port) as emulator,
        scratch_environments(settings) as scratch,
        contextlib.ExitStack() as cleanup,
    ):
        report.endpoint_url = emulator.endpoint_url
        platform = stage(
            "provision the local platform", lambda: local_platform.ensure(settings, emulator.client)
        )
        case = project.use_case(settings)
        frame = stage(f"generate {case.name} events with drift", lambda: generate_data(settings, rows))
        when = frame[case.event_time]
        drift_from = when.max().normalize() - pd.Timedelta(days=DRIFT_DAYS)
        history, recent = frame[when < drift_from], frame[when >= drift_from]
        raw_uri = executor.input_data_uri(settings, emulator)
        report.rows = len(frame)
        report.raw_data_uri = stage(
            "upload the training window", lambda: upload_raw(emulator, raw_uri, history, "part-0001")
        )

        first = stage("run the training pipeline", lambda: train(settings, emulator, progress))
        report.pipeline_run, report.metrics = first.execution_id, dict(first.metrics)
        report.model_data_url = first.artifacts.get("model", "")
        report.model_package_arn = first.artifacts["model_package"]
        report.models.append(_model(first, report.model_package_arn))
        report.approval_status = approval(emulator, report.model_package_arn)
        ingested = first.step("Features")  # a use case with feature groups ingests them
        report.feature_records = {}
        for text in (ingested.properties.get("_files", {}).get("ingest", {}) if ingested else {}).values():
            for group, counts in json.loads(text).items():  # one report per instance of the step
                report.feature_records[group] = report.feature_records.get(group, 0) + counts["rows"]

        endpoint_box: dict[str, Any] = {}

        def redeploy(target: Settings, package_arn: str) -> Any:
            from mlops_kit.serving import local as serving

            endpoint_box["endpoint"] = serving.deploy(settings, emulator, package_arn, port=0)
            return endpoint_box["endpoint"]

        cleanup.callback(lambda: _stop_endpoint(settings))
        for target in promotion_path(settings):
            report.promotions.append(
                stage(
                    f"promote to {target}",
                    lambda t=target: promote(
                        settings, emulator, t, report.model_package_arn, scratch, redeploy
                    ),
                )
            )
        for later in downstream(settings, scratch):
            report.promotions.append(
                stage(
                    f"copy into {later.env} ({later.promotion.stage}, account {later.account_id})",
                    lambda t=later: promote_across(t, emulator, report.model_package_arn, scratch),
                )
            )
        report.approval_status = approval(emulator, report.model_package_arn)
        endpoint = endpoint_box.get("endpoint") or stage(
            "deploy the local endpoint", lambda: redeploy(settings, report.model_package_arn)
        )
        report.models[0].stage = settings.promotion.stage

        builder = project.entry_point(settings, "request_builder")
        requests = stage("build requests for the recent window", lambda: builder(recent, history))
        report.traffic = stage(
            "send the recent window's traffic", lambda: send_traffic(emulator, endpoint.name, requests)
        )
        stage("flush captured requests", lambda: _stop_endpoint(settings))
        report.traffic["captured_files"] = capture_files(emulator, settings, platform)

        # The recent window's labels arrive: retraining will learn from it.
        stage(
            "land the recent window's labelled data",
            lambda: upload_raw(emulator, raw_uri, recent, "part-0002"),
        )
        shutil.rmtree(workdir, ignore_errors=True)  # an earlier demo's run is not this one's history
        outcome = stage(
            "monitor the captured traffic",
            lambda: monitor(settings, emulator, platform, report.model_package_arn, workdir, progress),
        )
        report.monitoring = outcome
        report.alarm_state = outcome.get("alarm_state", "")
        retrained = outcome.get("retraining", {}).get("execution")
        if not retrained:
            raise RuntimeError(f"the monitor found no drift to retrain on: {outcome.get('drift_score')}")
        second = executor.load(retrained)
        challenger = second.artifacts["model_package"]
        report.models.append(_model(second, challenger))
        for target in promotion_path(settings):
            report.promotions.append(
                stage(
                    f"promote the challenger to {target}",
                    lambda t=target: promote(settings, emulator, t, challenger, scratch, redeploy),
                )
            )
        for later in downstream(settings, scratch):
            report.promotions.append(
                stage(
                    f"copy the challenger into {later.env} ({later.promotion.stage}, account {later.account_id})",
                    lambda t=later: promote_across(t, emulator, challenger, scratch),
                )
            )
        report.models[1].stage = settings.promotion.stage
        endpoint = endpoint_box["endpoint"]
        report.serving_package_arn = stage(
            "check the endpoint serves the new model", lambda: check_serving(emulator, endpoint, requests)
        )
        report.traffic["answers_after_promotion"] = True
        stage("stop the endpoint", lambda: _stop_endpoint(settings))
        measured = next(
            (p for p in reversed(report.promotions) if p["package"] == challenger and p.get("same_rows")),
            None,
        )
        if measured:
            report.comparison = comparison(list(case.metrics), case.deciding_metric, measured["same_rows"])
            report.comparison_basis = {k: measured["same_rows"][k] for k in ("rows", "source")}
        report.locations = {
            "raw data": raw_uri,
            "capture": f"s3://{platform.buckets['capture']}/datacapture/{naming.endpoint(settings)}/",
            "monitoring run": str(workdir / "run"),
            "drift report": str(workdir / "run" / "report.html"),
            "JSON report": str(Path(report_path).resolve()),
            "HTML report": str(Path(html_path).resolve()),
        }
        write_report(report, report_path)
        write_html(report, html_path, workdir / "run")
    return report


def _model(run: executor.RunRecord, package_arn: str) -> ModelSummary:
    from mlops_kit import paths

    return ModelSummary(
        package_arn,
        run.execution_id,
        dict(run.metrics),
        model_data_url=run.artifacts.get("model", ""),
        run_record=str(paths.runs_dir() / run.execution_id),
    )


def comparison(
    metrics: list[usecase.Metric], deciding: str, same_rows: dict[str, Any]
) -> list[dict[str, Any]]:
    """Each metric of the use case for champion and challenger on the same rows, the challenger's gain
    in the metric's own direction (positive: better), and which one decides."""
    rows = []
    for metric in metrics:
        champion = same_rows["champion"].get(metric.name)
        challenger = same_rows["candidate"].get(metric.name)
        measured = isinstance(champion, (int, float)) and isinstance(challenger, (int, float))
        rows.append(
            {
                "metric": metric.name,
                "direction": str(metric.direction),
                "champion": champion,
                "challenger": challenger,
                "gain": metric.gain(challenger, champion) if measured else None,
                "deciding": metric.name == deciding,
            }
        )
    return rows


# --- stages ----------------------------------------------------------------------------------------------


def generate_data(settings: Settings, rows: int) -> pd.DataFrame:
    """The use case's sample events over the last six weeks, drifted in the last two."""
    end = pd.Timestamp.now(tz="UTC").normalize().tz_localize(None)
    start = end - pd.Timedelta(days=WINDOW_DAYS)
    drift = end - pd.Timedelta(days=DRIFT_DAYS)
    sample = project.entry_point(settings, "sample_data")
    frame = sample(
        rows,
        seed=settings.training.seed,
        start=str(start.date()),
        end=str(end.date()),
        drift_from=str(drift.date()),
    )
    case = project.use_case(settings)
    usecase.check_frame(case, frame, case.entry_points.sample_data)
    frame[case.event_time] = pd.to_datetime(frame[case.event_time], utc=True)
    return frame


def upload_raw(emulator: emu.Emulator, raw_uri: str, frame: pd.DataFrame, part: str) -> str:
    """A part of the raw data, where the pipeline's InputData reads it."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    bucket, prefix = split_uri(raw_uri)
    key = f"{prefix.rstrip('/')}/{part}.parquet" if prefix else f"{part}.parquet"
    emulator.client("s3").put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())
    return f"s3://{bucket}/{key}"


def train(settings: Settings, emulator: emu.Emulator, progress: Progress) -> executor.RunRecord:
    """The training pipeline's own definition, executed step by step on the emulator."""
    return executor.run_pipeline(
        settings, emulator, progress=lambda step, state, _: progress(f"pipeline: {step} {state.lower()}")
    )


def approval(emulator: emu.Emulator, arn: str) -> str:
    return emulator.client("sagemaker").describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"]


def promotion_path(settings: Settings) -> list[str]:
    """The stages a new package passes through to reach the one this environment serves."""
    stages = list(settings.stages)
    if settings.promotion.stage not in stages:
        return [settings.promotion.stage]
    return stages[: stages.index(settings.promotion.stage) + 1]


def promote(
    settings: Settings,
    emulator: emu.Emulator,
    stage: str,
    package_arn: str,
    scratch: Path,
    redeploy: Callable,
) -> dict[str, Any]:
    from mlops_kit.registry import promotion

    outcome = promotion.promote(
        settings,
        emulator.client,
        stage=stage,
        package_arn=package_arn,
        root=scratch,
        redeploy=redeploy,
        approved_by="mlops-demo",
    )
    decision = outcome.decision
    same = decision.as_dict()["same_data"] if decision else None
    return {
        "stage": stage,
        "package": package_arn,
        "champion": decision.champion if decision else None,
        "basis": decision.basis if decision else "",
        "checks": [asdict(c) for c in (decision.checks if decision else [])],
        "same_rows": same,
        "settings_changed": [str(p) for p in getattr(outcome, "settings_files", [])],
    }


def downstream(settings: Settings, root: Path) -> list[Settings]:
    """The embedded stages fed by promotion from `settings`' environment (`mlops:promotion.source`)."""
    from mlops_kit import settings as settings_mod

    found = [settings_mod.load(env, root) for env in settings_mod.environments(root)]
    return [s for s in found if s.embedded and s.promotion.source == settings.env]


def promote_across(
    target: Settings, emulator: emu.Emulator, package_arn: str, scratch: Path
) -> dict[str, Any]:
    """Copy `package_arn` into `target`'s stage, in `target`'s own emulated account, acting as its deploy
    role: what `mlops promote --env <target>` does (its platform first, as `pulumi up` would make it)."""
    from mlops_kit import clients
    from mlops_kit.registry import promotion

    acting = clients.clients_for(target, emulator)
    local_platform.ensure(target, acting)
    outcome = promotion.promote(
        target, acting, package_arn=package_arn, root=scratch, approved_by="mlops-demo"
    )
    decision = outcome.decision
    return {
        "stage": target.promotion.stage,
        "package": package_arn,
        "environment": target.env,
        "account": target.account_id,
        "copy": outcome.package,
        "champion": decision.champion if decision else None,
        "basis": decision.basis if decision else "",
        "checks": [asdict(c) for c in (decision.checks if decision else [])],
        # champion and challenger measured on the same rows in the target stage, as `promote` reports it
        "same_rows": decision.as_dict()["same_data"] if decision else None,
        "settings_changed": [str(p) for p in outcome.settings_files],
    }


def send_traffic(emulator: emu.Emulator, endpoint_name: str, requests: pd.DataFrame) -> dict[str, Any]:
    """The traffic an application sends: SageMaker Runtime's InvokeEndpoint, which the emulator routes to
    the local endpoint as SageMaker routes it to the endpoint's instances."""
    runtime = emulator.client("sagemaker-runtime")
    sent = answered = 0
    for start in range(0, len(requests), TRAFFIC_BATCH):
        body = requests.iloc[start : start + TRAFFIC_BATCH].to_csv(header=False, index=False)
        answered += len(_predictions(invoke(runtime, endpoint_name, body)))
        sent += 1
    return {"requests": sent, "rows": len(requests), "predictions": answered}


def invoke(runtime: Any, endpoint_name: str, body: str) -> Any:
    answer = runtime.invoke_endpoint(
        EndpointName=endpoint_name, ContentType="text/csv", Accept="application/json", Body=body.encode()
    )
    return json.loads(answer["Body"].read())


def _predictions(answer: Any) -> list[Any]:
    if isinstance(answer, dict):
        return list(answer.get("predictions", []))
    return list(answer) if isinstance(answer, list) else [answer]


def capture_files(emulator: emu.Emulator, settings: Settings, platform: local_platform.LocalPlatform) -> int:
    uri = f"s3://{platform.buckets['capture']}/datacapture/{naming.endpoint(settings)}/"
    return len(list_objects(emulator.client("s3"), uri))


def monitor(
    settings: Settings,
    emulator: emu.Emulator,
    platform: local_platform.LocalPlatform,
    package_arn: str,
    workdir: Path,
    progress: Progress,
) -> dict[str, Any]:
    """The monitoring schedule, fired as deployed after each hour of captured traffic: the job on that
    hour's capture, the drift alarm, and the retraining rule (`executor.scheduler`)."""
    import datetime as dt

    from mlops_kit.executor import scheduler
    from mlops_kit.executor.jobs import download_prefix
    from mlops_kit.monitoring import report as html_report

    # the baseline is where the job reads it: the promotion to this stage published it, as in AWS
    ticks = []
    for hour in capture_hours(emulator, settings, platform):
        # the schedule fires in the next hour (rate(1 hour)); its window is the hour that closed
        at = hour + dt.timedelta(hours=1, minutes=1)
        ticks.append(scheduler.tick(settings, emulator, at, progress=progress))
    if not ticks:
        raise RuntimeError("no captured traffic to monitor")
    fired = next((t for t in ticks if t.started), ticks[-1])
    download_prefix(emulator.client("s3"), fired.reports, workdir / "run")
    html_report.write(workdir / "run", workdir / "run" / "report.html")
    summary = dict(fired.summary)
    violations = json.loads((workdir / "run" / "constraint_violations.json").read_text())["violations"]
    summary["items"] = sum(t.summary["items"] for t in ticks)
    summary["violations"] = len(violations)
    summary["violation_checks"] = sorted({v["constraint_check_type"] for v in violations})
    summary["alarm_state"] = fired.alarm_state
    summary["reports"] = [t.reports for t in ticks]
    if fired.started:
        summary["retraining"] = {
            "started": True,
            "execution": fired.started[0].execution,
            "rule": fired.started[0].rule,
        }
    return json.loads(json.dumps(summary, default=str))


def capture_hours(emulator: emu.Emulator, settings: Settings, platform: local_platform.LocalPlatform) -> list:
    """The hour partitions (`yyyy/mm/dd/hh`) the endpoint's capture landed in, as UTC times."""
    import datetime as dt
    import re

    uri = f"s3://{platform.buckets['capture']}/datacapture/{naming.endpoint(settings)}/"
    hours = set()
    for item in list_objects(emulator.client("s3"), uri):
        match = re.search(r"/(\d{4})/(\d{2})/(\d{2})/(\d{2})/[^/]+$", item["Key"])
        if match:
            hours.add(dt.datetime(*map(int, match.groups()), tzinfo=dt.UTC))
    return sorted(hours)


def check_serving(emulator: emu.Emulator, endpoint: Any, requests: pd.DataFrame) -> str:
    """The endpoint answers, and the package it serves is the newly promoted one."""
    from mlops_kit.serving import local as serving

    running = serving.running(endpoint.name)
    if running is None or running.package_arn != endpoint.package_arn:
        raise RuntimeError("the local endpoint is not serving the promoted package")
    rows = requests.head(5).to_csv(header=False, index=False)
    if len(_predictions(invoke(emulator.client("sagemaker-runtime"), endpoint.name, rows))) != 5:
        raise RuntimeError("the new model did not answer every row")
    return running.package_arn


def _stop_endpoint(settings: Settings) -> None:
    from mlops_kit.serving import local as serving

    serving.stop(settings)


@contextlib.contextmanager
def scratch_environments(settings: Settings) -> Iterator[Path]:
    """A throwaway copy of the project's settings files for the demo's promotions to rewrite."""
    root = project_root(settings.file.parent)
    with tempfile.TemporaryDirectory(prefix="mlops-demo-settings-") as tmp:
        scratch = Path(tmp)
        shutil.copy(root / PROJECT_FILE, scratch / PROJECT_FILE)
        shutil.copytree(root / "environments", scratch / "environments")
        yield scratch


# --- reports --------------------------------------------------------------------------------------------


def write_report(report: DemoReport, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(asdict(report), indent=2, sort_keys=True, default=str) + "\n")
    tmp.replace(path)


def write_html(report: DemoReport, path: Path, monitoring_run: Path | None) -> Path:
    """One self-contained page: the lifecycle's timeline, champion against challenger on the same rows,
    every promotion's gates, the drift report of the monitoring run, and where everything is."""
    from mlops_kit.monitoring import report as drift_report

    esc = html.escape
    total = sum(s["seconds"] for s in report.timeline) or 1.0
    bars = "".join(
        f"<tr><td>{esc(s['stage'])}</td><td class='num'>{s['seconds']:.1f}s</td>"
        f"<td style='width:60%'><div class='bar' style='width:{max(0.3, 100 * s['seconds'] / total):.1f}%'></div></td></tr>"
        for s in report.timeline
    )
    monitoring = report.monitoring
    score = monitoring.get("drift_score")
    parts = [
        "<h1>mlops demo: the lifecycle on the embedded default</h1>",
        f"<p>{report.rows:,} events; drift injected in the last {DRIFT_DAYS} days. The monitor's drift score was "
        f"{'n/a' if score is None else f'{score:.3f}'} against a threshold of {monitoring.get('threshold', 'n/a')}; "
        f"the drift alarm went to {esc(report.alarm_state or 'no state')}; the endpoint now serves "
        f"<code>{esc(report.serving_package_arn)}</code>.</p>",
        "<h2>Champion against challenger, on the same rows</h2>",
        comparison_table(report),
        "<h2>Promotion gates</h2>",
        gates_tables(report.promotions),
        "<h2>Timeline</h2>",
        f"<table style='width:100%'>{bars}</table>",
        drift_report.locations_table(_locations(report)),
    ]
    if monitoring_run is not None and (Path(monitoring_run) / "run.json").is_file():
        parts.append("<h2>Monitoring of the recent window</h2>")
        parts.append(drift_report.sections(monitoring_run, location=Path(monitoring_run) / "report.html"))
    page = drift_report.page("mlops demo", "\n".join(parts))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return path


def comparison_table(report: DemoReport) -> str:
    """Each metric: champion, challenger, the challenger's gain; the deciding metric marked."""
    esc = html.escape
    if not report.comparison:
        return (
            "<p>No comparison on the same rows: the challenger's promotion re-scored no champion "
            "(the registered metrics below are each on the model's own test set, not comparable).</p>"
            + _registered_table(report)
        )
    rows = []
    for row in report.comparison:
        gain = row["gain"]
        mark = (
            " <strong title='decides champion against challenger'>&#9733; deciding</strong>"
            if row["deciding"]
            else ""
        )
        rows.append(
            f"<tr class='{'deciding' if row['deciding'] else 'metric'}'><td>{esc(row['metric'])}{mark}</td>"
            f"<td>{esc(row['direction'])} is better</td>"
            f"<td class='num'>{_number(row['champion'])}</td><td class='num'>{_number(row['challenger'])}</td>"
            f"<td class='num {'pass' if gain is not None and gain > 0 else 'fail' if gain is not None and gain < 0 else ''}'>"
            f"{'' if gain is None else f'{gain:+.4f}'}</td></tr>"
        )
    basis = report.comparison_basis
    champion = report.models[0].package_arn if report.models else ""
    challenger = report.models[1].package_arn if len(report.models) > 1 else ""
    return (
        f"<p>Both models measured by the use case's own evaluate on the same {basis.get('rows', 0):,} rows of "
        f"<code>{esc(str(basis.get('source', '')))}</code> (the challenger's test set), as the promotion gate "
        "measured them. Gain: the challenger's advantage in the metric's own direction (positive is better).</p>"
        "<table class='comparison'><tr><th>metric</th><th>direction</th><th class='num'>champion</th>"
        "<th class='num'>challenger</th><th class='num'>gain</th></tr>" + "".join(rows) + "</table>"
        f"<p>champion <code>{esc(champion)}</code>; challenger <code>{esc(challenger)}</code></p>"
        "<details><summary>Metrics as registered (each model on its own test set: not a comparison)</summary>"
        + _registered_table(report)
        + "</details>"
    )


def _registered_table(report: DemoReport) -> str:
    esc = html.escape
    header = "".join(f"<th class='num'>{esc(n)}</th>" for n in report.metric_names)
    rows = "".join(
        f"<tr><td>{'champion' if i == 0 else 'challenger'}</td><td>{esc(m.pipeline_run)}</td>"
        + "".join(f"<td class='num'>{_number(m.metrics.get(n))}</td>" for n in report.metric_names)
        + "</tr>"
        for i, m in enumerate(report.models)
    )
    return f"<table class='registered'><tr><th></th><th>pipeline run</th>{header}</tr>{rows}</table>"


def gates_tables(promotions: list[dict[str, Any]]) -> str:
    """One table per promotion: each gate, its threshold, the package's value, pass or fail."""
    from mlops_kit.registry.gates import show

    esc = html.escape
    out = []
    for promotion in promotions:
        passed = all(c["passed"] for c in promotion["checks"])
        out.append(
            f"<h3>to {esc(promotion['stage'])}: <span class='{'pass' if passed else 'fail'}'>"
            f"{'approved' if passed else 'refused'}</span></h3>"
            f"<p>package <code>{esc(promotion['package'])}</code>; champion "
            f"<code>{esc(promotion.get('champion') or 'none')}</code></p>"
        )
        rows = "".join(
            f"<tr class='{'pass' if c['passed'] else 'fail'}'><td>{esc(c['name'])}</td>"
            f"<td class='num'>{esc(show(c['threshold']))}</td><td class='num'>{esc(show(c['value']))}</td>"
            f"<td>{'pass' if c['passed'] else 'FAIL'}</td><td>{esc(c.get('note') or '')}</td></tr>"
            for c in promotion["checks"]
        )
        out.append(
            "<table class='gates'><tr><th>gate</th><th class='num'>threshold</th><th class='num'>value</th>"
            f"<th>result</th><th>note</th></tr>{rows}</table>"
        )
    return "\n".join(out) if out else "<p>No promotion ran.</p>"


def _locations(report: DemoReport) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for i, model in enumerate(report.models):
        who = "champion" if i == 0 else "challenger"
        found.append((f"{who}'s pipeline run {model.pipeline_run}", model.run_record))
        found.append((f"{who}'s model package", model.package_arn))
        found.append((f"{who}'s model artifact", model.model_data_url))
    found += list(report.locations.items())
    return [(k, v) for k, v in found if v]


def _number(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else "-"
