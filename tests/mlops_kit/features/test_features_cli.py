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
