"""`mlops demo`: the whole lifecycle on the embedded default, with progress and a summary."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from mlops_kit import lazy
from mlops_kit.cli import output

settings = lazy.module("mlops_kit.settings")
out = output.console()


def register(app: typer.Typer) -> None:
    app.command(name="demo")(run)


def run(
    env: str = typer.Option("local", help="Environment (its runtime must be embedded)."),
    rows: int = typer.Option(20_000, help="Events to generate (the use case's sample data)."),
    use_case: str | None = typer.Option(
        None,
        "--use-case",
        help="Run another use case than the settings name (package.module:USE_CASE); it needs sample data with drift.",
    ),
    report: Path = typer.Option(Path("demo-report.json"), help="Where to write the JSON report."),
    html: Path | None = typer.Option(
        None, help="Where to write the HTML report (default: next to the JSON)."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print the JSON report on stdout (progress goes to stderr)."
    ),
) -> None:
    """Run the whole lifecycle on the embedded default and print a summary."""
    from mlops_kit import demo

    config = settings.load(env)
    if use_case:
        import dataclasses

        from mlops_kit import project

        config = dataclasses.replace(config, use_case=use_case)
        project.use_case(config)  # checked (and its gates against it) before anything starts
    if not config.embedded:
        raise settings.SettingsError(
            config.file,
            "mlops:runtime.kind",
            "the demo runs on an embedded environment only (kind: embedded)",
        )
    started = time.perf_counter()
    shown = output.console(stderr=True) if as_json else out  # --json: stdout holds only the report
    with shown.status("starting", spinner="dots") as status:
        last = {"stage": ""}

        def progress(stage: str) -> None:
            if not stage.startswith(("pipeline:", "retraining:")) and last["stage"]:
                shown.print(f"[green]✓[/] {last['stage']}", highlight=False)
            if not stage.startswith(("pipeline:", "retraining:")):
                last["stage"] = stage
            status.update(f"[bold]{stage}[/]…")

        result = demo.run_demo(config, rows=rows, report_path=report, progress=progress, html_path=html)
        if last["stage"]:
            shown.print(f"[green]✓[/] {last['stage']}", highlight=False)
    if as_json:
        import json

        output.emit(json.loads(report.read_text()))
        return
    from rich.table import Table

    if result.comparison:
        basis = result.comparison_basis
        table = Table(
            title=f"champion against challenger on the same {basis.get('rows', 0):,} rows", show_header=True
        )
        for column in ("metric", "champion", "challenger", "gain"):
            table.add_column(column, justify="left" if column == "metric" else "right", no_wrap=True)
        for row in result.comparison:
            name = f"{row['metric']} (deciding)" if row["deciding"] else row["metric"]
            table.add_row(
                name,
                *(
                    f"{row[k]:.4f}" if isinstance(row[k], (int, float)) else ""
                    for k in ("champion", "challenger")
                ),
                "" if row["gain"] is None else f"{row['gain']:+.4f}",
            )
        out.print(table)
    for label, model in zip(("champion", "challenger"), result.models, strict=False):
        out.print(f"{label}: {model.package_arn} (pipeline run {model.pipeline_run})", highlight=False)
    monitoring = result.monitoring
    out.print(
        f"traffic: {result.traffic.get('rows', 0):,} rows in {result.traffic.get('requests', 0)} requests, "
        f"{result.traffic.get('captured_files', 0)} capture files; drift score "
        f"{monitoring.get('drift_score', float('nan')):.3f} (threshold {monitoring.get('threshold')}), "
        f"{monitoring.get('violations', 0)} violations; drift alarm {result.alarm_state}",
        highlight=False,
    )
    out.print(f"serving now: {result.serving_package_arn}", highlight=False)
    out.print(
        f"reports: {report} and {html or report.with_suffix('.html')} ({time.perf_counter() - started:.0f}s)"
    )
