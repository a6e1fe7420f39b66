"""A job's peak memory, as the benchmark reports it: its own processes', not the executor's."""

from __future__ import annotations

from pathlib import Path

from mlops_kit.executor import launch

ROOT = Path(__file__).resolve().parents[3]
HOLD = "import time; block = bytearray({mb} * 1024 * 1024); block[::4096] = b'x' * len(block[::4096]); time.sleep(0.6)"


def _peak(tmp_path: Path, code: str) -> float:
    spec = launch.Container(arguments=["-c", code], entrypoint=["python3"], root=tmp_path)
    usage: dict = {}
    assert launch.VenvLauncher(ROOT).run(spec, log=tmp_path / "log", timeout=60, usage=usage) == 0
    return usage["max_rss_mb"]


def test_a_small_job_does_not_carry_the_executors_memory(tmp_path: Path) -> None:
    ballast = bytearray(300 * 1024 * 1024)  # the executor's own memory must not show up as the job's
    ballast[::4096] = b"x" * len(ballast[::4096])
    assert 1 < _peak(tmp_path, "import time; time.sleep(0.3)") < 100


def test_a_job_that_holds_memory_in_a_child_process_reports_it(tmp_path: Path) -> None:
    child = (
        f"import subprocess, sys; subprocess.run([sys.executable, '-c', {HOLD.format(mb=250)!r}], check=True)"
    )
    assert _peak(tmp_path, child) >= 250  # like the image's `train`, which runs the module as a child
