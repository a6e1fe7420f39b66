"""Data in: a fresh clone's first `mlops pipeline run` seeds the use case's sample data and says so;
local paths go where an input URI goes; `mlops data upload` puts files where the pipeline reads."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mlops_kit import emulator as emu
from mlops_kit import local_platform, settings, uploads
from mlops_kit.cli import main
from mlops_kit.s3 import list_objects


def test_a_fresh_clone_seeds_sample_data_where_the_pipeline_reads(emulator, monkeypatch) -> None:
    config = settings.load("local")
    from mlops_kit import executor

    uri = executor.input_data_uri(config, emulator)
    s3 = emulator.client("s3")
    for item in list_objects(s3, uri):
        s3.delete_object(Bucket=uri[5:].split("/")[0], Key=item["Key"])
    assert uploads.seed_sample(config, s3, uri, rows=500) == 500
    [written] = list_objects(s3, uri)
    assert written["Key"].endswith("-sample.parquet")
    assert uploads.seed_sample(config, s3, uri, rows=500) == 0  # data there already: nothing written


def test_a_local_path_is_uploaded_once_by_content(emulator, tmp_path: Path) -> None:
    config = settings.load("local")
    bucket = local_platform.ensure(config, emulator.client).buckets["raw"]
    data = tmp_path / "events"
    data.mkdir()
    pd.DataFrame({"a": [1, 2]}).to_csv(data / "one.csv", index=False)
    s3 = emulator.client("s3")
    first = uploads.local_input(s3, data, bucket)
    assert first.startswith(f"s3://{bucket}/uploads/") and uploads.local_input(s3, data, bucket) == first
    (data / "one.csv").write_text("a\n3\n")
    assert uploads.local_input(s3, data, bucket) != first  # other content, other prefix


def test_data_upload_needs_a_running_emulator_locally(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "x.csv").write_text("a\n1\n")
    assert main(["data", "upload", str(tmp_path / "x.csv")]) == 1
    assert "no emulator running" in capsys.readouterr().err


def test_data_upload_puts_files_where_the_pipeline_reads(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "raw"
    (folder / "2026").mkdir(parents=True)
    (folder / "2026" / "jan.csv").write_text("a\n1\n")
    (folder / "notes.txt").write_text("not data")
    running = emu.start_detached()
    try:
        assert main(["data", "upload", str(folder)]) == 0
        from mlops_kit import executor

        uri = executor.input_data_uri(settings.load("local"), running)
        keys = [o["Key"] for o in list_objects(running.client("s3"), uri)]
        assert [k.rsplit("/", 2)[-2:] for k in keys] == [["2026", "jan.csv"]]
        assert main(["data", "upload", str(tmp_path / "missing")]) == 1
        assert "no such file or folder" in capsys.readouterr().err
    finally:
        emu.stop_recorded()
