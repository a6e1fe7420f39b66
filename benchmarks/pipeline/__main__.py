"""The local pipeline on a large data set: time and peak memory per step (`python -m benchmarks.pipeline`).

Generates N transactions (default 1,000,000), uploads them to an embedded emulator of its own, and runs
the training pipeline's SageMaker definition through the local executor with the cache off, once per
instance count asked for (`--instances 1 2`: the sharded steps on one processing instance, then on two).
Steps that do not depend on each other run at the same time, as in SageMaker (Train beside Features), so
their shares can add up to more than the run. For each run it prints every step's wall time, its share of the run and the peak resident memory of its
largest instance (the job process's own high-water mark, VmHWM), then the model's ROC AUC, so one and
two instances can be compared on the same data in the same run. No peer runs SageMaker Pipelines
locally, so the figures stand alone; on a shared machine they carry its load (the load average is
printed with them).
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import os
import sys
import tempfile
import time

from mlops_kit import local_platform, settings
from mlops_kit.emulator import Emulator
from mlops_kit.executor import run_pipeline
from pipelines import synthetic


def run_once(config: settings.Settings, frame, instances: int) -> tuple[object, float]:
    training = dataclasses.replace(config.training, processing_instance_count=instances)
    config = dataclasses.replace(config, training=training)
    with Emulator(region=config.region) as emulator:
        platform = local_platform.ensure(config, emulator.client)
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        emulator.client("s3").put_object(
            Bucket=platform.buckets["raw"], Key="transactions/transactions.parquet", Body=buffer.getvalue()
        )
        began = time.perf_counter()
        record = run_pipeline(config, emulator, use_cache=False)
        return record, time.perf_counter() - began


def table(record, total: float, instances: int) -> list[str]:
    lines = [
        f"\n{instances} processing instance(s): run {record.execution_id} {record.status}, {total:.1f}s end to end",
        "",
        "| step | instances | seconds | share | peak RSS (MB, largest instance) |",
        "|---|---:|---:|---:|---:|",
    ]
    timed = [s for s in record.steps if s.status == "Succeeded" and s.seconds]
    for step in timed:
        used = step.properties.get("_instances") or []
        peak = max((u.get("max_rss_mb") or 0 for u in used), default=0)
        lines.append(
            f"| {step.name} | {len(used) or '-'} | {step.seconds:.1f} | {step.seconds / total:.0%} | "
            f"{peak:,.0f} |"
        )
    overhead = total - sum(s.seconds for s in timed)
    if overhead >= 0:
        lines.append(f"| (definition, staging, registry) | | {overhead:.1f} | {overhead / total:.0%} | |")
    else:  # steps ran at the same time (as SageMaker runs steps that do not depend on each other)
        lines.append(
            "| (steps that do not depend on each other ran at the same time: shares overlap) | | | | |"
        )
    lines.append(f"| **total** | | **{total:.1f}** | 100% | |")
    metrics = record.metrics
    lines.append(
        f"\nroc_auc {metrics.get('roc_auc', float('nan')):.4f}, pr_auc {metrics.get('pr_auc', float('nan')):.4f}"
    )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--instances", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--env", default="local")
    args = parser.parse_args(argv)
    os.environ.setdefault("MLOPS_STATE_DIR", tempfile.mkdtemp(prefix="mlops-bench-"))
    config = settings.load(args.env)
    started = time.perf_counter()
    frame = synthetic.generate(synthetic.GeneratorOptions(rows=args.rows, seed=11))
    generated = time.perf_counter() - started
    print(
        f"local pipeline, {args.rows:,} transactions; data generated in {generated:.1f}s; "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start"
    )
    aucs = {}
    for instances in args.instances:
        record, total = run_once(config, frame, instances)
        aucs[instances] = record.metrics.get("roc_auc", float("nan"))
        print("\n".join(table(record, total, instances)), flush=True)
        print(f"load average {os.getloadavg()[0]:.1f} after this run", flush=True)
    if len(aucs) > 1:
        same = len({round(a, 3) for a in aucs.values()}) == 1
        print(f"\nROC AUC by instance count: {aucs}; equal to 3 decimals: {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
