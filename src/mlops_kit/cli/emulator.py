"""`mlops emulator start|stop|status`: the embedded AWS emulator, for running pieces by hand."""

from __future__ import annotations

import typer
from rich.console import Console

from mlops_kit import lazy

emu = lazy.module("mlops_kit.emulator")

app = typer.Typer(help="The embedded AWS emulator (moto's server on 127.0.0.1).", no_args_is_help=True)
out = Console()


@app.command()
def start(
    port: int = typer.Option(0, help="Port on 127.0.0.1; 0 picks a free one."),
    region: str = typer.Option("us-east-1", help="Region the emulator's clients use."),
) -> None:
    """Start an emulator that later commands on the local environment use."""
    running = emu.start_detached(port=port, region=region)
    out.print(f"emulator running at {running.endpoint_url} (pid {running.pid})")
    out.print(f"export AWS_ENDPOINT_URL={running.endpoint_url}", highlight=False)


@app.command()
def stop() -> None:
    """Stop the recorded emulator."""
    stopped = emu.stop_recorded()
    out.print(f"stopped the emulator at {stopped.endpoint_url}" if stopped else "no emulator was running")


@app.command()
def status(
    as_json: bool = typer.Option(False, "--json", help='{"running": ..., "endpoint_url": ..., "pid": ...}'),
) -> None:
    """Say whether an emulator is running, and where. Exit code 1 when none is."""
    import json

    running = emu.running()
    if as_json:
        state = {"running": running is not None}
        if running is not None:
            state |= {"endpoint_url": running.endpoint_url, "pid": running.pid, "port": running.port}
        print(json.dumps(state))
        if running is None:
            raise typer.Exit(1)
        return
    if running is None:
        out.print("no emulator running")
        raise typer.Exit(1)
    out.print(f"emulator running at {running.endpoint_url} (pid {running.pid})")
