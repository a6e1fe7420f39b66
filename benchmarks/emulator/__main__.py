"""`python -m benchmarks.emulator [--requests N]`: what the emulator's durable state costs.

Measured in one run, each emulator a fresh process: N DynamoDB PutItem and N small S3 PutObject against
an emulator in memory only and against one journaling its state (`mlops_kit.emulator_journal`); then the
journaling one is killed (`kill -9`) and started again, and the time until it answers again (replaying
the journal) is reported beside a plain start. For the choice of a journal over pickled snapshots, the
same state is pickled once (moto's backends, in the server's process: whether it can be, and how long).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import tempfile
import time
from pathlib import Path

from mlops_kit.emulator import Emulator


def _load(emulator: Emulator, n: int) -> float:
    ddb, s3 = emulator.client("dynamodb"), emulator.client("s3")
    ddb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    s3.create_bucket(Bucket="bench")
    started = time.perf_counter()
    for i in range(n):
        ddb.put_item(TableName="t", Item={"k": {"S": str(i)}, "v": {"N": str(i)}})
        s3.put_object(Bucket="bench", Key=f"k/{i}", Body=b"x" * 1000)
    return (time.perf_counter() - started) / (2 * n) * 1e6


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.emulator")
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args(argv)
    results: dict[str, float] = {}
    started = time.perf_counter()
    with Emulator() as memory:
        results["plain start s"] = time.perf_counter() - started
        results["memory us/request"] = _load(memory, args.requests)
    with tempfile.TemporaryDirectory() as tmp:
        durable = Emulator(data_dir=Path(tmp)).start()
        results["journal us/request"] = _load(durable, args.requests)
        results["journal MB"] = (Path(tmp) / "journal.bin").stat().st_size / 1e6
        os.kill(durable.pid, signal.SIGKILL)
        durable._process.wait()
        started = time.perf_counter()
        again = Emulator(data_dir=Path(tmp)).start()
        results["restart with replay s"] = time.perf_counter() - started
        assert again.client("dynamodb").describe_table(TableName="t")["Table"]["ItemCount"] >= 0
        assert again.client("s3").list_objects_v2(Bucket="bench", Prefix="k/")["KeyCount"] == min(
            args.requests, 1000
        )
        again.stop()
    results["replayed requests/s"] = (2 * args.requests + 2) / max(
        results["restart with replay s"] - results["plain start s"], 1e-3
    )
    print(json.dumps({k: round(v, 2) for k, v in results.items()}, indent=2))


if __name__ == "__main__":
    main()
