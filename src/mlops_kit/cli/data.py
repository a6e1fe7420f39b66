"""`mlops data generate`: the seeded synthetic transactions data set."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from mlops_kit import synthetic

app = typer.Typer(help="Synthetic data for the fraud use case.", no_args_is_help=True)
out = Console()


@app.command()
def generate(
    out_file: Path = typer.Option(Path("data/transactions.parquet"), "--out", help=".parquet or .csv"),
    rows: int = typer.Option(20_000, help="Number of transactions."),
    start: str = typer.Option("2026-01-01", help="First event time (inclusive)."),
    end: str = typer.Option("2026-03-01", help="Last event time (exclusive)."),
    seed: int = typer.Option(7, help="Random seed: the same seed gives the same file."),
    fraud_rate: float = typer.Option(0.02, help="Share of fraudulent transactions."),
    drift_from: str | None = typer.Option(None, help="Inject drift (amounts, category mix) from this date."),
) -> None:
    """Write the synthetic card-transactions data set."""
    options = synthetic.GeneratorOptions(
        rows=rows, start=start, end=end, seed=seed, fraud_rate=fraud_rate, drift_from=drift_from
    )
    frame = synthetic.generate(options)
    synthetic.write(frame, out_file)
    out.print(f"wrote {len(frame):,} transactions ({frame['is_fraud'].mean():.2%} fraud) to {out_file}")
