"""The benchmark's data: feature records in the offline store's form, and entity rows with labels.

Seeded. Feature records carry the event time both as the offline store holds it (ISO-8601 string, for the
kit) and as a timestamp column `event_ts` (for the peers, which need one); (id, event time) is unique so the
`merge_asof` reference is well defined. Some entity ids have no records at all, and some entity rows come
before an entity's first record or after the TTL, so rows without features are part of the check.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

FEATURES = [f"f{i}" for i in range(10)]
START = np.datetime64("2026-01-01T00:00:00", "ms")
SPAN_MS = 30 * 86_400_000
TTL_HOURS = 168


def generate(
    folder: Path, feature_rows: int, entity_rows: int, entities: int, seed: int = 11
) -> dict[str, int]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    names = np.char.add("c", np.char.zfill(np.arange(int(entities * 1.05)).astype(str), 7))
    ids = rng.integers(0, entities, feature_rows)
    ms = START.astype(np.int64) + rng.integers(0, SPAN_MS, feature_rows)
    _, first = np.unique(ids.astype(np.int64) * (1 << 42) + (ms - START.astype(np.int64)), return_index=True)
    first.sort()
    ids, ms = ids[first], ms[first]
    n = len(ids)
    stamps = pa.array(ms, type=pa.int64()).cast(pa.timestamp("ms", tz="UTC"))
    columns = {
        "customer_id": pa.array(names[ids]),
        "event_time": pc.strftime(stamps, format="%Y-%m-%dT%H:%M:%SZ"),
        "event_ts": pa.array(ms.astype("datetime64[ms]").astype("datetime64[us]")),
    }
    for name in FEATURES:
        columns[name] = pa.array(np.round(rng.normal(0, 1, n), 6))
    written = pa.array(np.full(n, ms.max() + 1), type=pa.int64()).cast(pa.timestamp("ms", tz="UTC"))
    columns["write_time"] = written
    columns["api_invocation_time"] = written
    columns["is_deleted"] = pa.array(np.zeros(n, dtype=bool))
    pq.write_table(pa.table(columns), folder / "features.parquet", row_group_size=1 << 20)

    entity_ids = rng.integers(0, len(names), entity_rows)  # the last 5% never have records
    entity_s = START.astype("datetime64[s]").astype(np.int64) + rng.integers(
        -86_400, SPAN_MS // 1000 + 86_400 * 3, entity_rows
    )
    entity_table = pa.table(
        {
            "customer_id": pa.array(names[entity_ids]),
            "event_time": pa.array(entity_s.astype("datetime64[s]").astype("datetime64[us]")),
            "label": pa.array(rng.integers(0, 2, entity_rows)),
        }
    )
    pq.write_table(entity_table, folder / "entities.parquet")
    return {"feature_rows": n, "entity_rows": entity_rows, "entities": entities}
