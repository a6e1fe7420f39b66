"""The scheduled monitoring job: `python -m mlops_kit.monitoring.job` inside a SageMaker Processing job.

Its defaults are the Processing container's paths: the baseline staged at /opt/ml/processing/baseline,
the window's capture files at /opt/ml/processing/input/capture, and the outputs written to
/opt/ml/processing/output (uploaded to the monitoring bucket by SageMaker). Every argument can also come
from an environment variable (the uppercase name; Model Monitor's own names `dataset_source`,
`output_path`, `endpoint_name`, `start_time`, `end_time` and `publish_cloudwatch_metrics` work too), so
the schedule can set them either way. Runs in the project's runtime image (`mlops_kit.runtime`), like every job of the kit.

A scheduled run (`--window-hours`, `WINDOW_HOURS`) monitors the hour partitions of capture before the
time it was scheduled for (`--scheduled-time`, `SCHEDULED_TIME`, an ISO time; `now` or empty: the job's
start), read from `--capture` (an `s3://` prefix: only those hours are listed), and writes its files under
`--output`'s `yyyy/mm/dd/hh/` of that time: one folder per scheduled run, as Model Monitor's reports
(`mlops_kit.infra.plans.monitoring`).

`--task` (`TASK`: binary, the default, multiclass or regression) says how model quality reads the answers
and the ground truth; `--classes` (`CLASSES`, comma-separated) is the model's class order, the positions of
its probability vectors. `--min-window-rows` (`MIN_WINDOW_ROWS`, the settings' `monitoring.min_window_rows`)
is the fewest rows a window, or a day of it, needs to be scored.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

TASKS = ("binary", "multiclass", "regression")  # mlops_kit.monitoring.quality.TASKS, without its imports
BASELINE = "/opt/ml/processing/baseline"
CAPTURE = "/opt/ml/processing/input/capture"
OUTPUT = "/opt/ml/processing/output"
JOB_CONFIG = "/opt/ml/config/processingjobconfig.json"
MIN_WINDOW_ROWS = 100  # the default of mlops_kit.settings.Monitoring.min_window_rows


def _container(path: str) -> str:
    """A container path, under the stand-in of /opt/ml when the executor runs the image locally."""
    from mlops_kit.container import ml_root

    return str(ml_root() / path.removeprefix("/opt/ml/"))


def _env(*names: str, default: str = "") -> str:
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return default


def _flag(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "enabled", "on")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mlops_kit.monitoring.job", description=__doc__.split("\n")[0])
    p.add_argument("--baseline", default=_env("BASELINE_DIR", default=_container(BASELINE)))
    p.add_argument("--capture", default=_env("CAPTURE_PATH", "dataset_source", default=_container(CAPTURE)))
    p.add_argument("--output", default=_env("OUTPUT_DIR", "output_path", default=_container(OUTPUT)))
    p.add_argument("--endpoint", default=_env("ENDPOINT_NAME", "endpoint_name"))
    p.add_argument("--drift-threshold", type=float, default=_env("DRIFT_THRESHOLD") or None)
    p.add_argument(
        "--retrain-pipeline",
        default=_env("RETRAIN_PIPELINE"),
        help="the training pipeline to start on drift; empty: do not retrain",
    )
    p.add_argument("--ground-truth", default=_env("GROUND_TRUTH_PATH") or None)
    p.add_argument(
        "--task", default=_env("TASK", default="binary"), help=f"the model's task: {', '.join(TASKS)}"
    )
    p.add_argument(
        "--classes",
        default=_env("CLASSES") or None,
        help="the model's classes in the order of its probability vectors, comma-separated",
    )
    p.add_argument(
        "--min-window-rows",
        type=int,
        default=_env("MIN_WINDOW_ROWS") or MIN_WINDOW_ROWS,
        help="fewer captured rows than this: insufficient data, not scored",
    )
    p.add_argument(
        "--window-hours",
        type=int,
        default=_env("WINDOW_HOURS", default="0"),  # a string default goes through type=int: a clear error
        help="a scheduled run: monitor this many hour partitions before --scheduled-time (0: all)",
    )
    p.add_argument("--scheduled-time", default=_env("SCHEDULED_TIME", default="now"))
    p.add_argument("--start", default=_env("WINDOW_START", "start_time") or None)
    p.add_argument("--end", default=_env("WINDOW_END", "end_time") or None)
    p.add_argument(
        "--emit-metrics",
        default=_flag(_env("EMIT_METRICS", "publish_cloudwatch_metrics", default="enabled")),
        action=argparse.BooleanOptionalAction,
    )
    p.add_argument("--region", default=_env("AWS_REGION", "AWS_DEFAULT_REGION") or None)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not args.endpoint:
        print("error: name the endpoint (--endpoint or ENDPOINT_NAME)", file=sys.stderr)
        return 2
    if args.task not in TASKS:
        print(
            f"error: unknown task {args.task!r} (--task or TASK); expected one of {', '.join(TASKS)}",
            file=sys.stderr,
        )
        return 2
    try:
        scheduled = scheduled_time(args.scheduled_time)
    except ValueError:
        print(
            f"error: --scheduled-time / SCHEDULED_TIME: {args.scheduled_time!r} is not an ISO time or 'now'",
            file=sys.stderr,
        )
        return 2
    if args.window_hours < 0:
        print(f"error: --window-hours / WINDOW_HOURS: {args.window_hours} is negative", file=sys.stderr)
        return 2
    import pandas as pd

    from mlops_kit.infra.plans import monitoring as plan
    from mlops_kit.monitoring import retrain
    from mlops_kit.monitoring import run as monitor

    partitions, output = None, Path(args.output)
    if args.window_hours:
        partitions = plan.window(scheduled, args.window_hours)
        output = output / plan.report_prefix(scheduled)

    cloudwatch = trigger = None
    if args.emit_metrics or args.retrain_pipeline:
        import boto3

        if args.emit_metrics:
            cloudwatch = boto3.client("cloudwatch", region_name=args.region)
        if args.retrain_pipeline:
            sagemaker = boto3.client("sagemaker", region_name=args.region)
            trigger = retrain.sagemaker_trigger(sagemaker, args.retrain_pipeline, run_id=_run_id(args))
    try:
        outcome = monitor.run(
            args.baseline,
            args.capture,
            output,
            endpoint=args.endpoint,
            threshold=args.drift_threshold,
            retrain_on_drift=bool(args.retrain_pipeline),
            trigger=trigger,
            cloudwatch=cloudwatch,
            ground_truth=args.ground_truth,
            task=args.task,
            classes=classes(args.classes),
            start=pd.Timestamp(args.start) if args.start else None,
            end=pd.Timestamp(args.end) if args.end else None,
            min_rows=args.min_window_rows,
            partitions=partitions,
            metrics_at=scheduled if args.window_hours else None,
        )
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(describe(outcome.summary))
    return 0


def describe(summary: dict) -> str:
    """One line for a log: what the run found."""
    if summary["status"] == "no_data":
        return (
            f"no data: the window had no captured requests ({summary['lines']} lines in {summary['files']} files, "
            f"{summary['malformed']['count']} malformed)"
        )
    if summary["status"] == "insufficient_data":
        return (
            f"insufficient data: {summary['items']} items, fewer than the {summary['min_rows']} a window needs "
            "to be scored; no drift score, no violations"
        )
    score = summary["drift_score"]
    text = (
        f"{summary['items']} items, {summary['violations']} violations, drift score "
        f"{'n/a' if score is None else f'{score:.4f}'} (threshold {summary['threshold']:g})"
    )
    if summary["malformed"]["count"]:
        text += f", {summary['malformed']['count']} malformed lines skipped"
    quality = summary.get("quality")
    if quality and quality.get("error"):
        text += f"; model quality not measured: {quality['error']}"
    elif quality:
        shown = [f"{k} {v:.4g}" for k, v in quality.items() if isinstance(v, float)][:3]
        text += f"; model quality ({quality['task']}, {quality['labelled']} labelled): {', '.join(shown)}"
    if summary.get("retraining"):
        r = summary["retraining"]
        text += f"; retraining {'started: ' + str(r.get('execution')) if r.get('started') else 'not started'}"
    return text


def scheduled_time(text: str) -> dt.datetime:
    """The time a run was scheduled for, in UTC: an ISO time (Scheduler's `2026-03-22T18:00:00Z`), or
    `now`/empty for a run started by hand."""
    if text.strip().lower() in ("", "now"):
        return dt.datetime.now(dt.UTC)
    moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return moment.astimezone(dt.UTC) if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def classes(text: str | None) -> list[str] | None:
    """`a, b ,c` as ["a", "b", "c"]; None when not given."""
    names = [c.strip() for c in (text or "").split(",") if c.strip()]
    return names or None


def _run_id(args: argparse.Namespace) -> str:
    """The processing job's name: unique per scheduled run and the same on a retry of it."""
    try:
        with open(_container(JOB_CONFIG), encoding="utf-8") as handle:
            return json.load(handle)["ProcessingJobName"]
    except (OSError, ValueError, KeyError):
        return f"{args.endpoint}:{args.start}:{args.end}:{args.output}"


if __name__ == "__main__":
    sys.exit(main())
