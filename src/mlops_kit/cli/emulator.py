"""`mlops emulator start|stop|status`: the embedded AWS emulator, for running pieces by hand."""

from __future__ import annotations

import typer

from mlops_kit import lazy
from mlops_kit.cli import output

emu = lazy.module("mlops_kit.emulator")

app = typer.Typer(help="The embedded AWS emulator (moto's server on 127.0.0.1).", no_args_is_help=True)
out = output.console()


@app.command()
def start(
    port: int = typer.Option(0, help="Port on 127.0.0.1; 0 picks a free one."),
    region: str = typer.Option("us-east-1", help="Region the emulator's clients use."),
    as_json: bool = typer.Option(False, "--json", help='{"running": true, "endpoint_url": ..., "pid": ...}'),
) -> None:
    """Start an emulator that later commands on the local environment use."""
    running = emu.start_detached(port=port, region=region)
    if as_json:
        output.emit(_state(running))
        return
    out.print(f"emulator running at {running.endpoint_url} (pid {running.pid})")
    out.print(f"export AWS_ENDPOINT_URL={running.endpoint_url}", highlight=False)


@app.command()
def stop(
    as_json: bool = typer.Option(False, "--json", help='{"stopped": ..., "endpoint_url": ...}'),
) -> None:
    """Stop the recorded emulator."""
    stopped = emu.stop_recorded()
    if as_json:
        output.emit(
            {"stopped": stopped is not None} | ({"endpoint_url": stopped.endpoint_url} if stopped else {})
        )
        return
    out.print(f"stopped the emulator at {stopped.endpoint_url}" if stopped else "no emulator was running")


@app.command()
def status(
    as_json: bool = typer.Option(False, "--json", help='{"running": ..., "endpoint_url": ..., "pid": ...}'),
) -> None:
    """Say whether an emulator is running, and where. Exit code 1 when none is."""
    running = emu.running()
    if as_json:
        output.emit(_state(running))
        if running is None:
            raise typer.Exit(1)
        return
    if running is None:
        out.print("no emulator running")
        raise typer.Exit(1)
    out.print(f"emulator running at {running.endpoint_url} (pid {running.pid})")


def _state(running: object | None) -> dict:
    if running is None:
        return {"running": False}
    return {"running": True, "endpoint_url": running.endpoint_url, "pid": running.pid, "port": running.port}
