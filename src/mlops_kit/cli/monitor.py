"""`mlops monitor baseline / run / report`: the kit's model monitor from the command line."""

from __future__ import annotations

import contextlib
from pathlib import Path

import typer

from mlops_kit.cli import output

app = typer.Typer(
    help="Baselines, monitoring runs over captured data, and drift reports.", no_args_is_help=True
)
out = output.console()


def _read_frame(path: Path):
    import pandas as pd

    suffix = path.suffix.lower()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such data file")
    if suffix == ".parquet":
        return pd.read_parquet(path)
    if suffix == ".csv":
        return pd.read_csv(path)
    raise ValueError(f"{path}: expected a .csv or .parquet file")


def _split(names: str | None) -> list[str] | None:
    return [n.strip() for n in names.split(",") if n.strip()] if names else None


@app.command()
def baseline(
    data: Path = typer.Option(..., "--input", help="Training data, .csv or .parquet."),
    out_dir: Path = typer.Option(..., "--output", help="Folder for statistics.json and constraints.json."),
    features: str | None = typer.Option(
        None, help="The model's input columns, comma-separated, in request order (default: all columns)."
    ),
    prediction_column: str | None = typer.Option(
        None, help="A column of the model's answers (scores, values or classes): the prediction baseline."
    ),
    label_column: str | None = typer.Option(
        None, help="A column of true labels: the baseline of label drift once ground truth arrives."
    ),
    drift_threshold: float | None = typer.Option(None, help="PSI that counts as drift (default: the env's)."),
    env: str = typer.Option("local", help="Environment whose monitoring.drift_threshold applies."),
    as_json: bool = typer.Option(False, "--json", help="What was written, as JSON."),
) -> None:
    """Baseline statistics and constraints (Model Monitor's formats) from the training data."""
    from mlops_kit import settings as settings_mod
    from mlops_kit.monitoring import files, stats

    threshold = (
        drift_threshold if drift_threshold is not None else settings_mod.load(env).monitoring.drift_threshold
    )
    frame = _read_frame(data)
    statistics, constraints = stats.baseline(
        frame,
        features=_split(features),
        prediction_column=prediction_column,
        label_column=label_column,
        psi_threshold=threshold,
    )
    written = files.write_baseline(out_dir, statistics, constraints)
    if as_json:
        output.emit(
            {
                "rows": len(frame),
                "features": len(statistics["features"]),
                "threshold": threshold,
                "statistics": str(written[0]),
                "constraints": str(written[1]),
            }
        )
        return
    out.print(
        f"baseline of {len(frame):,} rows, {len(statistics['features'])} features "
        f"(PSI threshold {threshold:g}) written to {out_dir}"
    )


