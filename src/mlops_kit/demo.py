"""The whole lifecycle on the embedded default, one function per stage.

    emulator → data (drift injected in its recent window) → training pipeline (the SageMaker
    definition, through the local executor: prepare, feature ingestion, train, evaluate, baseline)
    → registration → promotion to dev, then staging, through the gates → local endpoint → traffic from the recent window, captured → monitoring run that
    finds the drift → drift alarm → retraining run → challenger measured against the champion on the
    same data → promotion → the endpoint serving the new model → HTML report and summary.

Promotions write the approved package into a scratch copy of `environments/` (the change a reviewed
pull request would make), so a demo never edits the project's own settings files. Everything the demo
starts (emulator, endpoint) is stopped when it ends, failure or not.
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
    metrics: dict[str, float]
    stage: str = ""


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


def run_demo(
    settings: Settings,
    rows: int = 20_000,
    report_path: Path = Path("demo-report.json"),
    progress: Progress = lambda _: None,
    html_path: Path | None = None,
) -> DemoReport:
    report = DemoReport(environment=settings.env, metric_names=list(project.use_case(settings).metric_names))
    html_path = html_path or Path(report_path).with_suffix(".html")

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
        report.models.append(ModelSummary(report.model_package_arn, first.execution_id, dict(first.metrics)))
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
        report.approval_status = approval(emulator, report.model_package_arn)
        endpoint = endpoint_box.get("endpoint") or stage(
            "deploy the local endpoint", lambda: redeploy(settings, report.model_package_arn)
        )
        report.models[0].stage = settings.promotion.stage

        builder = project.entry_point(settings, "request_builder")
        requests = stage("build requests for the recent window", lambda: builder(recent, history))
        report.traffic = stage("send the recent window's traffic", lambda: send_traffic(endpoint, requests))
        stage("flush captured requests", lambda: _stop_endpoint(settings))
        report.traffic["captured_files"] = capture_files(emulator, settings, platform)

        # The recent window's labels arrive: retraining will learn from it.
        stage(
            "land the recent window's labelled data",
            lambda: upload_raw(emulator, raw_uri, recent, "part-0002"),
        )
        workdir = Path(tempfile.mkdtemp(prefix="mlops-demo-monitor-"))
        cleanup.callback(shutil.rmtree, workdir, True)
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
        report.models.append(ModelSummary(challenger, second.execution_id, dict(second.metrics)))
        for target in promotion_path(settings):
            report.promotions.append(
                stage(
                    f"promote the challenger to {target}",
                    lambda t=target: promote(settings, emulator, t, challenger, scratch, redeploy),
                )
            )
        report.models[1].stage = settings.promotion.stage
        endpoint = endpoint_box["endpoint"]
        report.serving_package_arn = stage(
            "check the endpoint serves the new model", lambda: check_serving(endpoint, requests)
        )
        report.traffic["answers_after_promotion"] = True
        stage("stop the endpoint", lambda: _stop_endpoint(settings))
        write_report(report, report_path)
        write_html(report, html_path, workdir / "run" / "report.html")
    return report


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
    return {
        "stage": stage,
        "package": package_arn,
        "champion": decision.champion if decision else None,
        "checks": [asdict(c) for c in (decision.checks if decision else [])],
        "settings_changed": [str(p) for p in getattr(outcome, "settings_files", [])],
    }


def send_traffic(endpoint: Any, requests: pd.DataFrame) -> dict[str, Any]:
    sent = answered = 0
    for start in range(0, len(requests), TRAFFIC_BATCH):
        body = requests.iloc[start : start + TRAFFIC_BATCH].to_csv(header=False, index=False)
        answer = endpoint.invoke(body, content_type="text/csv", accept="application/json")
        sent += 1
        answered += len(_predictions(answer))
    return {"requests": sent, "rows": len(requests), "predictions": answered}


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
    """The kit's monitor over the captured window: violations, metrics, the drift alarm, retraining."""
    from mlops_kit.executor.jobs import download_prefix
    from mlops_kit.monitoring import metrics as cw
    from mlops_kit.monitoring import retrain
    from mlops_kit.monitoring import run as monitoring

    case = project.use_case(settings)
    package = emulator.client("sagemaker").describe_model_package(ModelPackageName=package_arn)
    statistics = package["ModelMetrics"]["ModelDataQuality"]["Statistics"]["S3Uri"]
    baseline = workdir / "baseline"
    download_prefix(emulator.client("s3"), statistics.rsplit("/", 1)[0] + "/", baseline)
    cloudwatch = emulator.client("cloudwatch")
    endpoint = naming.endpoint(settings)
    # In AWS the infra stack owns this alarm; the emulator gets the same one here.
    alarm_name = f"{settings.prefix}-drift"
    cloudwatch.put_metric_alarm(**cw.drift_alarm(alarm_name, endpoint, settings.monitoring.drift_threshold))
    trigger = retrain.for_settings(settings, emulator=emulator)

    def retrain_through_executor(parameters: dict[str, str] | None = None) -> str:
        progress("retraining: the pipeline runs on the new data")
        return trigger(parameters)

    outcome = monitoring.run(
        baseline,
        f"s3://{platform.buckets['capture']}/datacapture/{endpoint}/",
        workdir / "run",
        endpoint=endpoint,
        threshold=settings.monitoring.drift_threshold,
        retrain_on_drift=settings.monitoring.retrain_on_drift,
        trigger=retrain_through_executor,
        cloudwatch=cloudwatch,
        s3=emulator.client("s3"),
        task=str(case.task),
        classes=list(case.classes) or None,
    )
    states = cw.evaluate_alarms(cloudwatch, prefix=alarm_name)
    from mlops_kit.monitoring import report as html_report

    html_report.write(workdir / "run", workdir / "run" / "report.html")
    summary = dict(outcome.summary)
    summary["violations"] = len(outcome.violations)
    summary["violation_checks"] = sorted({v["constraint_check_type"] for v in outcome.violations})
    summary["alarm_state"] = states.get(alarm_name, "")
    summary["drift_score"] = outcome.drift_score
    return json.loads(json.dumps(summary, default=str))


