"""The lifecycle on the embedded default, one function per stage.

`run_demo` starts the emulator (or uses the running one), provisions the local platform, generates
data, uploads it to the raw bucket, trains, evaluates and registers a model package, and writes
`demo-report.json`. Each stage is its own function so that later stages (executor, feature store,
serving, monitoring, promotion) replace them one at a time.
"""

from __future__ import annotations

import io
import json
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import average_precision_score, precision_score, recall_score, roc_auc_score

from mlops_kit import emulator as emu
from mlops_kit import local_platform, synthetic
from mlops_kit.registry import packages
from mlops_kit.settings import Settings

NUMERIC = ("amount", "hour", "customer_tenure_days")
CATEGORICAL = ("merchant_category", "channel")
LABEL = "is_fraud"
SKLEARN_IMAGE = "683313688378.dkr.ecr.{region}.amazonaws.com/sagemaker-scikit-learn:{version}-cpu-py3"


@dataclass
class DemoReport:
    environment: str
    endpoint_url: str = ""
    rows: int = 0
    raw_data_uri: str = ""
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
        model, train, test = stage("train", lambda: train_model(settings, frame))
        report.metrics = stage("evaluate", lambda: evaluate(model, test))
        report.model_data_url = stage(
            "upload the model", lambda: upload_model(emulator, platform, model, settings.env)
        )
        report.model_package_arn = stage(
            "register the model package",
            lambda: register(emulator, platform, settings, report.model_data_url, report.metrics),
        )
        described = emulator.client("sagemaker").describe_model_package(
            ModelPackageName=report.model_package_arn
        )
        report.approval_status = described["ModelApprovalStatus"]
    write_report(report, report_path)
    return report


def generate_data(settings: Settings, rows: int) -> pd.DataFrame:
    return synthetic.generate(synthetic.GeneratorOptions(rows=rows, seed=settings.training.seed))


def upload_raw(emulator: emu.Emulator, platform: local_platform.LocalPlatform, frame: pd.DataFrame) -> str:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    bucket, key = platform.buckets["raw"], "transactions/transactions.parquet"
    emulator.client("s3").put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())
    return f"s3://{bucket}/{key}"


def _matrix(frame: pd.DataFrame) -> pd.DataFrame:
    matrix = frame[list(NUMERIC)].astype("float64").copy()
    for column in CATEGORICAL:
        matrix[column] = pd.Categorical(frame[column], categories=_categories(column)).codes
    return matrix


def _categories(column: str) -> tuple[str, ...]:
    return {"merchant_category": synthetic.CATEGORIES, "channel": synthetic.CHANNELS}[column]


def train_model(
    settings: Settings, frame: pd.DataFrame
) -> tuple[HistGradientBoostingClassifier, pd.DataFrame, pd.DataFrame]:
    """A time-ordered split (the last 20 % of events are held out) and a gradient-boosted classifier."""
    cut = frame["event_time"].quantile(0.8)
    train, test = frame[frame["event_time"] < cut], frame[frame["event_time"] >= cut]
    params = {k: v for k, v in settings.training.hyperparameters.items()}
    model = HistGradientBoostingClassifier(
        categorical_features=[len(NUMERIC) + i for i in range(len(CATEGORICAL))],
        random_state=settings.training.seed,
        **params,
    )
    model.fit(_matrix(train), train[LABEL])
    return model, train, test


def evaluate(
    model: HistGradientBoostingClassifier, test: pd.DataFrame, threshold: float = 0.5
) -> dict[str, float]:
    scores = model.predict_proba(_matrix(test))[:, 1]
    labels = test[LABEL].to_numpy()
    predicted = (scores >= threshold).astype(np.int64)
    return {
        "roc_auc": float(roc_auc_score(labels, scores)),
        "pr_auc": float(average_precision_score(labels, scores)),
        "precision": float(precision_score(labels, predicted, zero_division=0)),
        "recall": float(recall_score(labels, predicted, zero_division=0)),
        "threshold": threshold,
        "rows": float(len(test)),
    }


def upload_model(emulator: emu.Emulator, platform: local_platform.LocalPlatform, model: Any, env: str) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        joblib.dump(model, Path(tmp) / "model.joblib")
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            tar.add(Path(tmp) / "model.joblib", arcname="model.joblib")
    bucket, key = platform.buckets["artifacts"], f"models/demo-{int(time.time() * 1000)}/model.tar.gz"
    emulator.client("s3").put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())
    return f"s3://{bucket}/{key}"


def register(
    emulator: emu.Emulator,
    platform: local_platform.LocalPlatform,
    settings: Settings,
    model_data_url: str,
    metrics: dict[str, float],
) -> str:
    metrics_key = model_data_url.removeprefix(f"s3://{platform.buckets['artifacts']}/").replace(
        "model.tar.gz", "evaluation.json"
    )
    emulator.client("s3").put_object(
        Bucket=platform.buckets["artifacts"], Key=metrics_key, Body=packages.metrics_json(metrics)
    )
    request = packages.PackageRequest(
        group=platform.model_package_group,
        image_uri=SKLEARN_IMAGE.format(region=settings.region, version=settings.training.sklearn_version),
        model_data_url=model_data_url,
        metrics=metrics,
        metrics_uri=f"s3://{platform.buckets['artifacts']}/{metrics_key}",
        description="fraud classifier trained by `mlops demo`",
    )
    return packages.register(emulator.client("sagemaker"), request)


def write_report(report: DemoReport, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(asdict(report), indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
