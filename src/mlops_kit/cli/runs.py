"""`mlops runs list|show|compare`: the recorded local pipeline runs."""

from __future__ import annotations

import functools
import json

import typer

from mlops_kit import lazy
from mlops_kit.cli import output

executor = lazy.module("mlops_kit.executor")

app = typer.Typer(help="Recorded local pipeline runs.", no_args_is_help=True)
out = output.console()


@app.command("list")
def list_runs(as_json: bool = typer.Option(False, "--json", help="Every recorded run, as JSON.")) -> None:
    """Recorded runs, newest first."""
    if as_json:
        print(json.dumps([r.to_dict() for r in executor.list_runs()], indent=2, sort_keys=True, default=str))
        return
    columns = ("run", "environment", "status", "started", "deciding metric", "model package")
    if not out.is_terminal:  # piped: one tab-separated line per run, nothing folded or cut
        print("\t".join(columns))
        for record in executor.list_runs():
            name = _deciding_metric(record.environment)
            value = record.metrics.get(name) if name else None
            metric = f"{name} {value:.4f}" if isinstance(value, (int, float)) else ""
            fields = (record.execution_id, record.environment, record.status, record.started, metric)
            print("\t".join((*fields, record.artifacts.get("model_package", ""))))
        return
    from rich.table import Table

    table = Table(*columns)
    for record in executor.list_runs():
        name = _deciding_metric(record.environment)
        value = record.metrics.get(name) if name else None
        table.add_row(
            record.execution_id,
            record.environment,
            record.status,
            record.started,
            f"{name} {value:.4f}" if isinstance(value, (int, float)) else "",
            record.artifacts.get("model_package", ""),
        )
    out.print(table)


@functools.cache
def _deciding_metric(env: str) -> str:
    """The use case's deciding metric for a run's environment ("" when its settings are gone)."""
    from mlops_kit import project, settings

    try:
        return project.use_case(settings.load(env)).deciding_metric
    except (settings.SettingsError, OSError):
        return ""


@app.command()
def show(run_id: str = typer.Argument(..., help="The run's execution id.")) -> None:
    """Everything recorded about one run, as JSON."""
    record = executor.load(run_id)
    print(json.dumps(record.to_dict(), indent=2, sort_keys=True, default=str))


@app.command()
def compare(
    first: str = typer.Argument(...),
    second: str = typer.Argument(...),
    as_json: bool = typer.Option(False, "--json", help="Every compared value of both runs, as JSON."),
) -> None:
    """Parameters, inputs, code and metrics of two runs side by side; differences marked."""
    a, b = executor.load(first), executor.load(second)
    rows = [
        ("git commit", a.git_commit, b.git_commit),
        ("code", a.code_sha256[:12], b.code_sha256[:12]),
        ("input data", a.input_fingerprint[:12], b.input_fingerprint[:12]),
        *(
            (f"param {k}", str(a.parameters.get(k, "")), str(b.parameters.get(k, "")))
            for k in sorted({*a.parameters, *b.parameters})
        ),
        *((k, _num(a.metrics.get(k)), _num(b.metrics.get(k))) for k in sorted({*a.metrics, *b.metrics})),
        ("status", a.status, b.status),
    ]
    if as_json:
        output.emit(
            [
                {"what": label, first: left, second: right, "differs": left != right}
                for label, left, right in rows
            ]
        )
        return
    marked = [(label, left, right, "" if left == right else "≠") for label, left, right in rows]
    output.table(out, ("", first, second, "differs"), marked)


def _num(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else ("" if value is None else str(value))
