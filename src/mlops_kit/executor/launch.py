"""Start a container of the project's image on this machine: from the `.venv`, or in Docker.

A job or an endpoint is described as SageMaker would start it (`Container`): the image's entry point or
the request's own (`ContainerEntrypoint`), the arguments, the environment, and a folder that stands for
the container's `/` (its `opt/ml` is the job's `/opt/ml`). Two launchers start it:
- `VenvLauncher` (the default): the same command with the project's `.venv` on `PATH` (synced from the
  same `uv.lock` the image installs), the working folder and `PYTHONPATH` at the project root (the
  image's `WORKDIR`), `/opt/ml/...` arguments mapped into the stand-in folder, and
  `MLOPS_CONTAINER_ROOT` naming it for the image's own entry points (`mlops_kit.container`).
- `DockerLauncher` (`MLOPS_CONTAINER_IMAGE=<local image>`): `docker run` of the built image, with the
  stand-in `opt/ml` mounted at `/opt/ml`, the host's network (the emulator listens on loopback), or no
  network for a job with network isolation. CI builds the image and runs the demo this way.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mlops_kit import container, runtime

IMAGE_VARIABLE = "MLOPS_CONTAINER_IMAGE"
CONTAINER_ML = "/opt/ml/"
# Where an isolated job's AWS calls go locally: nowhere (the discard port), never to a real endpoint.
NO_NETWORK_ENDPOINT = "http://127.0.0.1:9"
# Locally, the jobs of steps that run at the same time share this machine's cores, where SageMaker gives
# each instance its own. OpenMP's default there (an idle thread spins before it sleeps) takes the cores
# the other jobs need: 1M rows took 61.2 s with Train's and Evaluate's idle threads spinning beside
# Features, 54.5 s with them sleeping. It changes no result, only how an idle OpenMP thread waits; a value
# set by the request (or, from the .venv, by the caller) is kept. Endpoints are left as they are.
SHARED_CORES = {"OMP_WAIT_POLICY": "PASSIVE"}


@dataclass(frozen=True)
class Container:
    """One container start, in the image's own terms."""

    arguments: Sequence[str]
    root: Path  # stands for the container's "/": root / "opt/ml" is its /opt/ml
    environment: Mapping[str, str] = field(default_factory=dict)  # what SageMaker sets in the container
    entrypoint: Sequence[str] | None = None  # None: the image's ENTRYPOINT (container.ENTRYPOINT)
    aws_environment: Mapping[str, str] = field(default_factory=dict)  # the caller's AWS credentials
    network_isolation: bool = False

    @property
    def command(self) -> list[str]:
        """The command the container runs, as `docker run` would: entry point, then arguments."""
        return [*(self.entrypoint if self.entrypoint is not None else container.ENTRYPOINT), *self.arguments]


def _aws(spec: Container) -> dict[str, str]:
    if spec.network_isolation:  # no credentials and no way out: an AWS call fails here as it would there
        return {"AWS_ENDPOINT_URL": NO_NETWORK_ENDPOINT, "AWS_EC2_METADATA_DISABLED": "true"}
    return dict(spec.aws_environment)


@dataclass(frozen=True)
class VenvLauncher:
    """Runs the image's commands with the project's virtual environment, as the image would."""

    workdir: Path  # the project root: the image's WORKDIR and PYTHONPATH (runtime.IMAGE_WORKDIR)
    python_bin: Path = Path(sys.executable).parent

    def map(self, value: str, root: Path) -> str:
        return value.replace(CONTAINER_ML, f"{root}{CONTAINER_ML}")

    def argv(self, spec: Container) -> list[str]:
        return [self.map(part, spec.root) for part in spec.command]

    def environment(self, spec: Container, *, job: bool = False) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "AWS_", "MLOPS_"))}
        base.pop("PYTHONPATH", None)
        if job:
            base = {**SHARED_CORES, **base}
        base.update(_aws(spec))
        base.update({k: self.map(v, spec.root) for k, v in spec.environment.items()})
        base["PATH"] = f"{self.python_bin}{os.pathsep}{base.get('PATH', '')}"
        base["PYTHONPATH"] = str(self.workdir)
        base[container.ROOT_VARIABLE] = str(spec.root)
        return base

    def run(self, spec: Container, *, log: Path, timeout: float, usage: dict | None = None) -> int:
        """Run a job to its end; returns its exit code (output appended to `log`). `usage`, when given,
        gets the process's peak resident memory (`max_rss_mb`)."""
        with _popen(
            self.argv(spec), log, shown=spec.command, env=self.environment(spec, job=True), cwd=self.workdir
        ) as p:
            return _wait(p, timeout, usage)

    def start(self, spec: Container, *, log: Path) -> subprocess.Popen:
        """A long-running container (an endpoint), detached from this process's session."""
        return _popen(
            self.argv(spec),
            log,
            shown=spec.command,
            env=self.environment(spec),
            cwd=self.workdir,
            start_new_session=True,
        )


