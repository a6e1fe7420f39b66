"""`mlops features ingest|get|training-set|groups|repair`: the feature store from the command line.

On the embedded default these act on the running emulator (`mlops emulator start`), so what one command
writes the next one reads; in AWS they use the account's credentials.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from mlops_kit import lazy
from mlops_kit.cli import output

settings = lazy.module("mlops_kit.settings")
pd = lazy.module("pandas")
emulator = lazy.module("mlops_kit.emulator")
project = lazy.module("mlops_kit.project")

app = typer.Typer(help="The feature store: ingest records, read online values, point-in-time training sets.")
out = output.console()

ENV = typer.Option("local", "--env", help="The environment (environments/Pulumi.<env>.yaml).")


def read_frame(path: Path) -> pd.DataFrame:
    """A CSV or Parquet file as a frame; the error names the file."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if suffix == ".parquet":
        return pd.read_parquet(path)
    if suffix == ".csv":
        return pd.read_csv(path)
    raise ValueError(f"{path}: expected a .csv or .parquet file")


def write_frame(frame: pd.DataFrame, path: Path) -> None:
    """Write CSV or Parquet by the suffix, atomically (temp file, then rename)."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ValueError(f"{path}: choose a .csv or .parquet file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    if suffix == ".parquet":
        frame.to_parquet(tmp, index=False)
    else:
        frame.to_csv(tmp, index=False)
    tmp.replace(path)


def _store(env: str):  # noqa: ANN202 - the store type is imported lazily (DuckDB)
    from mlops_kit.features.store import connect

    config = settings.load(env)
    if config.embedded:
        running = emulator.running()
        if running is None:
            raise RuntimeError(
                f"environment {env} runs on the embedded emulator, and none is running: `mlops emulator start`"
            )
        return connect(config, running.client)
    import boto3

    return connect(config, lambda service: boto3.client(service, region_name=config.region))


@app.command()
def ingest(
    group: str = typer.Option(..., "--group", help="Feature group name, e.g. transaction-aggregates."),
    data: Path = typer.Option(..., "--input", help="Records: .csv or .parquet with the group's columns."),
    env: str = ENV,
    as_json: bool = typer.Option(False, "--json", help="The ingest's counts, as JSON."),
) -> None:
    """Validate a batch and write it to the offline and online stores (re-running it changes nothing)."""
    from mlops_kit.features.store import ingest as ingest_batch

    frame = read_frame(data)
    report = ingest_batch(_store(env), group, frame)
    if as_json:
        output.emit(
            {
                "group": report.group,
                "rows": report.rows,
                "files_written": report.files_written,
                "files_skipped": report.files_skipped,
                "online_records": report.online_records,
            }
        )
        return
    out.print(
        f"{report.group}: {report.rows:,} records; offline files written {report.files_written:,}, "
        f"already there {report.files_skipped:,}; online records offered {report.online_records:,}"
    )
    if report.online_future:
        out.print(
            f"{report.group}: {report.online_future:,} records from the future (event time after "
            f"{report.online_not_after}, mlops:training.future_tolerance_hours) kept offline, refused online",
            style="yellow",
            highlight=False,
        )


@app.command()
def repair(
    group: str = typer.Option(..., "--group", help="Feature group name."),
    env: str = ENV,
) -> None:
    """Rewrite a group's online store from its offline store: each entity's latest record that is not
    from the future replaces what is online (a record from the future is removed)."""
    from mlops_kit.features.store import repair as repair_group

    report = repair_group(_store(env), group)
    out.print(
        f"{report.group}: {report.offline_rows:,} offline records of {report.entities:,} entities; "
        f"online rewritten for {report.written:,}, removed for {report.deleted:,} "
        f"(only records from the future: {report.future_rows:,} rows)",
        highlight=False,
    )


@app.command()
def get(
    group: str = typer.Option(..., "--group", help="Feature group name."),
    record_id: str = typer.Option(..., "--id", help="The entity's record id."),
    env: str = ENV,
) -> None:
    """Print an entity's latest live record from the online store, as JSON. Exit code 1 when absent."""
    record = _store(env).get(group, record_id)
    if record is None:
        output.console(stderr=True).print(
            f"{group}: no live record for {record_id!r} (never ingested, or expired)", highlight=False
        )
        raise typer.Exit(1)
    if not out.is_terminal:  # piped: plain JSON, whatever the terminal settings
        print(json.dumps(record, default=str))
        return
    out.print_json(json.dumps(record, default=str))


@app.command("training-set")
def training_set_command(
    entities: Path = typer.Option(..., "--entities", help="CSV/Parquet: entity key, event time, labels."),
    group: list[str] = typer.Option(..., "--group", help="Feature group to join; repeat for several."),
    out_file: Path = typer.Option(
        ..., "--output", help="Where to write the training set (.csv or .parquet)."
    ),
    env: str = ENV,
    as_json: bool = typer.Option(False, "--json", help="What was written, as JSON."),
) -> None:
    """Join each entity row to the features as of its event time (within the TTL); every row is kept."""
    from mlops_kit.features.store import training_set

    rows = read_frame(entities)
    frame = training_set(_store(env), rows, group)
    write_frame(frame, out_file)
    features = [c for c in frame.columns if c not in rows.columns]
    matched = int(frame[features].notna().any(axis=1).sum()) if features else 0
    if as_json:
        output.emit({"rows": len(frame), "matched": matched, "features": features, "output": str(out_file)})
        return
    out.print(
        f"wrote {len(frame):,} rows ({matched:,} with features) and {len(features)} features to {out_file}"
    )


@app.command()
def groups(
    env: str = ENV,
    as_json: bool = typer.Option(False, "--json", help="Every group with its features, as JSON."),
) -> None:
    """List the project's feature groups and their features."""
    definitions = project.feature_groups(settings.load(env))
    if as_json:
        output.emit(
            [
                {
                    "group": d.name,
                    "record_id": d.record_identifier.name,
                    "event_time": d.event_time.name,
                    "features": [{"name": f.name, "type": f.type.value} for f in d.features],
                }
                for d in definitions
            ]
        )
        return
    rows = [
        (
            d.name,
            d.record_identifier.name,
            d.event_time.name,
            ", ".join(f"{f.name}:{f.type.value}" for f in d.features),
        )
        for d in definitions
    ]
    output.table(out, ("group", "record id", "event time", "features"), rows)
