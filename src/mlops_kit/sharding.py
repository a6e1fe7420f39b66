"""Scale out over SageMaker Processing instances: which instance gets which object, which partition an
entity's rows go to, and which instance a job is.

SageMaker runs a processing job on `InstanceCount` instances named `algo-1` ... `algo-N` and tells each
one who it is in `/opt/ml/config/resourceconfig.json` (`{"current_host": "algo-2", "hosts": [...]}`).
An input with `S3DataDistributionType: ShardedByS3Key` gives each instance about 1/N of the objects under
its prefix (never an object to two instances); every instance uploads its own output folder to the same
S3 prefix, so instances must name their output files apart (`part_name`).

SageMaker documents the share (about 1/N of the objects), not which object goes where. The kit's steps
rely only on "each object to exactly one instance"; the local executor uses one fixed rule,
`assign`: objects in key order, dealt round-robin to the hosts. Data is sharded by entity:
`partition_of` hashes an entity key to one of P partitions, so all of an entity's rows land in one
object and therefore on one instance (point-in-time features need an entity's whole history).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlops_kit import container

SHARDED = "ShardedByS3Key"
REPLICATED = "FullyReplicated"
HASH_KEY = "mlops-kit-shard0"  # 16 bytes: pandas' SipHash key, fixed so a partition never moves


def hosts(count: int) -> list[str]:
    """The instance names SageMaker gives a job of `count` instances."""
    if count < 1:
        raise ValueError(f"InstanceCount must be at least 1, got {count}")
    return [f"algo-{i}" for i in range(1, count + 1)]


def assign(keys: Sequence[str], count: int) -> list[list[str]]:
    """ShardedByS3Key as the local executor deals it: the keys in order, round-robin over `count` hosts
    (host i gets keys i, i+N, i+2N, ...). Each key goes to exactly one host; a host may get none."""
    ordered = sorted(keys)
    return [ordered[i::count] for i in range(len(hosts(count)))]


def partition_of(keys: pd.Series | np.ndarray | Sequence[Any], partitions: int) -> np.ndarray:
    """The partition (0..P-1) of each entity key: a fixed SipHash of its text, modulo P.

    The same key gives the same partition on every machine and in every run (no Python `hash()`, which
    is salted per process); a missing key is hashed as the empty text, so it stays in the data for
    validation to quarantine."""
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1, got {partitions}")
    text = pd.Series(keys, dtype="object").astype("string").fillna("").to_numpy(dtype=object)
    hashed = pd.util.hash_array(text, hash_key=HASH_KEY, categorize=True)
    return (hashed % np.uint64(partitions)).astype(np.int64)


@dataclass(frozen=True)
class Resources:
    """An instance's view of its job: its own name and every instance's."""

    current_host: str
    hosts: tuple[str, ...]

    @property
    def index(self) -> int:
        return self.hosts.index(self.current_host)

    @property
    def count(self) -> int:
        return len(self.hosts)


def resources(environ: Mapping[str, str] | None = None) -> Resources:
    """This processing instance's `resourceconfig.json` (one instance, `algo-1`, when there is none:
    a step run by hand)."""
    path = container.ml_root(environ) / "config" / "resourceconfig.json"
    if not path.is_file():
        return Resources("algo-1", ("algo-1",))
    try:
        document = json.loads(path.read_text())
        found = Resources(str(document["current_host"]), tuple(str(h) for h in document["hosts"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a resourceconfig.json with current_host and hosts ({exc})") from None
    if found.current_host not in found.hosts:
        raise ValueError(f"{path}: current_host {found.current_host!r} is not one of hosts {found.hosts}")
    return found


def part_name(stem: str, host: str, suffix: str = ".parquet") -> str:
    """An instance's own output file: `<stem>-<host><suffix>`, so instances never overwrite each other."""
    return f"{stem}-{host}{suffix}"


def write_resource_config(folder: Path, current_host: str, all_hosts: Sequence[str]) -> Path:
    """`resourceconfig.json` as SageMaker writes it for a processing instance."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "resourceconfig.json"
    path.write_text(json.dumps({"current_host": current_host, "hosts": list(all_hosts)}))
    return path
