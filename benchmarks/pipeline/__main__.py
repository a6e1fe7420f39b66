"""The local pipeline on a large data set: time per step of the executor (`python -m benchmarks.pipeline`).

Generates N transactions (default 1,000,000), uploads them to the embedded emulator, runs the training
pipeline's SageMaker definition through the local executor with the cache off, and prints each step's
wall time, the rows it handled, and the share of the whole. No peer runs SageMaker Pipelines locally,
so the figures stand alone: the table says where a run's time goes.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time

from mlops_kit import local_platform, settings
from mlops_kit.emulator import Emulator
from mlops_kit.executor import run_pipeline
from pipelines import synthetic


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--env", default="local")
    args = parser.parse_args(argv)
    os.environ.setdefault("MLOPS_STATE_DIR", tempfile.mkdtemp(prefix="mlops-bench-"))
    config = settings.load(args.env)
    started = time.perf_counter()
    frame = synthetic.generate(synthetic.GeneratorOptions(rows=args.rows, seed=11))
    generated = time.perf_counter() - started
    with Emulator(region=config.region) as emulator:
        platform = local_platform.ensure(config, emulator.client)
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        emulator.client("s3").put_object(
            Bucket=platform.buckets["raw"], Key="transactions/transactions.parquet", Body=buffer.getvalue()
        )
        began = time.perf_counter()
        record = run_pipeline(config, emulator, use_cache=False)
        total = time.perf_counter() - began
    timed = [s for s in record.steps if s.status == "Succeeded" and s.seconds]
    print(
        f"\nlocal pipeline, {args.rows:,} transactions ({len(frame) * 0.8:,.0f} train / {len(frame) * 0.2:,.0f} test)"
    )
    print(
        f"data generated in {generated:.1f}s; run {record.execution_id}: {record.status}, {total:.1f}s end to end\n"
    )
    print("| step | seconds | share of the run |")
    print("|---|---:|---:|")
    for step in timed:
        print(f"| {step.name} | {step.seconds:.1f} | {step.seconds / total:.0%} |")
    overhead = total - sum(s.seconds for s in timed)
    print(f"| (definition, staging, registry) | {overhead:.1f} | {overhead / total:.0%} |")
    print(f"| **total** | **{total:.1f}** | 100% |")
    print(
        f"\nroc_auc {record.metrics.get('roc_auc', float('nan')):.4f}, pr_auc {record.metrics.get('pr_auc', float('nan')):.4f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
