"""One contender per process: `python -m benchmarks.feature_store.contenders NAME DATA_DIR OUT_FILE`.

Each reads the same Parquet files, builds the point-in-time training set (entity rows + the 10 features as
of each row's time, within the TTL), writes it for the check, and prints one JSON line: the seconds from
reading the files to having the frame, and the process's peak RSS.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from datetime import timedelta
from pathlib import Path

import pandas as pd

from benchmarks.feature_store.data import FEATURES, TTL_HOURS


def kit(folder: Path) -> pd.DataFrame:
    import pyarrow.dataset as ds

    from mlops_kit.features import Feature, FeatureGroup, FeatureType
    from mlops_kit.features.pit import point_in_time

    group = FeatureGroup(
        "bench",
        Feature("customer_id", FeatureType.STRING),
        Feature("event_time", FeatureType.STRING),
        tuple(Feature(name, FeatureType.FRACTIONAL) for name in FEATURES),
    )
    entities = pd.read_parquet(folder / "entities.parquet")
    records = ds.dataset(folder / "features.parquet", format="parquet")
    return point_in_time(entities, [(group, records)], timedelta(hours=TTL_HOURS))


def duckdb_asof(folder: Path) -> pd.DataFrame:
    import duckdb

    selects = ", ".join(
        f"CASE WHEN f.event_ts >= e.event_time - INTERVAL {TTL_HOURS} HOUR THEN f.{n} END AS {n}"
        for n in FEATURES
    )
    sql = f"""
        SELECT e.*, {selects}
        FROM (SELECT *, row_number() OVER () AS __row FROM read_parquet('{folder / "entities.parquet"}')) e
        ASOF LEFT JOIN read_parquet('{folder / "features.parquet"}') f
          ON e.customer_id = f.customer_id AND e.event_time >= f.event_ts
        ORDER BY e.__row
    """
    return duckdb.sql(sql).df().drop(columns="__row")


def pandas_merge_asof(folder: Path) -> pd.DataFrame:
    entities = pd.read_parquet(folder / "entities.parquet")
    features = pd.read_parquet(folder / "features.parquet", columns=["customer_id", "event_ts", *FEATURES])
    left = entities.reset_index().sort_values("event_time", kind="stable")
    right = features.sort_values("event_ts", kind="stable")
    joined = pd.merge_asof(
        left,
        right,
        left_on="event_time",
        right_on="event_ts",
        by="customer_id",
        direction="backward",
        tolerance=pd.Timedelta(hours=TTL_HOURS),
    )
    return joined.set_index("index").sort_index().drop(columns="event_ts").rename_axis(None)


CONTENDERS = {"kit": kit, "duckdb": duckdb_asof, "merge_asof": pandas_merge_asof}


def main(argv: list[str]) -> int:
    name, folder, out = argv[0], Path(argv[1]), Path(argv[2])
    started = time.perf_counter()
    frame = CONTENDERS[name](folder)
    seconds = time.perf_counter() - started
    frame[FEATURES].astype("float64").to_parquet(out, index=False)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_mb, "rows": len(frame)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
