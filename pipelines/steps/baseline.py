"""The monitoring baseline of a trained model: statistics of its training requests, a shard at a time.

The baseline covers the request columns in the order the endpoint receives them, plus the model's
scores on the same rows (for prediction drift). This step runs on the sharded pipeline's instances: each
scores its share of the training parts (`ShardedByS3Key`), one part at a time, and writes one mergeable
sketch (`mlops_kit.monitoring.sketch`) named after its host; the kit's merge step
(`mlops_kit.monitoring.merge_job`) adds the sketches into Model Monitor's `statistics.json` and
`constraints.json`, registered with the model package so the baseline travels with the model.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path

from mlops_kit import sharding
from mlops_kit.monitoring import sketch
from mlops_kit.validation import table_files
from pipelines.model import REQUEST_COLUMNS
from pipelines.steps.evaluate import load_handler
from pipelines.steps.io import read_table

PREDICTION = "prediction"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description="Sketch the monitoring baseline of this instance's training parts."
    )
    p.add_argument("--model", default="/opt/ml/processing/input/model")
    p.add_argument("--train", default="/opt/ml/processing/input/train")
    p.add_argument("--sketches", default="/opt/ml/processing/sketches")
    args = p.parse_args(argv)
    archive = next(Path(args.model).rglob("model.tar.gz"), None)
    if archive is None:
        print(f"baseline failed: no model.tar.gz under {args.model}", file=sys.stderr)
        return 1
    try:
        parts = table_files(args.train)
    except FileNotFoundError:
        parts = []  # an instance of a sharded job may get no part: its sketch holds no rows
    sketches = []
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        handler = load_handler(Path(tmp))
        model = handler.model_fn(tmp)
        for part in parts:  # one part at a time: memory bounded by the largest part
            requests = read_table(part)[list(REQUEST_COLUMNS)]
            requests[PREDICTION] = handler.predict_fn(requests, model)
            sketches.append(
                sketch.sketch(requests, features=list(REQUEST_COLUMNS), prediction_column=PREDICTION)
            )
    host = sharding.resources().current_host
    out = Path(args.sketches)
    out.mkdir(parents=True, exist_ok=True)
    name = sharding.part_name("sketch", host, ".json")
    tmp_file = out / f".{name}.tmp"
    if sketches:
        tmp_file.write_text(json.dumps(sketch.merge(sketches)))
        os.replace(tmp_file, out / name)
    rows = sum(s["rows"] for s in sketches)
    print(f"{host}: sketched {rows:,} rows of {len(parts)} part(s) over {len(REQUEST_COLUMNS)} features")
    return 0


if __name__ == "__main__":
    sys.exit(main())