def _wait(process: subprocess.Popen, timeout: float, usage: dict | None) -> int:
    """Wait for the process (killed past `timeout`). With `usage`, note its peak resident memory: the
    largest high-water mark (`VmHWM` in /proc) of the process and of every process it started (the
    image's `train` runs the training module as a child), read while they run. (The kernel's ru_maxrss
    of a child counts the parent's memory at fork, so it cannot tell a job's own peak.)"""
    if usage is None or not Path(f"/proc/{process.pid}/status").exists():
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    deadline = time.monotonic() + timeout
    delay, peak_kb = 0.005, 0
    while process.poll() is None:
        peak_kb = max([peak_kb, *(_high_water_kb(pid) for pid in _tree(process.pid))])
        if time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise subprocess.TimeoutExpired(process.args, timeout)
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
    usage["max_rss_mb"] = round(peak_kb / 1024, 1)
    return process.returncode


def _tree(pid: int) -> list[int]:
    """The process and its descendants, from /proc's children lists."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                pending += [int(c) for c in task.read_text().split()]
            except (OSError, ValueError):
                continue  # it ended meanwhile
    return found


def _high_water_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass  # it ended between two looks: the last reading stands
    return 0


def _popen(argv: list[str], log: Path, *, shown: Sequence[str], **options) -> subprocess.Popen:
    """Start `argv` with its output appended to `log`, after a line showing the command."""
    with open(log, "ab") as out:
        out.write(f"$ {' '.join(shown)}\n".encode())
        out.flush()
        return subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **options
        )


@dataclass(frozen=True)
class DockerLauncher:
    """Runs the built image with `docker run`, SageMaker's way: /opt/ml mounted, the request's env."""

    image: str
    project: Path | None = None  # its settings (Pulumi.yaml, environments/) are mounted read-only
    docker: str = "docker"

    def argv(self, spec: Container, *, name: str = "", job: bool = False) -> list[str]:
        (spec.root / "opt" / "ml").mkdir(parents=True, exist_ok=True)
        out = [self.docker, "run", "--rm", "--init"]
        if name:
            out += ["--name", name]
        # Files the job writes belong to the caller, so they can be read and removed afterwards.
        out += ["--user", f"{os.getuid()}:{os.getgid()}"] if hasattr(os, "getuid") else []
        out += ["--network", "none" if spec.network_isolation else "host"]
        out += ["--volume", f"{spec.root / 'opt' / 'ml'}:/opt/ml"]
        if self.project is not None:  # a local endpoint reads its environment's settings (feature store)
            for part in ("Pulumi.yaml", "environments"):
                if (self.project / part).exists():
                    out += ["--volume", f"{self.project / part}:{runtime.IMAGE_WORKDIR}/{part}:ro"]
        for key, value in sorted({**(SHARED_CORES if job else {}), **_aws(spec), **spec.environment}.items()):
            out += ["--env", f"{key}={value}"]
        if spec.entrypoint is not None:
            out += ["--entrypoint", spec.entrypoint[0], self.image, *spec.entrypoint[1:], *spec.arguments]
        else:
            out += [self.image, *spec.arguments]
        return out

    def run(self, spec: Container, *, log: Path, timeout: float, usage: dict | None = None) -> int:
        argv = self.argv(spec, job=True)  # the job's memory is the container's, not `docker run`'s: no usage
        with _popen(argv, log, shown=argv) as process:
            return _wait(process, timeout, None)

    def start(self, spec: Container, *, log: Path, name: str) -> subprocess.Popen:
        """The endpoint in the foreground of a `docker run` process (stopping it stops the container)."""
        argv = self.argv(spec, name=name)
        return _popen(argv, log, shown=argv, start_new_session=True)


Launcher = VenvLauncher | DockerLauncher


def launcher_for(workdir: Path, environ: Mapping[str, str] | None = None) -> Launcher:
    """Docker when `MLOPS_CONTAINER_IMAGE` names a built image, else the project's `.venv`."""
    image = (os.environ if environ is None else environ).get(IMAGE_VARIABLE, "")
    if not image:
        return VenvLauncher(workdir)
    if shutil.which("docker") is None:
        raise RuntimeError(
            f"{IMAGE_VARIABLE}={image}: running the image needs Docker, and `docker` is not on PATH"
        )
    return DockerLauncher(image, project=workdir)