def check_serving(endpoint: Any, requests: pd.DataFrame) -> str:
    """The endpoint answers, and the package it serves is the newly promoted one."""
    from mlops_kit.serving import local as serving

    running = serving.running(endpoint.name)
    if running is None or running.package_arn != endpoint.package_arn:
        raise RuntimeError("the local endpoint is not serving the promoted package")
    rows = requests.head(5).to_csv(header=False, index=False)
    if len(_predictions(endpoint.invoke(rows, content_type="text/csv", accept="application/json"))) != 5:
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


def write_html(report: DemoReport, path: Path, drift_report: Path | None) -> Path:
    """One self-contained page: the lifecycle's timeline, both models' metrics, and the drift report."""
    esc = html.escape
    total = sum(s["seconds"] for s in report.timeline) or 1.0
    bars = "".join(
        f'<tr><td>{esc(s["stage"])}</td><td class="num">{s["seconds"]:.1f}s</td>'
        f'<td><div class="bar" style="width:{max(1.0, 300 * s["seconds"] / total):.0f}px"></div></td></tr>'
        for s in report.timeline
    )
    names = report.metric_names
    header = "".join(f"<th>{n}</th>" for n in names)
    models = "".join(
        f"<tr><td>{'champion' if i == 0 else 'challenger'}</td><td>{esc(m.package_arn)}</td>"
        + "".join(f'<td class="num">{m.metrics.get(n, float("nan")):.4f}</td>' for n in names)
        + "</tr>"
        for i, m in enumerate(report.models)
    )
    gains = [
        c for p in report.promotions for c in p["checks"] if c["name"].startswith("gain") and p["champion"]
    ]
    same_rows = (
        f"Challenger against champion before promotion ({gains[-1]['name']}): {gains[-1]['note']}."
        if gains
        else ""
    )
    drift = ""
    if drift_report is not None and drift_report.is_file():
        body = drift_report.read_text()
        start, end = body.find("<body>"), body.rfind("</body>")
        drift = body[start + 6 : end] if start >= 0 and end > start else ""
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>mlops demo</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}}td,th{{padding:3px 8px;text-align:left}}
.num{{text-align:right}}.bar{{background:#4a7fb5;height:12px}}</style></head><body>
<h1>mlops demo: the lifecycle on the embedded default</h1>
<p>{report.rows:,} events; drift injected in the last {DRIFT_DAYS} days. The monitor's drift score was
{report.monitoring.get("drift_score", float("nan")):.3f} against a threshold of {report.monitoring.get("threshold", float("nan"))};
the drift alarm went to {esc(report.alarm_state)}; the endpoint now serves {esc(report.serving_package_arn)}.</p>
<h2>Timeline</h2><table>{bars}</table>
<h2>Models</h2><table><tr><th></th><th>package</th>{header}</tr>{models}</table>
<p>Each model's metrics are on its own held-out window. {esc(same_rows)}</p>
{drift}
</body></html>"""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(page)
    tmp.replace(path)
    return path
