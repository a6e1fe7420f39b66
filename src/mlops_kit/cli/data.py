"""`mlops data generate`: the use case's seeded sample data (`UseCase.entry_points.sample_data`)."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console

from mlops_kit import project, settings, usecase

app = typer.Typer(help="The use case's sample data.", no_args_is_help=True)
out = Console()
WRITERS = {".parquet": "to_parquet", ".csv": "to_csv"}


@app.command()
def generate(
    out_file: Path = typer.Option(Path("data/sample.parquet"), "--out", help=".parquet or .csv"),
    rows: int = typer.Option(20_000, help="Number of events."),
    start: str = typer.Option("2026-01-01", help="First event time (inclusive)."),
    end: str = typer.Option("2026-03-01", help="Last event time (exclusive)."),
    seed: int = typer.Option(7, help="Random seed: the same seed gives the same file."),
    drift_from: str | None = typer.Option(None, help="Inject the use case's drift from this date."),
    env: str = typer.Option("local", help="Environment (its settings name the use case)."),
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
    out.print(
        f"wrote {len(frame):,} {case.name} events ({case.label}: {case.task}) to {out_file}", highlight=False
    )
