"""The Baseline step after a sharded one: `python -m mlops_kit.monitoring.merge_job` in one instance.

Reads every sketch the shards wrote (`*.json` under `--sketches`, from `mlops_kit.monitoring.sketch`),
merges them and writes Model Monitor's `statistics.json` and `constraints.json` (`files.write_baseline`),
with `--drift-threshold` as the PSI that counts as drift. What is exact and what is within the sketch's
rank error is said in `mlops_kit.monitoring.sketch`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from mlops_kit.monitoring import files, sketch


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sketches", default="/opt/ml/processing/input/sketches")
    p.add_argument("--baseline", default="/opt/ml/processing/baseline")
    p.add_argument("--drift-threshold", type=float, required=True)
    args = p.parse_args(argv)
    paths = sorted(Path(args.sketches).rglob("*.json"))
    try:
        documents = []
        for path in paths:
            try:
                documents.append(json.loads(path.read_text()))
            except ValueError as exc:
                raise ValueError(f"{path}: not a JSON sketch ({exc})") from None
        merged = sketch.merge(documents)
        statistics, constraints = sketch.baseline(merged, psi_threshold=args.drift_threshold)
    except (ValueError, KeyError) as exc:
        print(f"baseline failed: {exc}", file=sys.stderr)
        return 1
    files.write_baseline(Path(args.baseline), statistics, constraints)
    print(
        f"baseline of {merged['rows']:,} rows from {len(paths)} sketch(es) over "
        f"{len(merged['columns'])} columns written to {args.baseline}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
