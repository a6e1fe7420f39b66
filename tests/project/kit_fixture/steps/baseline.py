"""The monitoring baseline of a trained model: statistics and constraints of its training requests and
of its predictions on them, in Model Monitor's format, registered with the model package."""

from __future__ import annotations

import argparse
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path

from kit_fixture.features import FEATURES
from kit_fixture.steps.evaluate import load_handler
from kit_fixture.steps.prepare import read_table
from mlops_kit.monitoring import files, stats

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
        requests = frame[list(FEATURES)].copy()
        requests[PREDICTION] = handler.predict_fn(requests, handler.model_fn(tmp))
    statistics, constraints = stats.baseline(
        requests, features=list(FEATURES), prediction_column=PREDICTION, psi_threshold=args.drift_threshold
    )
    files.write_baseline(Path(args.baseline), statistics, constraints)
    print(f"baseline of {len(requests):,} rows over {len(FEATURES)} features written to {args.baseline}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
