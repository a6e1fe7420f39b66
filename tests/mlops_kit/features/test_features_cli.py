"""`mlops features ...` against a running emulator: what one command writes, the next one reads."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pandas as pd
import pytest

from mlops_kit.cli import main
from mlops_kit.emulator import state_file


@pytest.fixture
def recorded(emulator):
    """Make the session's emulator the recorded one, as `mlops emulator start` would."""
    path = state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"pid": emulator.pid, "port": emulator.port, "region": emulator.region}))
    return emulator


def test_ingest_then_get_then_training_set(recorded, tmp_path: Path, capsys):
    entity = f"e-{uuid.uuid4().hex[:8]}"
    now = pd.Timestamp.now(tz="UTC").floor("s")  # recent, so the online TTL has not run out
    profile = pd.DataFrame(
        {
            "entity_id": [entity, entity],
            "event_time": [(now - pd.Timedelta("2h")).isoformat(), (now - pd.Timedelta("1h")).isoformat()],
            "tenure_days": [30, 31],
            "home_segment": ["a", "b"],
        }
    )
    data = tmp_path / "profile.csv"
    profile.to_csv(data, index=False)
    assert main(["features", "ingest", "--group", "entity-profile", "--data", str(data)]) == 0
    assert "offline files written 2" in capsys.readouterr().out
    assert main(["features", "ingest", "--group", "entity-profile", "--data", str(data)]) == 0
    assert "offline files written 0, already there 2" in capsys.readouterr().out.replace("\n", " ")

    assert main(["features", "get", "--group", "entity-profile", "--id", entity]) == 0
    assert json.loads(capsys.readouterr().out)["home_segment"] == "b"

    entities = tmp_path / "entities.parquet"
    times = [now - pd.Timedelta("90min"), now - pd.Timedelta("3h")]
    pd.DataFrame({"entity_id": [entity] * 2, "event_time": times, "label": [1, 0]}).to_parquet(entities)
    out = tmp_path / "set.parquet"
    code = main(
        [
            "features",
            "training-set",
            "--entities",
            str(entities),
            "--group",
            "entity-profile",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    frame = pd.read_parquet(out)
    assert frame["tenure_days"].tolist()[0] == 30 and pd.isna(frame["tenure_days"].tolist()[1])
    assert frame["label"].tolist() == [1, 0]


def test_a_bad_batch_fails_with_the_problems_named(recorded, tmp_path: Path, capsys):
    data = tmp_path / "bad.csv"
    pd.DataFrame({"entity_id": ["x"], "event_time": ["2026-01-01T00:00:00Z"], "tenure_days": ["old"]}).to_csv(
        data, index=False
    )
    assert main(["features", "ingest", "--group", "entity-profile", "--data", str(data)]) == 1
    err = capsys.readouterr().err
    assert "missing columns: home_segment" in err and "tenure_days: expected Integral" in err


def test_get_of_an_unknown_entity_exits_1(recorded, capsys):
    assert main(["features", "get", "--group", "entity-profile", "--id", "nobody-" + uuid.uuid4().hex]) == 1
    captured = capsys.readouterr()
    assert "no live record" in captured.err and captured.out == ""  # stdout holds only a record's JSON


def test_without_a_running_emulator_the_commands_say_how_to_start_one(tmp_path: Path, capsys):
    assert not os.path.exists(state_file())
    assert main(["features", "get", "--group", "entity-profile", "--id", "c1"]) == 1
    assert "mlops emulator start" in capsys.readouterr().err


def test_records_from_the_future_are_refused_online_and_repair_rewrites_the_group(
    recorded, tmp_path: Path, capsys
):
    """`ingest` says how many records from the future it kept offline only; `repair --group` rewrites
    the online store from the offline store (here after a writer that had no such rule)."""
    from datetime import timedelta

    from mlops_kit import settings
    from mlops_kit.features.online import DynamoOnlineStore
    from mlops_kit.features.store import connect
    from mlops_kit.features.validation import validate

    entity = f"e-{uuid.uuid4().hex[:8]}"
    now = pd.Timestamp.now(tz="UTC").floor("s")
    frame = pd.DataFrame(
        {
            "entity_id": [entity, entity],
            "event_time": [(now - pd.Timedelta("1h")).isoformat(), "2099-01-01T00:00:00+00:00"],
            "tenure_days": [30, 99],
            "home_segment": ["true", "from-2099"],
        }
    )
    data = tmp_path / "profile.csv"
    frame.to_csv(data, index=False)
    assert main(["features", "ingest", "--group", "entity-profile", "--data", str(data)]) == 0
    said = capsys.readouterr().out.replace("\n", " ")
    assert "1 records from the future" in said and "future_tolerance_hours" in said
    assert main(["features", "get", "--group", "entity-profile", "--id", entity]) == 0
    assert json.loads(capsys.readouterr().out)["home_segment"] == "true"

    store = connect(settings.load("local"), recorded.client)
    lax = DynamoOnlineStore(
        recorded.client("dynamodb"),
        store.online.table_name,
        store.ttl,
        future_tolerance=timedelta(days=40_000),
    )
    lax.put(validate(store.group("entity-profile"), frame))  # poisoned, as before the rule
    assert store.get("entity-profile", entity)["home_segment"] == "from-2099"
    assert main(["features", "repair", "--group", "entity-profile", "--env", "local"]) == 0
    assert "online rewritten" in capsys.readouterr().out
    assert main(["features", "get", "--group", "entity-profile", "--id", entity]) == 0
    assert json.loads(capsys.readouterr().out)["home_segment"] == "true"
    assert main(["features", "repair", "--group", "no-such-group"]) == 1
    assert "no feature group 'no-such-group'" in capsys.readouterr().err
