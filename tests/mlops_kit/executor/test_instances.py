# ruff: noqa: F811  (the executor tests' fixtures, ctx and platform, are imported and used by name)
"""A processing step on several instances: what each instance gets, that they run side by side (at most
one per core), and that one failed instance fails the step with nothing uploaded."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from mlops_kit import sharding
from mlops_kit.executor import PipelineFailed, jobs, runner
from tests.mlops_kit.executor.test_runner import ENV, _keys, _out, ctx, platform, processing  # noqa: F401

# Each instance writes what SageMaker told it (resourceconfig.json) and which files it was given.
REPORT = """
import json, os, pathlib, sys, time
root = pathlib.Path(os.environ.get("MLOPS_CONTAINER_ROOT", "/")) / "opt/ml"
config = json.loads((root / "config/resourceconfig.json").read_text())
shard, full, out = (pathlib.Path(a) for a in sys.argv[1:4])
started = time.time()
barrier = sys.argv[4] if len(sys.argv) > 4 else ""
if barrier:  # wait until every instance has started: only instances running side by side get past it
    pathlib.Path(barrier, config["current_host"]).touch()
    deadline = time.time() + 60
    while len(list(pathlib.Path(barrier).iterdir())) < len(config["hosts"]):
        if time.time() > deadline:
            sys.exit("the other instances never started")
        time.sleep(0.02)
else:
    time.sleep(0.3)
if os.environ.get("FAIL_ON") == config["current_host"]:
    sys.exit("instance failed on purpose")
