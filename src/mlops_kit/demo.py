"""The lifecycle on the embedded default, one function per stage.

`run_demo` starts the emulator (or uses the running one), provisions the local platform, generates
data, uploads it to the raw bucket, runs the training pipeline's SageMaker definition through the local
executor (prepare, train, evaluate, baseline, gates, registration), and writes `demo-report.json`. Each stage is its own function so that later stages (executor, feature store,
serving, monitoring, promotion) replace them one at a time.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from mlops_kit import emulator as emu
from mlops_kit import executor, local_platform, synthetic
from mlops_kit.settings import Settings


@dataclass
class DemoReport:
    environment: str
    endpoint_url: str = ""
    rows: int = 0
    raw_data_uri: str = ""
    pipeline_run: str = ""
    model_data_url: str = ""
    model_package_arn: str = ""
    approval_status: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    timeline: list[dict[str, Any]] = field(default_factory=list)


Progress = Callable[[str], None]


def run_demo(
    settings: Settings,
    rows: int = 20_000,
    report_path: Path = Path("demo-report.json"),
    progress: Progress = lambda _: None,
) -> DemoReport:
    report = DemoReport(environment=settings.env)

    def stage(name: str, fn: Callable[[], Any]) -> Any:
        progress(name)
        started = time.perf_counter()
        result = fn()
        report.timeline.append({"stage": name, "seconds": round(time.perf_counter() - started, 3)})
        return result

    with emu.session(region=settings.region, port=settings.runtime.emulator_port) as emulator:
        report.endpoint_url = emulator.endpoint_url
        platform = stage(
            "provision the local platform", lambda: local_platform.ensure(settings, emulator.client)
        )
        frame = stage("generate transactions", lambda: generate_data(settings, rows))
        report.rows = len(frame)
        report.raw_data_uri = stage("upload raw data", lambda: upload_raw(emulator, platform, frame))
        run = stage("run the training pipeline", lambda: train_through_pipeline(settings, emulator, progress))
        report.pipeline_run = run.execution_id
        report.metrics = {k: float(v) for k, v in run.metrics.items()}
        report.model_data_url = run.artifacts.get("model", "")
        report.model_package_arn = run.artifacts.get("model_package", "")
        if not report.model_package_arn:
            raise RuntimeError(f"the pipeline run {run.execution_id} registered no model package")
        described = emulator.client("sagemaker").describe_model_package(
            ModelPackageName=report.model_package_arn
        )
        report.approval_status = described["ModelApprovalStatus"]
    write_report(report, report_path)
    return report


def generate_data(settings: Settings, rows: int) -> pd.DataFrame:
    return synthetic.generate(synthetic.GeneratorOptions(rows=rows, seed=settings.training.seed))


def train_through_pipeline(
    settings: Settings, emulator: emu.Emulator, progress: Progress
) -> executor.RunRecord:
    """The training pipeline's own definition, executed step by step on the emulator."""
    return executor.run_pipeline(
        settings, emulator, progress=lambda step, state, _: progress(f"pipeline: {step} {state.lower()}")
    )


def upload_raw(emulator: emu.Emulator, platform: local_platform.LocalPlatform, frame: pd.DataFrame) -> str:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    bucket, key = platform.buckets["raw"], "transactions/transactions.parquet"
    emulator.client("s3").put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())
    return f"s3://{bucket}/{key}"


def write_report(report: DemoReport, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(asdict(report), indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
