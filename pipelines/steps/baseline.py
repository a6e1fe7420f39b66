"""The monitoring baseline of a trained model: statistics and constraints of its training requests.

The baseline covers the request columns in the order the endpoint receives them, plus the model's
scores on the same rows (for prediction drift). It is written in Model Monitor's format and registered
with the model package, so it travels with the model to every stage.
"""

from __future__ import annotations

import argparse
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path

from mlops_kit.monitoring import files, stats
from pipelines.model import REQUEST_COLUMNS
from pipelines.steps.evaluate import load_handler
from pipelines.steps.io import read_table

PREDICTION = "prediction"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Compute the monitoring baseline.")
    p.add_argument("--model", default="/opt/ml/processing/input/model")
    p.add_argument("--train", default="/opt/ml/processing/input/train")
    p.add_argument("--baseline", default="/opt/ml/processing/baseline")
    p.add_argument("--drift-threshold", type=float, required=True)
    args = p.parse_args(argv)
    frame = read_table(args.train)
    archive = next(Path(args.model).rglob("model.tar.gz"), None)
    if archive is None:
        print(f"baseline failed: no model.tar.gz under {args.model}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        handler = load_handler(Path(tmp))
        model = handler.model_fn(tmp)
        requests = frame[list(REQUEST_COLUMNS)].copy()
        requests[PREDICTION] = handler.predict_fn(requests, model)
    statistics, constraints = stats.baseline(
        requests,
        features=list(REQUEST_COLUMNS),
        prediction_column=PREDICTION,
        psi_threshold=args.drift_threshold,
    )
    files.write_baseline(Path(args.baseline), statistics, constraints)
    print(
        f"baseline of {len(requests):,} rows over {len(REQUEST_COLUMNS)} features written to {args.baseline}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
