"""Feast's contender, run by the peer environment's Python (Feast is not in the project's lock).

`python feast_runner.py DATA_DIR OUT_FILE`: a Feast repo with the file offline store over the same
Parquet file, then `get_historical_features` for the entity rows; prints one JSON line like the others.
Feast returns rows in its own order, so a row number travels with each entity row to restore it.
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import pandas as pd
from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
from feast.types import Float64

FEATURES = [f"f{i}" for i in range(10)]
TTL_HOURS = 168


def main(folder: Path, out: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="feast-bench-") as repo:
        Path(repo, "feature_store.yaml").write_text(
            "project: bench\nregistry: registry.db\nprovider: local\n"
            "offline_store:\n  type: file\nonline_store:\n  type: sqlite\n  path: online.db\n"
            "entity_key_serialization_version: 3\n"
        )
        store = FeatureStore(repo_path=repo)
        customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.STRING)
        source = FileSource(path=str(folder / "features.parquet"), timestamp_field="event_ts")
        view = FeatureView(
            name="bench",
            entities=[customer],
            ttl=timedelta(hours=TTL_HOURS),
            schema=[Field(name=name, dtype=Float64) for name in FEATURES],
            source=source,
        )
        store.apply([customer, view])
        started = time.perf_counter()
        Path(f"{out}.started").touch()  # the harness's clock for a run it has to stop
        entities = pd.read_parquet(folder / "entities.parquet")
        entity_df = pd.DataFrame(
            {
                "customer_id": entities["customer_id"],
                "event_timestamp": entities["event_time"].dt.tz_localize("UTC"),
                "label": entities["label"],
                "row": range(len(entities)),
            }
        )
        frame = store.get_historical_features(
            entity_df=entity_df, features=[f"bench:{n}" for n in FEATURES]
        ).to_df()
        seconds = time.perf_counter() - started
    rows = len(frame)
    frame = frame.set_index("row").reindex(range(len(entities)))  # rows Feast dropped come back as nulls
    frame[FEATURES].astype("float64").to_parquet(out, index=False)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_mb, "rows": rows}))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