@app.command()
def run(
    baseline_dir: str = typer.Option(
        ..., "--baseline", help="Folder, or s3://bucket/prefix, with statistics.json and constraints.json."
    ),
    capture: str = typer.Option(..., "--capture", help="Capture file, folder, or s3://bucket/prefix."),
    out_dir: Path = typer.Option(..., "--output", help="Folder for this run's files."),
    env: str = typer.Option("local", help="Environment: its endpoint, threshold, metrics and retraining."),
    endpoint: str | None = typer.Option(None, help="Endpoint name for the metrics (default: the env's)."),
    ground_truth: str | None = typer.Option(None, help="Ground-truth labels (JSON lines) for model quality."),
    task: str | None = typer.Option(
        None, help="The model's task: binary, multiclass or regression (default: the use case's)."
    ),
    classes: str | None = typer.Option(
        None,
        help="The model's classes in the order of its probability vectors, comma-separated (default: the use case's).",
    ),
    start: str | None = typer.Option(None, help="Only events at or after this time (ISO 8601)."),
    end: str | None = typer.Option(None, help="Only events before this time (ISO 8601)."),
    emit_metrics: bool = typer.Option(True, help="Send CloudWatch metrics (the emulator's when embedded)."),
    retrain: bool | None = typer.Option(None, help="Start retraining on drift (default: the env's setting)."),
    fail_on_drift: bool = typer.Option(
        False, "--fail-on-drift", help="Exit with code 4 when the window drifted (after writing its files)."
    ),
    as_json: bool = typer.Option(False, "--json", help="The run's summary, alarms and files, as JSON."),
) -> None:
    """Monitor a window of captured requests against the baseline."""
    import pandas as pd

    from mlops_kit import emulator as emulator_mod
    from mlops_kit import naming
    from mlops_kit import settings as settings_mod
    from mlops_kit.monitoring import job, metrics, quality
    from mlops_kit.monitoring import retrain as retrain_mod
    from mlops_kit.monitoring import run as monitor

    if task is not None and task not in quality.TASKS:
        raise typer.BadParameter(
            f"unknown task {task!r}; expected one of {', '.join(quality.TASKS)}", param_hint="--task"
        )
    settings = settings_mod.load(env)
    from mlops_kit import project

    case = project.use_case(settings)
    task = task or str(case.task)
    given_classes = job.classes(classes) if classes else list(case.classes) or None
    name = endpoint or naming.endpoint(settings)
    retrain_on = settings.monitoring.retrain_on_drift if retrain is None else retrain
    needs_aws = (
        emit_metrics
        or retrain_on
        or capture.startswith("s3://")
        or str(ground_truth).startswith("s3://")
        or baseline_dir.startswith("s3://")
    )
    with contextlib.ExitStack() as stack:
        client = None
        emu = None
        if needs_aws and settings.embedded:
            emu = stack.enter_context(emulator_mod.session(settings.region))
            client = emu.client
        elif needs_aws:
            import boto3

            def client(service: str):
                return boto3.client(service, region_name=settings.region)

        cloudwatch = client("cloudwatch") if emit_metrics and client else None
        if cloudwatch is not None and settings.embedded:
            # In AWS the infra stack owns this alarm; the emulator gets the same one, from the same plan.
            from mlops_kit.infra.plans import monitoring as monitoring_plan

            alarm = monitoring_plan.monitoring_job(settings, case).alarm().put_metric_alarm_request()
            if not cloudwatch.describe_alarms(AlarmNames=[alarm["AlarmName"]])["MetricAlarms"]:
                cloudwatch.put_metric_alarm(**alarm)
        baseline_path = Path(baseline_dir)
        if baseline_dir.startswith("s3://"):
            baseline_path = _fetch_baseline(client("s3"), baseline_dir, stack)
        trigger = None
        if retrain_on:
            sagemaker = None if settings.embedded else client("sagemaker")
            trigger = retrain_mod.for_settings(settings, sagemaker=sagemaker, emulator=emu)
        outcome = monitor.run(
            baseline_path,
            capture,
            out_dir,
            endpoint=name,
            threshold=settings.monitoring.drift_threshold,
            retrain_on_drift=retrain_on,
            trigger=trigger,
            cloudwatch=cloudwatch,
            s3=client("s3") if client else None,
            ground_truth=ground_truth,
            task=task,
            classes=given_classes,
            start=pd.Timestamp(start) if start else None,
            end=pd.Timestamp(end) if end else None,
            min_rows=settings.monitoring.min_window_rows,
            package=settings.serving.model_package_arn or None,
        )
        alarms = {}
        if cloudwatch is not None and settings.embedded:
            alarms = metrics.evaluate_alarms(cloudwatch, prefix=f"{settings.prefix}-drift")
    if as_json:
        output.emit(
            {
                "drifted": outcome.drifted,
                "summary": outcome.summary,
                "alarms": alarms,
                "output": str(out_dir),
            }
        )
    else:
        _print_run(outcome.summary, out_dir, alarms)
    if fail_on_drift and outcome.drifted:
        from mlops_kit.cli import exit_codes

        raise typer.Exit(exit_codes.DRIFT)


