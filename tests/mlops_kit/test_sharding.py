"""Who gets what when a job runs on several instances: ShardedByS3Key's deal, entity-hash partitions,
and each instance's resourceconfig.json."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from mlops_kit import sharding


def test_hosts_are_named_as_sagemaker_names_them() -> None:
    assert sharding.hosts(3) == ["algo-1", "algo-2", "algo-3"]
    assert sharding.hosts(1) == ["algo-1"]
    with pytest.raises(ValueError, match="InstanceCount must be at least 1, got 0"):
        sharding.hosts(0)


def test_sharded_by_s3_key_deals_every_key_to_exactly_one_host_in_key_order() -> None:
    keys = [f"p/part-{i:05d}.parquet" for i in (4, 0, 3, 1, 2)]
    shares = sharding.assign(keys, 2)
    assert shares == [
        ["p/part-00000.parquet", "p/part-00002.parquet", "p/part-00004.parquet"],
        ["p/part-00001.parquet", "p/part-00003.parquet"],
    ]
    assert sharding.assign(keys[:1], 3) == [["p/part-00004.parquet"], [], []]


def test_an_entity_always_lands_in_the_same_partition_in_any_process() -> None:
    keys = [f"c{i:06d}" for i in range(5000)] + [None]
    here = sharding.partition_of(keys, 8)
    code = (
        "import json, sys; from mlops_kit import sharding; "
        "keys = json.loads(sys.stdin.read()); print(json.dumps(sharding.partition_of(keys, 8).tolist()))"
    )
    # another interpreter (Python's own hash() is salted per process: it must not be what decides)
    there = subprocess.run(
        [sys.executable, "-c", code], input=json.dumps(keys), capture_output=True, text=True, check=True
    )
    assert json.loads(there.stdout) == here.tolist()
    assert set(here) == set(range(8))
    counts = np.bincount(here, minlength=8)
    assert counts.min() > 0.8 * len(keys) / 8  # spread evenly
    repeated = sharding.partition_of(pd.Series(keys[:10] * 3), 8)
    assert (repeated.reshape(3, 10) == here[:10]).all()  # the same key, the same partition, every time
    with pytest.raises(ValueError, match="partitions must be at least 1"):
        sharding.partition_of(keys, 0)


def test_an_instance_reads_who_it_is_from_resourceconfig(tmp_path) -> None:
    environ = {"MLOPS_CONTAINER_ROOT": str(tmp_path)}
    assert sharding.resources(environ) == sharding.Resources("algo-1", ("algo-1",))  # run by hand
    sharding.write_resource_config(tmp_path / "opt/ml/config", "algo-2", ["algo-1", "algo-2"])
    found = sharding.resources(environ)
    assert (found.current_host, found.index, found.count) == ("algo-2", 1, 2)
    (tmp_path / "opt/ml/config/resourceconfig.json").write_text(
        '{"current_host": "algo-3", "hosts": ["algo-1"]}'
    )
    with pytest.raises(ValueError, match="current_host 'algo-3' is not one of hosts"):
        sharding.resources(environ)
    (tmp_path / "opt/ml/config/resourceconfig.json").write_text('{"hosts": []}')
    with pytest.raises(ValueError, match="resourceconfig.json: not a resourceconfig.json"):
        sharding.resources(environ)
    assert sharding.part_name("ingest", "algo-2", ".json") == "ingest-algo-2.json"