(out / f"seen-{config['current_host']}.json").write_text(json.dumps({
    "config": config,
    "sharded": sorted(p.relative_to(shard).as_posix() for p in shard.rglob("*") if p.is_file()),
    "replicated": sorted(p.relative_to(full).as_posix() for p in full.rglob("*") if p.is_file()),
    "started": started, "ended": time.time(),
}))
"""


def _inputs(emulator, ctx, objects: int) -> tuple[str, str]:
    s3 = emulator.client("s3")
    base = f"inputs/{uuid.uuid4().hex}"
    for i in range(objects):
        s3.put_object(Bucket=ctx.buckets["raw"], Key=f"{base}/parts/part-{i:03d}.parquet", Body=b"x")
    s3.put_object(Bucket=ctx.buckets["raw"], Key=f"{base}/plan/plan.json", Body=b"{}")
    return f"s3://{ctx.buckets['raw']}/{base}/parts/", f"s3://{ctx.buckets['raw']}/{base}/plan/"


def _step(ctx, parts: str, plan: str, instances: int, args: tuple[str, ...] = (), env: dict | None = None):
    step = processing(
        ctx,
        "Shards",
        REPORT,
        inputs={"parts": parts, "plan": plan},
        args=[
            "/opt/ml/processing/input/parts",
            "/opt/ml/processing/input/plan",
            "/opt/ml/processing/out",
            *args,
        ],
        cache=False,
    )
    arguments = step["Arguments"]
    arguments["ProcessingResources"]["ClusterConfig"]["InstanceCount"] = instances
    arguments["ProcessingInputs"][0]["S3Input"]["S3DataDistributionType"] = "ShardedByS3Key"
    arguments["ProcessingInputs"][1]["S3Input"]["S3DataDistributionType"] = "FullyReplicated"
    arguments["Environment"] = env or {}
    return step


def _run(emulator, ctx, step: dict[str, Any]):
    definition = {"Version": "2020-12-01", "Parameters": [], "Steps": [step]}
    return runner.execute(definition, settings=ENV, emulator=emulator, ctx=ctx, use_cache=False)


def _seen(emulator, record) -> dict[str, dict[str, Any]]:
    uri = record.step("Shards").properties["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    bucket, prefix = uri[5:].split("/", 1)
    s3 = emulator.client("s3")
    found = {}
    for name in _keys(emulator, uri):
        body = s3.get_object(Bucket=bucket, Key=f"{prefix}/{name}")["Body"].read()
        document = json.loads(body)
        found[document["config"]["current_host"]] = document
    return found


def test_each_instance_gets_its_share_of_a_sharded_input_and_all_of_a_replicated_one(
    emulator, ctx, tmp_path
) -> None:
    parts, plan = _inputs(emulator, ctx, objects=7)
    record = _run(emulator, ctx, _step(ctx, parts, plan, instances=3))
    seen = _seen(emulator, record)
    assert sorted(seen) == ["algo-1", "algo-2", "algo-3"]
    names = [f"part-{i:03d}.parquet" for i in range(7)]
    expected = sharding.assign(names, 3)
    for index, host in enumerate(sharding.hosts(3)):
        # resourceconfig.json as SageMaker writes it on each processing instance
        assert seen[host]["config"] == {"current_host": host, "hosts": ["algo-1", "algo-2", "algo-3"]}
        assert seen[host]["sharded"] == expected[index]
        assert seen[host]["replicated"] == ["plan.json"]
    shards = [seen[h]["sharded"] for h in sharding.hosts(3)]
    assert sorted(n for s in shards for n in s) == names  # every object to exactly one instance
    assert [len(s) for s in shards] == [3, 2, 2]
    instances = record.step("Shards").properties["_instances"]
    assert [i["host"] for i in instances] == ["algo-1", "algo-2", "algo-3"]
    assert all(i["max_rss_mb"] > 1 for i in instances)  # each instance's own peak memory, measured


def test_more_instances_than_objects_leaves_an_instance_with_an_empty_folder(emulator, ctx) -> None:
    parts, plan = _inputs(emulator, ctx, objects=1)
    seen = _seen(emulator, _run(emulator, ctx, _step(ctx, parts, plan, instances=2)))
    assert seen["algo-1"]["sharded"] == ["part-000.parquet"]
    assert seen["algo-2"]["sharded"] == []


def test_instances_run_side_by_side(emulator, ctx, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(jobs.os, "cpu_count", lambda: 2)  # the bound is the cores; two, whatever runs this
    parts, plan = _inputs(emulator, ctx, objects=2)
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    record = _run(emulator, ctx, _step(ctx, parts, plan, instances=2, args=(str(barrier),)))
    assert sorted(p.name for p in barrier.iterdir()) == ["algo-1", "algo-2"]
    assert record.status == "Succeeded"


def test_no_more_instances_run_at_once_than_there_are_cores(emulator, ctx, monkeypatch) -> None:
    monkeypatch.setattr(jobs.os, "cpu_count", lambda: 1)
    parts, plan = _inputs(emulator, ctx, objects=2)
    seen = _seen(emulator, _run(emulator, ctx, _step(ctx, parts, plan, instances=2)))
    first, second = sorted(seen.values(), key=lambda d: d["started"])
    assert first["ended"] <= second["started"]


def test_one_failed_instance_fails_the_step_and_uploads_nothing(emulator, ctx) -> None:
    parts, plan = _inputs(emulator, ctx, objects=4)
    step = _step(ctx, parts, plan, instances=2, env={"FAIL_ON": "algo-2"})
    with pytest.raises(PipelineFailed, match="instance algo-2: exit code 1: instance failed on purpose"):
        _run(emulator, ctx, step)
    log = Path(runner.list_runs()[0].steps[-1].log)
    assert log.name == "Shards.algo-2.log"
    uri = runner.list_runs()[0].artifacts.get("Shards/out")
    assert uri is None  # the step failed: no outputs recorded
    bucket = ctx.buckets["artifacts"]
    prefix = runner.list_runs()[0].execution_id
    listed = emulator.client("s3").list_objects_v2(Bucket=bucket, Prefix=f"tests/{prefix}/Shards/")
    assert listed.get("KeyCount", 0) == 0  # algo-1 succeeded, yet nothing of it was uploaded
