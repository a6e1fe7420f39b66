"""`mlops data generate`: the use case's seeded sample data (`UseCase.entry_points.sample_data`)."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from mlops_kit import lazy
from mlops_kit.cli import output

settings = lazy.module("mlops_kit.settings")
project = lazy.module("mlops_kit.project")
usecase = lazy.module("mlops_kit.usecase")

app = typer.Typer(help="The use case's sample data.", no_args_is_help=True)
out = output.console()
WRITERS = {".parquet": "to_parquet", ".csv": "to_csv"}


@app.command()
def generate(
    out_file: Path = typer.Option(Path("data/sample.parquet"), "--output", help=".parquet or .csv"),
    rows: int = typer.Option(20_000, help="Number of events."),
    start: str = typer.Option("2026-01-01", help="First event time (inclusive)."),
    end: str = typer.Option("2026-03-01", help="Last event time (exclusive)."),
    seed: int = typer.Option(7, help="Random seed: the same seed gives the same file."),
    drift_from: str | None = typer.Option(None, help="Inject the use case's drift from this date."),
    env: str = typer.Option("local", help="Environment (its settings name the use case)."),
    as_json: bool = typer.Option(False, "--json", help="What was written, as JSON."),
) -> None:
    """Write the use case's labelled sample events."""
    config = settings.load(env)
    case = project.use_case(config)
    if out_file.suffix.lower() not in WRITERS:
        raise ValueError(f"{out_file}: write .parquet or .csv")
    sample = project.entry_point(config, "sample_data")
    frame = sample(rows, seed=seed, start=start, end=end, drift_from=drift_from)
    usecase.check_frame(case, frame, case.entry_points.sample_data)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_file.with_name(f".{out_file.name}.{os.getpid()}.tmp")
    getattr(frame, WRITERS[out_file.suffix.lower()])(tmp, index=False)
    tmp.replace(out_file)
    if as_json:
        output.emit({"output": str(out_file), "rows": len(frame), "use_case": case.name, "seed": seed})
        return
    out.print(
        f"wrote {len(frame):,} {case.name} events ({case.label}: {case.task}) to {out_file}", highlight=False
    )


@app.command()
def upload(
    source: Path = typer.Argument(..., help="A data file, or a folder of .csv/.parquet/.jsonl files."),
    env: str = typer.Option("local", help="Environment: local goes to the running emulator, cloud to AWS."),
    prefix: str = typer.Option("", help="Key prefix in the raw bucket (default: where the pipeline reads)."),
    as_json: bool = typer.Option(False, "--json", help="The uploaded objects, as JSON."),
) -> None:
    """Put data where the environment's pipeline reads it (its InputData), or under --prefix."""
    from mlops_kit import emulator as emu
    from mlops_kit import executor, local_platform, naming, uploads

    config = settings.load(env)
    if config.embedded:
        running = emu.running()
        if running is None:
            raise emu.EmulatorError(
                "no emulator running: data uploaded to a temporary one would be gone when it stops; "
                "run `mlops emulator start` first"
            )
        s3 = running.client("s3")
        bucket = local_platform.ensure(config, running.client).buckets["raw"]
        default = executor.input_data_uri(config, running)
    else:
        import boto3

        account = boto3.client("sts", region_name=config.region).get_caller_identity()["Account"]
        s3 = boto3.client("s3", region_name=config.region)
        bucket = naming.bucket(config, "raw", account)
        default = executor.input_data_uri(config, account_id=account)
    target = f"s3://{bucket}/{prefix.strip('/')}/" if prefix else default

    def progress(path: Path, size: int) -> None:
        if not as_json:  # --json: stdout holds the one JSON document
            out.print(f"  {path} ({size:,} bytes)", highlight=False)

    written = uploads.upload(s3, source, target, progress=progress)
    if as_json:
        output.emit({"target": target, "objects": [str(w) for w in written]})
        return
    out.print(f"uploaded {len(written)} file(s) to {target}", highlight=False)
