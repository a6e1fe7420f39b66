"""Serving fills what a JSON record lacks from the online feature store: real HTTP, the emulator's store."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pandas as pd
import pytest
from serving_helpers import fitted_model, start_server, write_model_dir

from mlops_kit import settings
from mlops_kit.emulator import state_file
from mlops_kit.features import connect, ingest

NAMES = ["x1", "count_24h", "x1_sum_24h"]  # a request's x1; the test project's entity-activity group
SCRIPT = "def predict_fn(data, model):\n    return model.predict_proba(data)[:, 1]\n"


@pytest.fixture
def recorded(emulator):
    """The session's emulator as the recorded one (`mlops emulator start`), which the server finds."""
    path = state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"pid": emulator.pid, "port": emulator.port, "region": emulator.region}))
    return emulator


def _activity(entity: str, count: int, total: float) -> pd.DataFrame:
    now = pd.Timestamp.now(tz="UTC").floor("s")  # recent, so the online TTL has not run out
    return pd.DataFrame(
        {
            "entity_id": [entity],
            "event_time": [(now - pd.Timedelta("1h")).isoformat()],
            "count_1h": [1],
            "count_24h": [count],
            "x1_sum_24h": [total],
        }
    )


@pytest.mark.parametrize("workers", [1, 2])
def test_a_record_without_aggregates_gets_the_online_values(recorded, tmp_path: Path, workers: int):
    entity = f"e-{uuid.uuid4().hex[:8]}"
    ingest(connect(settings.load("local"), recorded.client), "entity-activity", _activity(entity, 5, 1.5))
    model = fitted_model(names=NAMES)
    folder = write_model_dir(tmp_path / "model", script=SCRIPT, model=model)
    server = start_server(folder, tmp_path, "--feature-store-env", "local", "--workers", str(workers))
    try:
        records = [
            {"entity_id": entity, "x1": 0.3},  # the aggregates come from the store
            {"entity_id": entity, "x1": 0.3, "count_24h": 0, "x1_sum_24h": -2.0},  # kept
            {"entity_id": entity, "x1": 0.3, "x1_sum_24h": -2.0},  # only the count is filled
        ]
        rows = pd.DataFrame([[0.3, 5, 1.5], [0.3, 0, -2.0], [0.3, 5, -2.0]], columns=NAMES)
        for _ in range(2 * workers):  # a connection each: either worker may answer, each with its own store
            status, _, body = server.invoke(json.dumps(records), "application/json")
            assert status == 200, body
            assert json.loads(body) == pytest.approx(model.predict_proba(rows)[:, 1].tolist())
        assert len(set(json.loads(body))) == 3  # the three rows really differ
        status, _, body = server.invoke(json.dumps([{"entity_id": "nobody", "x1": 0.3}]), "application/json")
        # no record and no value: the model gets NaN, which this one refuses (a ValueError: the input's)
        assert status == 400 and "Input X contains NaN" in json.loads(body)["error"]
    finally:
        server.stop()


def test_the_server_says_what_to_do_without_an_emulator(tmp_path: Path):
    folder = write_model_dir(tmp_path / "model", script=SCRIPT, model=fitted_model(names=NAMES))
    with pytest.raises(
        AssertionError, match="no emulator running for local's feature store; run `mlops emulator start`"
    ):
        start_server(folder, tmp_path, "--feature-store-env", "local")


def test_a_lookup_hook_and_a_feature_store_are_not_both_taken(recorded, tmp_path: Path):
    folder = write_model_dir(tmp_path / "model", script=SCRIPT, model=fitted_model(names=NAMES))
    with pytest.raises(AssertionError, match="--feature-lookup or --feature-store-env, not both"):
        start_server(folder, tmp_path, "--feature-store-env", "local", "--feature-lookup", "json:loads")
