"""A stop asked for at any moment of a server's start is honoured: drained, exit 0, nothing left behind.

The moments that matter are the ones a test cannot hit by timing: between the ready file and the worker's
handlers (the SIGTERM is noted and honoured once they are there), and between the handlers and the event
loop's start (uvloop's own `add_signal_handler` kept such a signal unseen: the server ran on until killed,
which failed CI once). Each is made certain here by sending the signal from inside the server at that
point, in a subprocess of its own."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = """
import os, signal, sys
from mlops_kit.serving import server

def then_stop(original):
    def wrapped(*args, **kwargs):
        result = original(*args, **kwargs)
        os.kill(os.getpid(), signal.{signal})
        return result
    return wrapped

server.{point} = then_stop(server.{point})
sys.exit(server.main(sys.argv[1:]))
"""


@pytest.mark.parametrize("signal", ["SIGTERM", "SIGINT"])
@pytest.mark.parametrize(
    "point",
    [
        "_capture_buffer",  # after the ready file, before the worker's handlers
        "_stop_on_signals",  # after the handlers, before the loop runs
    ],
)
def test_a_stop_during_start_is_honoured(model_dir: Path, tmp_path: Path, point: str, signal: str) -> None:
    script = textwrap.dedent(SCRIPT).format(point=point, signal=signal)
    capture = tmp_path / "capture"
    spool = tmp_path / "spool"
    command = [sys.executable, "-c", script, "--model-dir", str(model_dir), "--port", "0"]
    command += ["--capture-to", str(capture), "--capture-percent", "100", "--capture-spool", str(spool)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"a {signal} at {point} did not stop the server in 60 s") from exc
    assert done.returncode == 0, done.stdout + done.stderr
    assert list(spool.glob("*.spool")) == []  # closed as a stop does: its (empty) spool removed
