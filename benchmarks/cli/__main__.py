"""`python -m benchmarks.cli`: how long the `mlops` command takes to answer, as a user waits for it.

Each command runs as a fresh process (the console script, as a shell starts it), `--runs` times after
`--warmup` runs, interleaved so that a busy machine slows every command alike; like hyperfine, the table
gives mean ± standard deviation, median and min, in the same run as two floors: the bare interpreter
(`python -c pass`), `import typer` (the CLI framework every command pays for) and typer with pydantic
(which typer 0.29 imports to coerce the options of any command that runs).

- `mlops --help`: target under 0.3 s (issue 19).
- `mlops invoke`: one CSV row to a local endpoint and its answer back, against a stub server in this
  process that answers at once, so the figure is the command's own start and request: target 0.5 s.
- `mlops runs list --json` and `mlops emulator status --json`: what scripts call in loops.

Also printed: which heavy libraries each command imported (pandas, boto3, the SageMaker SDK, pyarrow,
numpy), the reason a command is slow when it is.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HEAVY = ("pandas", "numpy", "boto3", "botocore", "sagemaker", "pulumi", "pyarrow", "sklearn", "pydantic")
TARGETS = {"mlops --help": 0.3, "mlops invoke": 0.5}


class _Stub(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b'{"predictions": [0.5]}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _mlops() -> str:
    script = Path(sys.executable).with_name("mlops")
    if not script.exists():
        raise SystemExit(f"no console script {script}: run `uv sync` first")
    return str(script)


def commands(url: str, body: Path) -> dict[str, list[str]]:
    mlops = _mlops()
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -c 'import typer'": [sys.executable, "-c", "import typer"],
        # typer 0.29 coerces every option of a command that runs through a pydantic TypeAdapter
        "python -c 'import typer, pydantic'": [
            sys.executable,
            "-c",
            "import typer; from pydantic import TypeAdapter",
        ],
        "mlops --help": [mlops, "--help"],
        "mlops invoke": [mlops, "invoke", "--url", url, "--input", str(body)],
        "mlops runs list --json": [mlops, "runs", "list", "--json"],
        "mlops emulator status --json": [mlops, "emulator", "status", "--json"],
    }


def imported(argv: list[str], env: dict[str, str]) -> list[str]:
    """The heavy libraries a command imports (its CLI run under an import hook, not timed)."""
    if argv[0] == sys.executable:
        return []
    code = (
        "import sys; from mlops_kit.cli import main; code = main(sys.argv[1:]); "
        f"print('\\n' + repr(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code, *argv[1:]], capture_output=True, text=True, env=env)
    return eval(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else ["?"]  # noqa: S307


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cli")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args(argv)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        body = Path(tmp) / "row.csv"
        body.write_text("1.0,2.0,3.0\n")
        # a state folder of its own: `runs list` and `emulator status` read an empty one
        env = {**os.environ, "MLOPS_STATE_DIR": tmp, "XDG_STATE_HOME": tmp}
        table = commands(f"http://127.0.0.1:{server.server_address[1]}", body)
        times: dict[str, list[float]] = {name: [] for name in table}
        for i in range(args.warmup + args.runs):
            for name, command in table.items():
                started = time.perf_counter()
                done = subprocess.run(command, capture_output=True, env=env, cwd=Path(__file__).parents[2])
                elapsed = time.perf_counter() - started
                if done.returncode not in (0, 1):  # `emulator status` says 1 when none runs
                    print(done.stderr.decode(errors="replace"), file=sys.stderr)
                    raise SystemExit(f"{name} failed with {done.returncode}")
                if i >= args.warmup:
                    times[name].append(elapsed)
        heavy = {name: imported(command, env) for name, command in table.items()}
    server.shutdown()
    load = os.getloadavg()[0]
    print(f"{args.runs} runs each after {args.warmup} warm-up, interleaved; load average {load:.1f}")
    print(f"on {os.cpu_count()} cores, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
    print("| command | mean ± sd (s) | median (s) | min (s) | target | heavy imports |")
    print("|---|---:|---:|---:|---|---|")
    failed = []
    for name, values in times.items():
        mean, sd = statistics.mean(values), statistics.stdev(values)
        median, low = statistics.median(values), min(values)
        target = TARGETS.get(name)
        verdict = ""
        if target is not None:
            verdict = f"< {target} s: {'yes' if median < target else 'NO'}"
            if median >= target:
                failed.append(name)
        print(
            f"| `{name}` | {mean:.3f} ± {sd:.3f} | {median:.3f} | {low:.3f} | {verdict} |"
            f" {', '.join(heavy[name]) or 'none'} |"
        )
    print(json.dumps({n: statistics.median(v) for n, v in times.items()}), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
