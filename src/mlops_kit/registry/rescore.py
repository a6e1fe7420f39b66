"""Champion against challenger on the same rows, measured by the use case's own evaluate function.

Both packages' models are measured on the candidate's test set (its `lineage:test`) by
`UseCase.entry_points.evaluate`, the function the pipeline's Evaluate step uses, so the comparison is the
use case's own, for any task type. A package's code is not trusted with the promoter's credentials: each
model is measured in a child process (`python -m mlops_kit.registry.rescore`) whose environment holds no
AWS, GitHub or kit variable, with a time limit; only the metrics come back.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from mlops_kit import project, usecase
from mlops_kit.registry.gates import Package, SameData
from mlops_kit.s3 import list_objects, split_uri
from mlops_kit.settings import Settings

TIME_LIMIT_S = 900.0
# What a measuring process inherits: enough to run Python, nothing to reach AWS or GitHub with.
KEPT_VARIABLES = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR", "SYSTEMROOT")


class RescoreError(RuntimeError):
    """A model cannot be measured: names the package and why."""


def same_data(
    settings: Settings, s3: Any, sagemaker: Any, candidate: Package, champion: Package
) -> SameData | None:
    """Both models measured on the candidate's test set; None when the candidate records none."""
    test_uri = candidate.lineage.get("test")
    if not test_uri:
        return None
    case = project.use_case(settings)
    with tempfile.TemporaryDirectory(prefix="mlops-rescore-") as tmp:
        data = Path(tmp) / "test.parquet"
        rows = _download_table(s3, test_uri, data, case.label)
        # The two children run side by side: each is one process importing the use case's stack.
        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = {
                package.arn: pool.submit(
                    measure, settings, s3, sagemaker, package.arn, data, Path(tmp) / str(i)
                )
                for i, package in enumerate((candidate, champion))
            }
            measured = {arn: future.result() for arn, future in futures.items()}
    return SameData(
        candidate=measured[candidate.arn], champion=measured[champion.arn], rows=rows, source=test_uri
    )


def measure(
    settings: Settings, s3: Any, sagemaker: Any, package_arn: str, data: Path, folder: Path
) -> dict[str, float]:
    """One package's declared metrics on `data`, from a child process running the use case's evaluate."""
    case = project.use_case(settings)
    model_dir = folder / "model"
    model_dir.mkdir(parents=True)
    url = _model_url(sagemaker, package_arn)
    bucket, key = split_uri(url)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as exc:
        raise RescoreError(f"{url} (model of {package_arn}): {exc}") from None
    try:
        with tarfile.open(fileobj=io.BytesIO(body), mode="r:*") as archive:
            archive.extractall(model_dir, filter="data")
    except tarfile.TarError as exc:
        raise RescoreError(f"{url} (model of {package_arn}) is not a model.tar.gz: {exc}") from None
    output = folder / "metrics.json"
    root = _import_root(settings, case.entry_points.evaluate)
    command = [
        sys.executable, "-m", "mlops_kit.registry.rescore",
        "--evaluate", case.entry_points.evaluate, "--model-dir", str(model_dir),
        "--data", str(data), "--output", str(output),
    ]  # fmt: skip
    try:
        result = subprocess.run(
            command,
            env=clean_environment(root, home=folder),
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=TIME_LIMIT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise RescoreError(f"measuring {package_arn} took longer than {TIME_LIMIT_S:.0f}s") from None
    if result.returncode != 0:
        last = next((ln for ln in reversed(result.stderr.splitlines()) if ln.strip()), "no output")
        raise RescoreError(
            f"measuring {package_arn} with {case.entry_points.evaluate} failed: {last.strip()}"
        )
    return usecase.check_metrics(
        case, json.loads(output.read_text()), f"{case.entry_points.evaluate} on {package_arn}"
    )


def clean_environment(project_root: Path, home: Path) -> dict[str, str]:
    """The child's environment: the project importable, the kit's interpreter, and nothing secret."""
    env = {k: os.environ[k] for k in KEPT_VARIABLES if k in os.environ}
    env.update(
        PYTHONPATH=str(project_root),
        HOME=str(home),
        AWS_EC2_METADATA_DISABLED="true",  # no instance credentials either
        OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"),
    )
    return env


def _import_root(settings: Settings, reference: str) -> Path:
    """The folder the use case's package is imported from here: the child imports it from there too."""
    import importlib.util

    project.resolve(reference, settings, f"{settings.use_case}.entry_points.evaluate")  # importable here
    top = reference.partition(":")[0].split(".")[0]
    spec = importlib.util.find_spec(top)
    if spec is None or spec.origin is None:
        raise RescoreError(f"cannot find where {top!r} is imported from")
    origin = Path(spec.origin)
    return origin.parent.parent if origin.name == "__init__.py" else origin.parent


def _download_table(s3: Any, uri: str, target: Path, label: str) -> int:
    import pandas as pd

    bucket, _ = split_uri(uri)
    parts = []
    for item in sorted(list_objects(s3, uri), key=lambda i: i["Key"]):
        if item["Key"].endswith(".parquet"):
            parts.append(
                pd.read_parquet(io.BytesIO(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()))
            )
    if not parts:
        raise RescoreError(f"{uri}: no parquet file to measure champion and challenger on")
    frame = pd.concat(parts, ignore_index=True)
    if label not in frame.columns:
        raise RescoreError(f"{uri}: no label column {label!r} (the use case's label)")
    frame.to_parquet(target, index=False)
    return len(frame)


def _model_url(sagemaker: Any, package_arn: str) -> str:
    described = sagemaker.describe_model_package(ModelPackageName=package_arn)
    containers = described.get("InferenceSpecification", {}).get("Containers", [])
    if not containers or not containers[0].get("ModelDataUrl"):
        raise RescoreError(f"model package {package_arn} has no ModelDataUrl")
    return containers[0]["ModelDataUrl"]


def main(argv: Sequence[str] | None = None) -> int:
    """In the child: import the evaluate function, measure, write the metrics as JSON."""
    import importlib

    import pandas as pd

    p = argparse.ArgumentParser(prog="python -m mlops_kit.registry.rescore")
    p.add_argument("--evaluate", required=True, help="package.module:function")
    p.add_argument("--model-dir", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--output", required=True)
    args = p.parse_args(argv)
    module, _, function = args.evaluate.partition(":")
    evaluate = getattr(importlib.import_module(module), function)
    metrics = evaluate(args.model_dir, pd.read_parquet(args.data))
    if not isinstance(metrics, dict):
        print(f"{args.evaluate} returned {type(metrics).__name__}, not a dict of metrics", file=sys.stderr)
        return 1
    Path(args.output).write_text(json.dumps({k: _float(v) for k, v in metrics.items()}))
    return 0


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number else None


if __name__ == "__main__":
    sys.exit(main())
