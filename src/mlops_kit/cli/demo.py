"""`mlops demo`: the whole lifecycle on the embedded default, with progress and a summary."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from mlops_kit import demo, settings

out = Console()


def register(app: typer.Typer) -> None:
    app.command(name="demo")(run)


def run(
    env: str = typer.Option("local", help="Environment (its runtime must be embedded)."),
    rows: int = typer.Option(20_000, help="Transactions to generate."),
    report: Path = typer.Option(Path("demo-report.json"), help="Where to write the JSON report."),
) -> None:
    """Run the lifecycle on the embedded default and print a summary."""
    config = settings.load(env)
    if not config.embedded:
        raise settings.SettingsError(
            config.file,
            "mlops:runtime.kind",
            "the demo runs on an embedded environment only (kind: embedded)",
        )
    with out.status("starting", spinner="dots") as status:
        result = demo.run_demo(
            config, rows=rows, report_path=report, progress=lambda s: status.update(f"[bold]{s}[/]…")
        )
    table = Table(title="mlops demo", show_header=False)
    table.add_column("what", no_wrap=True)
    table.add_column("value", overflow="fold")
    table.add_row("model package", result.model_package_arn)
    table.add_row("approval status", result.approval_status)
    for name, value in result.metrics.items():
        table.add_row(name, f"{value:.4f}" if value < 10 else f"{value:,.0f}")
    table.add_row("total seconds", f"{sum(s['seconds'] for s in result.timeline):.1f}")
    out.print(table)
    out.print(f"report written to {report}")
