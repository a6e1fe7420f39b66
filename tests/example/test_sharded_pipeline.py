"""The example pipeline on one processing instance and on two: the same training set, the same features
in the online and offline stores, the same model metrics, and a baseline within the sketch's error.

Each run has an emulator of its own (so its feature store starts empty) and the same small data set;
the model is kept small (few boosting iterations): the point is what sharding changes, which is nothing.
"""

from __future__ import annotations

import dataclasses
import io
import json
from typing import Any

import pandas as pd
import pytest

from mlops_kit import demo, settings
from mlops_kit.emulator import Emulator
from mlops_kit.executor import run_pipeline, runner
from mlops_kit.features import store as feature_store
from mlops_kit.monitoring import sketch
from mlops_kit.s3 import list_objects, split_uri
from pipelines import synthetic

ROWS = 4000
START, END = "2026-01-01", "2026-01-15"  # two weeks: few offline files per hour, a fast test
OFFLINE_META = ["write_time", "api_invocation_time"]  # when a record was written, not what it says


def _settings(instances: int) -> settings.Settings:
    config = settings.load("local")
    training = dataclasses.replace(
        config.training,
        processing_instance_count=instances,
        hyperparameters={**config.training.hyperparameters, "max_iter": 30},
    )
    return dataclasses.replace(config, training=training)


def _frame(s3: Any, uri: str) -> pd.DataFrame:
    bucket, _ = split_uri(uri)
    frames = [
        pd.read_parquet(io.BytesIO(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()))
        for o in list_objects(s3, uri)
        if o["Key"].endswith(".parquet")
    ]
    return pd.concat(frames, ignore_index=True)


def _run(instances: int, raw: pd.DataFrame) -> dict[str, Any]:
    config = _settings(instances)
    with Emulator(region=config.region) as emulator:
        demo.upload_raw(emulator, runner.input_data_uri(config, emulator), raw, "part-0001")
        record = run_pipeline(config, emulator, use_cache=False)
        s3 = emulator.client("s3")
        store = feature_store.connect(config, emulator.client)
        offline = {
            name: store.offline.read(group).to_pandas().drop(columns=OFFLINE_META)
            for name, group in store.groups.items()
        }
        dynamodb = emulator.client("dynamodb")
        online = {}
        for name, group in store.groups.items():
            items = []
            for page in dynamodb.get_paginator("scan").paginate(TableName=store.online.table_name(group)):
                items += page["Items"]
            online[name] = {i["record_id"]["S"]: i for i in items}
        baseline_uri = record.artifacts["Baseline/baseline"]
        bucket, prefix = split_uri(baseline_uri)
        statistics = json.loads(s3.get_object(Bucket=bucket, Key=f"{prefix}/statistics.json")["Body"].read())
        sketches_uri = record.artifacts["Profile/sketches"]
        bucket, _ = split_uri(sketches_uri)
        sketches = [
            json.loads(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read())
            for o in list_objects(s3, sketches_uri)
        ]
        return {
            "record": record,
            "train": _frame(s3, record.artifacts["Prepare/train"]),
            "test": _frame(s3, record.artifacts["Prepare/test"]),
            "offline": offline,
            "online": online,
            "statistics": statistics,
            "sketches": sketches,
        }


@pytest.fixture(scope="module")
def runs() -> dict[int, dict[str, Any]]:
    raw = synthetic.generate(synthetic.GeneratorOptions(rows=ROWS, seed=5, start=START, end=END))
    return {1: _run(1, raw), 2: _run(2, raw)}


def _sorted(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    return frame.sort_values(by, kind="stable").reset_index(drop=True)


def test_the_sharded_steps_ran_on_the_instances_asked_for(runs) -> None:
    for instances, run in runs.items():
        record = run["record"]
        assert record.status == "Succeeded"
        for step in ("Prepare", "Features", "Profile"):
            hosts = [i["host"] for i in record.step(step).properties["_instances"]]
            assert hosts == [f"algo-{i}" for i in range(1, instances + 1)], step
        assert len(record.step("Train").properties["_instances"]) == 1  # Train stays one instance
    assert len(runs[2]["sketches"]) == 2 and len(runs[1]["sketches"]) == 1  # one sketch per instance


def test_the_same_training_and_test_sets(runs) -> None:
    for split in ("train", "test"):
        one, two = (_sorted(runs[n][split], ["transaction_id"]) for n in (1, 2))
        assert len(one) > 0
        pd.testing.assert_frame_equal(one, two)
    # the split is by time: every training example precedes every test example
    assert runs[1]["train"]["event_time"].max() < runs[1]["test"]["event_time"].min()
    assert len(runs[1]["train"]) + len(runs[1]["test"]) > 0.95 * ROWS


def test_the_same_features_offline_and_online(runs) -> None:
    for group in runs[1]["offline"]:
        columns = list(runs[1]["offline"][group].columns)
        one, two = (_sorted(runs[n]["offline"][group], columns) for n in (1, 2))
        assert len(one) > 0
        pd.testing.assert_frame_equal(one, two)
        online_one, online_two = runs[1]["online"][group], runs[2]["online"][group]
        assert len(online_one) == runs[1]["train"]["customer_id"].nunique() or len(online_one) > 0
        assert online_one == online_two


def test_the_same_model_metrics(runs) -> None:
    one, two = runs[1]["record"].metrics, runs[2]["record"].metrics
    assert one and one == two
    assert 0.5 < one["roc_auc"] <= 1.0


def test_a_baseline_within_the_sketchs_error(runs) -> None:
    one, two = runs[1]["statistics"], runs[2]["statistics"]
    assert one["dataset"] == two["dataset"] == {"item_count": len(runs[1]["train"])}
    merged = sketch.merge(runs[2]["sketches"])
    for a, b in zip(one["features"], two["features"], strict=True):
        assert a["name"] == b["name"] and a["inferred_type"] == b["inferred_type"]
        if "string_statistics" in a:
            assert a["string_statistics"] == b["string_statistics"]  # counts: exact
            continue
        na, nb = a["numerical_statistics"], b["numerical_statistics"]
        assert na["common"] == nb["common"]
        assert (na["min"], na["max"]) == (nb["min"], nb["max"])
        for key in ("mean", "sum", "std_dev"):
            assert nb[key] == pytest.approx(na[key], rel=1e-9, abs=1e-9)
        # the distribution, within the documented rank error of the merged sketch
        n = na["common"]["num_present"]
        tolerance = sketch.rank_error(merged, a["name"]) / n
        assert tolerance <= 1 / sketch.SKETCH_POINTS + 2 / n
        ca, cb = a["mlops_kit"]["cdf"], b["mlops_kit"]["cdf"]
        assert ca["values"] == cb["values"]
        for key in ("below", "at_or_below"):
            assert max(abs(x - y) for x, y in zip(ca[key], cb[key], strict=True)) <= tolerance