@app.command()
def tick(
    env: str = typer.Option("local", help="An embedded environment (in AWS, EventBridge Scheduler fires)."),
    at: str | None = typer.Option(
        None, help="The time the schedule fires, ISO 8601 (default: now); it monitors the hours before."
    ),
) -> None:
    """Fire the monitoring schedule once, as deployed: the monitoring job on its window of capture, the
    drift alarm, and the retraining rule when the alarm goes to ALARM."""
    import datetime as dt

    from mlops_kit import emulator as emulator_mod
    from mlops_kit import settings as settings_mod
    from mlops_kit.executor import scheduler
    from mlops_kit.monitoring.job import describe, scheduled_time

    try:
        when = scheduled_time(at) if at else dt.datetime.now(dt.UTC)
    except ValueError:
        raise typer.BadParameter(f"{at!r} is not an ISO 8601 time", param_hint="--at") from None
    settings = settings_mod.load(env)
    scheduler.require_embedded(settings)  # before any emulator starts
    with emulator_mod.session(settings.region) as emu:
        fired = scheduler.tick(settings, emu, when, progress=lambda line: out.print(line, highlight=False))
    out.print(describe(fired.summary))
    out.print(f"reports: {fired.reports}", highlight=False)
    out.print(f"alarm {fired.alarm}: {fired.previous_state} -> {fired.alarm_state}")
    for started in fired.started:
        out.print(
            f"rule {started.rule} started {started.pipeline_arn}: run {started.execution}", highlight=False
        )


def _fetch_baseline(s3, uri: str, stack: contextlib.ExitStack) -> Path:  # noqa: ANN001 - a boto3 client
    """An s3:// baseline's two files in a temporary folder (removed when the run ends)."""
    import tempfile

    from mlops_kit.monitoring import files
    from mlops_kit.s3 import split_uri

    bucket, prefix = split_uri(uri)
    folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mlops-baseline-")))
    for name in (files.STATISTICS, files.CONSTRAINTS):
        key = f"{prefix.rstrip('/')}/{name}" if prefix.strip("/") else name
        try:
            s3.download_file(bucket, key, str(folder / name))
        except Exception as exc:  # botocore's ClientError: the object or the bucket is not there
            raise FileNotFoundError(f"--baseline {uri}: cannot read s3://{bucket}/{key}: {exc}") from None
    return folder


def _print_run(summary: dict, out_dir: Path, alarms: dict[str, str]) -> None:
    from mlops_kit.monitoring.job import describe

    if summary["status"] == "ok":
        rows = []
        for f in summary["features"]:
            distance = f.get("ks", f.get("linf"))
            rows.append(
                (
                    f["name"],
                    f["inferred_type"],
                    "" if "psi" not in f else f"{f['psi']:.4f}",
                    "" if distance is None else f"{distance:.4f}",
                    str(f["violations"]),
                )
            )
        output.table(
            out,
            ("feature", "type", "PSI", "KS / L-inf", "violations"),
            rows,
            title=f"drift of {summary['items']:,} items against the baseline",
        )
    out.print(describe(summary))
    for problem in summary["malformed"]["examples"][:5]:
        out.print(f"  skipped {problem}", highlight=False)
    for alarm, state in alarms.items():
        out.print(f"alarm {alarm}: {state}")
    out.print(f"files written to {out_dir}")


@app.command()
def report(
    run_dir: Path = typer.Option(..., "--run", help="A run's folder (with run.json)."),
    out_file: Path = typer.Option(..., "--output", help="The HTML file to write."),
    history: Path | None = typer.Option(
        None, help="Folder of earlier runs for drift over time (default: --run's parent)."
    ),
    as_json: bool = typer.Option(False, "--json", help='{"report": path}'),
) -> None:
    """A self-contained HTML drift report of one run, with the drift of earlier runs over time."""
    from mlops_kit.monitoring import report as report_mod

    path = report_mod.write(run_dir, out_file, history=history)
    if as_json:
        output.emit({"report": str(path)})
        return
    out.print(f"report written to {path}")
