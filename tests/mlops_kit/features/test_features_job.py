"""The pipeline's feature ingestion step, as its SageMaker job runs it (plain boto3, no settings file)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from kit_fixture import data, feature_groups

from mlops_kit import project, settings
from mlops_kit.features import job
from mlops_kit.features import store as feature_store

ENV = settings.load("local")


@pytest.fixture()
def aws(emulator, monkeypatch: pytest.MonkeyPatch):
    for name, value in emulator.environ().items():
        monkeypatch.setenv(name, value)
    feature_store.ensure_groups(ENV, emulator.client, project.feature_groups(ENV))
    return emulator


def _args(records: Path, out: Path) -> list[str]:
    return [
        "--records", str(records), "--ingest", str(out),
        "--definitions", project.use_case(ENV).feature_groups, "--resource-prefix", ENV.prefix,
        "--ttl-hours", str(24 * 365 * 10), "--online", "dynamodb",
    ]  # fmt: skip


def test_ingests_every_group_and_reports_it(aws, tmp_path: Path) -> None:
    frame = data.sample(300, seed=4)
    records = tmp_path / "records"
    records.mkdir()
    for name, group_frame in feature_groups.records(frame).items():
        group_frame.to_parquet(records / f"{name}.parquet")
    assert job.main(_args(records, tmp_path / "out")) == 0
    report = json.loads((tmp_path / "out" / "ingest-algo-1.json").read_text())
    assert set(report) == {"entity-profile", "entity-activity"}
    assert all(r["rows"] > 0 for r in report.values())
    # Ingesting the same records again writes no new files: the job can be retried safely.
    assert job.main(_args(records, tmp_path / "again")) == 0
    again = json.loads((tmp_path / "again" / "ingest-algo-1.json").read_text())
    assert all(r["files_written"] == 0 for r in again.values())
    # The sample's events are old: read them back with the same long TTL the job wrote with.
    store = feature_store.connect_named(
        project.feature_groups(ENV),
        lambda g: f"{ENV.prefix}-{g.name}",
        timedelta(days=3650),
        "dynamodb",
        aws.client,
    )
    entity = frame["entity_id"].iloc[-1]
    assert store.get("entity-activity", entity) is not None


def test_refuses_records_of_an_undeclared_group(aws, tmp_path: Path, capsys) -> None:
    records = tmp_path / "records"
    records.mkdir()
    data.sample(10).to_parquet(records / "payments.parquet")
    assert job.main(_args(records, tmp_path / "out")) == 1
    assert "undeclared groups payments" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_ingests_a_folder_per_group_in_batches(aws, tmp_path: Path) -> None:
    """Prepare's sharded layout (`<group>/part-NNNNN.parquet`): every part ingested, `--batch-rows` at
    a time, and the report sums the parts."""
    frame = data.sample(400, seed=9)
    records = tmp_path / "records"
    halves = (frame.iloc[:200], frame.iloc[200:])
    for index, half in enumerate(halves):
        for name, group_frame in feature_groups.records(half).items():
            (records / name).mkdir(parents=True, exist_ok=True)
            group_frame.to_parquet(records / name / f"part-{index:05d}.parquet")
    expected = {
        name: sum(len(feature_groups.records(h)[name]) for h in halves)
        for name in ("entity-profile", "entity-activity")
    }
    assert job.main([*_args(records, tmp_path / "one"), "--batch-rows", "1"]) == 0  # a part at a time
    report = json.loads((tmp_path / "one" / "ingest-algo-1.json").read_text())
    assert {name: r["rows"] for name, r in report.items()} == expected
    assert job.main([*_args(records, tmp_path / "all"), "--batch-rows", "1000000"]) == 0  # both parts at once
    again = json.loads((tmp_path / "all" / "ingest-algo-1.json").read_text())
    assert {name: r["rows"] for name, r in again.items()} == expected


def test_an_instance_given_no_records_writes_an_empty_report(aws, tmp_path: Path) -> None:
    (tmp_path / "records").mkdir()
    assert job.main(_args(tmp_path / "records", tmp_path / "out")) == 0
    assert json.loads((tmp_path / "out" / "ingest-algo-1.json").read_text()) == {}


def test_the_online_tables_exist_before_any_job_runs(aws) -> None:
    """As CreateFeatureGroup makes the online store in AWS, setting the groups up makes their tables:
    the instances of a sharded Features job only write them (creating one at once got a 500)."""
    dynamodb = aws.client("dynamodb")
    for group in project.feature_groups(ENV):
        table = dynamodb.describe_table(TableName=f"{ENV.prefix}-{group.name}")["Table"]
        assert table["TableStatus"] == "ACTIVE"
