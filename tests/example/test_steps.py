"""The pipeline's steps as pure functions, and their entry points on small data."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_kit.validation import SchemaError, validate
from pipelines import synthetic
from pipelines.model import REQUEST_COLUMNS, build_features
from pipelines.schema import RAW_SCHEMA
from pipelines.steps import evaluate, inference, prepare, train


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    return synthetic.generate(synthetic.GeneratorOptions(rows=6000, seed=21))


def _three_rows() -> pd.DataFrame:
    return synthetic.generate(synthetic.GeneratorOptions(rows=3, seed=1))


# --- validate -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("amount", None, "null"),
        ("amount", "lots", "not a float"),
        ("amount", -5.0, "below 0.01"),
        ("hour", 24, "above 23"),
        ("hour", 2.5, "not a int"),
        ("channel", "telepathy", "outside the allowed values"),
        ("is_fraud", None, "missing label"),
        ("is_fraud", 3, "outside the allowed values"),
        ("event_time", "1999-12-31T00:00:00Z", "below 2000-01-01"),
        ("event_time", "not a time", "not a timestamp"),
    ],
)
def test_each_rejection_names_its_column_and_reason(column: str, value, reason: str) -> None:
    frame = _three_rows().astype(object)
    frame.loc[1, column] = value
    accepted, rejected, report = validate(frame, RAW_SCHEMA)
    assert report.rejected == 1 and len(accepted) == 2
    assert report.by_column == {column: {reason: 1}}
    assert rejected["rejection_reasons"].tolist() == [f"{column}: {reason}"]
    assert f"{column}: 1 {reason}" in report.summary()


def test_duplicate_ids_keep_the_first() -> None:
    frame = _three_rows()
    frame.loc[2, "transaction_id"] = frame.loc[0, "transaction_id"]
    accepted, _, report = validate(frame, RAW_SCHEMA)
    assert report.by_column == {"transaction_id": {"duplicate id": 1}}
    assert accepted["transaction_id"].is_unique


def test_a_missing_column_is_a_schema_error() -> None:
    with pytest.raises(SchemaError, match=r"lacks column\(s\) amount \(3 rows\)"):
        validate(_three_rows().drop(columns=["amount"]), RAW_SCHEMA)


def test_accepted_rows_are_typed() -> None:
    accepted, _, _ = validate(_three_rows().astype(str), RAW_SCHEMA)
    assert str(accepted["hour"].dtype) == "Int64"
    assert accepted["amount"].dtype == np.float64
    assert str(accepted["event_time"].dtype).startswith("datetime64")


# --- prepare ------------------------------------------------------------------------------------------


def test_prepare_fails_above_the_threshold_naming_columns_and_counts(raw: pd.DataFrame) -> None:
    broken = raw.copy()
    broken.loc[:99, "amount"] = -1.0
    broken.loc[100:149, "channel"] = "fax"
    with pytest.raises(prepare.ValidationFailed) as failed:
        prepare.prepare(broken, max_rejected_fraction=0.01, test_fraction=0.2, ttl_hours=168)
    message = str(failed.value)
    assert "150 of 6,000 rows rejected (2.50%), above the allowed 1.00%" in message
    assert "amount: 100 below 0.01" in message and "channel: 50 outside the allowed values" in message


def test_prepare_quarantines_below_the_threshold(raw: pd.DataFrame) -> None:
    broken = raw.copy()
    broken.loc[:9, "hour"] = 99
    prepared = prepare.prepare(broken, max_rejected_fraction=0.05, test_fraction=0.2, ttl_hours=168)
    assert len(prepared.rejected) == 10
    assert len(prepared.train) + len(prepared.test) == len(raw) - 10
    assert prepared.train["event_time"].max() <= prepared.test["event_time"].min()  # split by time


def test_features_never_see_the_transaction_itself_or_the_future(raw: pd.DataFrame) -> None:
    prepared = prepare.prepare(raw, 0.05, 0.2, 168)
    examples = pd.concat([prepared.train, prepared.test]).sort_values("event_time")
    one = examples[examples["customer_id"] == examples["customer_id"].value_counts().index[0]].reset_index()
    times, amounts = one["event_time"], one["amount"]
    for i in range(len(one)):
        # The state the feature store held just before this transaction: the customer's previous
        # record (its window ends at the previous transaction), nothing at or after this one.
        earlier = times[times < times[i]]
        got = one.loc[i, "amount_sum_24h"]
        if earlier.empty or earlier.max() < times[i] - pd.Timedelta(hours=168):
            assert pd.isna(got)
            continue
        previous = earlier.max()
        window = (times > previous - pd.Timedelta(hours=24)) & (times <= previous)
        assert got == pytest.approx(amounts[window].sum())


def test_prepare_entry_point_writes_nothing_when_validation_fails(raw: pd.DataFrame, tmp_path: Path) -> None:
    source = tmp_path / "raw"
    source.mkdir()
    broken = raw.copy()
    broken.loc[:999, "amount"] = None
    broken.to_parquet(source / "t.parquet")
    outputs = {name: tmp_path / name for name in ("train", "test", "features", "quarantine")}
    args = [
        "--raw",
        str(source),
        "--max-rejected-fraction",
        "0.05",
        *[a for n, p in outputs.items() for a in (f"--{n}", str(p))],
    ]
    assert prepare.main(args) == 1
    assert not any(p.exists() for p in outputs.values())


# --- train / evaluate / inference ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_dir(raw: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    prepared = prepare.prepare(raw, 0.05, 0.2, 168)
    result = train.train(prepared.train, {"max_iter": 60}, seed=3)
    folder = tmp_path_factory.mktemp("model")
    train.write_model_dir(result, folder, seed=3, rows=len(prepared.train))
    prepared.test.to_parquet(folder.parent / "test.parquet")
    return folder


def test_train_refuses_a_single_class(raw: pd.DataFrame) -> None:
    prepared = prepare.prepare(raw, 0.05, 0.2, 168)
    with pytest.raises(ValueError, match="single class"):
        train.train(prepared.train.assign(is_fraud=0), {}, seed=1)


def test_tuning_candidates_are_seeded_and_distinct() -> None:
    first = train.candidates({"max_iter": 100}, trials=4, seed=9)
    assert first == train.candidates({"max_iter": 100}, trials=4, seed=9)
    assert len(first) == 5 and first[0] == {"max_iter": 100}
    assert len({json.dumps(c, sort_keys=True) for c in first}) == 5


def test_best_threshold_maximises_f1() -> None:
    labels = np.array([0, 0, 0, 1, 1])
    scores = np.array([0.1, 0.2, 0.6, 0.7, 0.9])
    assert train.best_threshold(labels, scores) == pytest.approx(0.7)


def test_model_dir_carries_its_handler(model_dir: Path) -> None:
    assert {p.name for p in (model_dir / "code").iterdir()} >= {"inference.py", "fraud_model.py"}
    handler = evaluate.load_handler(model_dir)
    model = handler.model_fn(str(model_dir))
    csv = "12.5,grocery,pos,14,300,1,2,5,40.0,20.0\n900,electronics,online,3,10,,,,,\n"
    frame = handler.input_fn(csv.encode(), "text/csv")
    scores = handler.predict_fn(frame, model)
    assert scores.shape == (2,) and ((scores >= 0) & (scores <= 1)).all()
    body, content_type = handler.output_fn(scores, "application/json")
    assert content_type == "application/json" and len(json.loads(body)["predictions"]) == 2
    records = json.dumps(
        {"instances": [{"amount": 10, "merchant_category": "fuel", "channel": "pos", "hour": 9}]}
    )
    assert handler.predict_fn(handler.input_fn(records, "application/json"), model).shape == (1,)


def test_the_kits_server_compiles_the_trees_and_answers_the_same(model_dir: Path) -> None:
    from mlops_kit.serving import trees
    from mlops_kit.serving.handler import Handler

    stepwise = evaluate.load_handler(model_dir).model_fn(str(model_dir))  # a pipeline step: scikit-learn
    assert not isinstance(stepwise["estimator"], trees.Accelerated)
    served = Handler(model_dir)
    assert isinstance(served.model["estimator"], trees.Accelerated)
    assert not isinstance(Handler(model_dir, compile_trees=False).model["estimator"], trees.Accelerated)
    csv = b"12.5,grocery,pos,14,300,1,2,5,40.0,20.0\n900,electronics,online,3,10,,,,,\n7,toys,web,2,1,0,0,0,0,0\n"
    answer = served.invoke(csv, "text/csv", "application/json")
    frame = served.input_fn(csv, "text/csv")
    reference = served.predict_fn(frame, stepwise)
    assert answer.status == 200 and json.loads(answer.body)["predictions"] == [float(p) for p in reference]


@pytest.mark.parametrize(
    ("body", "content_type", "words"),
    [
        ("1,2,3\n", "text/csv", "expected 10"),
        ('{"instances": []}', "application/json", "non-empty"),
        ('{"instances": [{"amount": 1}]}', "application/json", "lack merchant_category"),
        ("a", "text/plain", "unsupported content type"),
    ],
)
def test_handler_rejects_bad_requests_with_reasons(body: str, content_type: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        inference.input_fn(body, content_type)


def test_non_numeric_values_are_a_value_error(model_dir: Path) -> None:
    handler = evaluate.load_handler(model_dir)
    frame = handler.input_fn("abc,grocery,pos,14,300,1,2,5,40.0,20.0\n", "text/csv")
    with pytest.raises(ValueError, match="bad input values"):
        handler.predict_fn(frame, handler.model_fn(str(model_dir)))


def test_evaluate_entry_point_reports_metrics_and_segments(model_dir: Path, tmp_path: Path) -> None:
    packed = tmp_path / "model" / "model.tar.gz"
    packed.parent.mkdir()
    with tarfile.open(packed, "w:gz") as tar:
        for path in model_dir.rglob("*"):
            tar.add(path, arcname=path.relative_to(model_dir).as_posix(), recursive=False)
    test_dir = tmp_path / "test"
    test_dir.mkdir()
    shutil.copy(model_dir.parent / "test.parquet", test_dir)
    assert (
        evaluate.main(
            ["--model", str(packed.parent), "--test", str(test_dir), "--evaluation", str(tmp_path / "out")]
        )
        == 0
    )
    report = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    metrics = report["metrics"]
    assert 0.5 < metrics["roc_auc"] <= 1 and 0 < metrics["pr_auc"] <= 1
    assert {"precision", "recall", "brier", "calibration_error", "threshold"} <= set(metrics)
    assert report["segment_gap"] == pytest.approx(
        max(s["roc_auc"] for s in report["segments"]["channel"].values())
        - min(s["roc_auc"] for s in report["segments"]["channel"].values())
    )


def test_evaluating_the_parts_one_at_a_time_gives_the_whole_tests_report(model_dir: Path) -> None:
    """The Evaluate step reads the test set a part at a time (its memory is one part's): the report is
    the one the whole test set in memory gives."""
    test = pd.read_parquet(model_dir.parent / "test.parquet")
    handler = evaluate.load_handler(model_dir)
    model = handler.model_fn(str(model_dir))
    whole = evaluate.evaluate(test, handler, model)
    parts = evaluate.evaluate((test.iloc[i : i + 97] for i in range(0, len(test), 97)), handler, model)
    assert parts == whole
    assert whole["metrics"]["rows"] == len(test) and whole["segments"]["channel"]


def test_train_fits_on_a_uniform_sample_of_at_most_max_train_rows(raw: pd.DataFrame, tmp_path: Path) -> None:
    """`max_train_rows` bounds what Train holds: a larger training set is sampled (the same rows however
    the parts are cut), and the model's metadata says how many rows it was fitted on, of how many."""
    prepared = prepare.prepare(raw, 0.05, 0.2, 168)
    rows = len(prepared.train)
    bound = rows // 2
    metadata = {}
    for parts in (1, 3):
        folder = tmp_path / f"train-{parts}"
        folder.mkdir()
        for index, piece in enumerate(np.array_split(np.arange(rows), parts)):
            prepared.train.iloc[piece].to_parquet(folder / f"part-{index}.parquet")
        out = tmp_path / f"model-{parts}"
        argv = [
            "--train",
            str(folder),
            "--model-dir",
            str(out),
            "--max_iter",
            "20",
            "--max_train_rows",
            str(bound),
        ]
        assert train.main(argv) == 0
        metadata[parts] = json.loads((out / "metadata.json").read_text())
    assert metadata[1]["training_rows"] == bound and metadata[1]["training_rows_offered"] == rows
    assert metadata[1]["threshold"] == metadata[3]["threshold"]  # the same sample, the same model


def test_build_features_is_shared_and_names_missing_columns() -> None:
    with pytest.raises(ValueError, match="lack column"):
        build_features(pd.DataFrame({"amount": [1.0]}))
    row = pd.DataFrame(
        [dict(zip(REQUEST_COLUMNS, [10.0, "fuel", "pos", 2, 5, 0, 0, 0, 0.0, 5.0], strict=True))]
    )
    features = build_features(row)
    assert features.loc[0, "amount_vs_7d_mean"] == pytest.approx(2.0)
    assert features.loc[0, "is_night"] == 1.0


def test_prepare_works_partition_by_partition_and_splits_at_the_plans_instant(
    raw: pd.DataFrame, tmp_path: Path
) -> None:
    from mlops_kit import partition

    source = tmp_path / "raw.parquet"
    raw.to_parquet(source)
    plan = partition.run(
        source, tmp_path / "parts", tmp_path / "plan", key="customer_id", time_column="event_time",
        split_quantile=0.8, min_partitions=3, partition_rows=100_000,
    )  # fmt: skip
    outputs = {name: tmp_path / name for name in ("train", "test", "features", "quarantine")}
    args = [
        "--raw",
        str(tmp_path / "parts"),
        "--plan",
        str(tmp_path / "plan"),
        "--max-rejected-fraction",
        "0.05",
    ]
    args += [a for n, p in outputs.items() for a in (f"--{n}", str(p))]
    assert prepare.main(args) == 0
    assert sorted(p.name for p in outputs["train"].iterdir()) == [f"part-0000{i}.parquet" for i in range(3)]
    assert sorted(p.name for p in (outputs["features"] / "transaction-aggregates").iterdir()) == [
        f"part-0000{i}.parquet" for i in range(3)
    ]
    train = pd.concat(pd.read_parquet(p) for p in outputs["train"].iterdir())
    test = pd.concat(pd.read_parquet(p) for p in outputs["test"].iterdir())
    at = pd.Timestamp(plan["split_time"])
    assert (pd.to_datetime(train["event_time"], utc=True) < at).all()
    assert (pd.to_datetime(test["event_time"], utc=True) >= at).all()
    # the same examples as preparing the whole at once and splitting at that instant
    whole = prepare.prepare(raw, 0.05, 0.2, 24 * 7, split_at=at)
    assert sorted(train["transaction_id"]) == sorted(whole.train["transaction_id"])
    assert sorted(test["transaction_id"]) == sorted(whole.test["transaction_id"])


def test_a_failed_partition_leaves_no_output_of_the_others(raw: pd.DataFrame, tmp_path: Path) -> None:
    parts = tmp_path / "parts"
    parts.mkdir()
    raw.iloc[:3000].to_parquet(parts / "part-00000.parquet")
    broken = raw.iloc[3000:].copy()
    broken["amount"] = np.nan
    broken.to_parquet(parts / "part-00001.parquet")
    outputs = {name: tmp_path / name for name in ("train", "test", "features", "quarantine")}
    args = ["--raw", str(parts), "--max-rejected-fraction", "0.05"]
    args += [a for n, p in outputs.items() for a in (f"--{n}", str(p))]
    assert prepare.main(args) == 1
    assert not [p for folder in outputs.values() if folder.exists() for p in folder.rglob("*") if p.is_file()]
