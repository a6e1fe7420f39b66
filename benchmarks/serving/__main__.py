"""`python -m benchmarks.serving`: the kit's server against `mlflow models serve` and a bare echo server.

Same run, same machine, same model: the project's fraud classifier (scikit-learn, fitted on named
columns from the seeded synthetic data) and, to show the HTTP layer where the model costs little, a
logistic regression on the same columns. Each server is pinned to core 0 (`taskset -c 0`), wrk to core 1,
8 connections on 127.0.0.1, `--duration` seconds per cell. OpenMP is held to one thread everywhere.

  kit     python -m mlops_kit.serving (uvloop + httptools, 1 worker), text/csv and application/json
  mlflow  mlflow models serve --env-manager local (its own venv under benchmarks/.peers/, made here)
  echo    the thinnest Python HTTP server we know (uvloop + httptools answering the body back): the ceiling
  predict the in-process rate of model.predict on the same rows, on core 0: scikit-learn's own, and the
          kit's (its compiled trees for gradient boosting; the same model.predict otherwise)

Then a `--saturation`-second run of the kit (single-row CSV) that must end with zero errors, and a run
with 100 % data capture to a folder whose files must hold every answered request.
Needs `wrk` (Debian: apt-get install -y wrk). Prints a Markdown table; ratios are within this run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PEERS = HERE.parent / ".peers"
MLFLOW_VENV = PEERS / "mlflow"
PY = sys.executable
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
CONNECTIONS = 8

ECHO = textwrap.dedent(
    """
    import asyncio, sys, httptools, uvloop

    class Echo(asyncio.Protocol):
        def connection_made(self, t):
            self.t, self.p, self.body = t, httptools.HttpRequestParser(self), []
        def data_received(self, d):
            self.p.feed_data(d)
        def on_message_begin(self):
            self.body = []
        def on_body(self, b):
            self.body.append(b)
        def on_message_complete(self):
            b = b"".join(self.body)
            self.t.write(b"HTTP/1.1 200 OK\\r\\nContent-Type: text/csv\\r\\nContent-Length: %d\\r\\n\\r\\n%s" % (len(b), b))

    loop = uvloop.new_event_loop()
    loop.run_until_complete(loop.create_server(Echo, "127.0.0.1", int(sys.argv[1]), backlog=1024))
    loop.run_forever()
    """
)

PREDICT = textwrap.dedent(
    """
    import sys, time, warnings, joblib, pandas as pd
    from mlops_kit.serving import trees
    warnings.simplefilter("ignore")
    model = joblib.load(sys.argv[1]); seconds = float(sys.argv[2]); out = {}
    kit = trees.accelerate(model)  # what the kit's handler predicts with (the model itself if no trees)
    for name, path in zip(sys.argv[3::2], sys.argv[4::2]):
        frame = pd.read_csv(path).to_numpy()  # the fastest input predict takes: the ceiling
        out[name] = {}
        for who, predictor in (("sklearn", model), ("kit", kit)):
            predictor.predict(frame)
            n, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds:
                predictor.predict(frame); n += 1
            out[name][who] = n / (time.perf_counter() - start)
    print(__import__("json").dumps(out))
    """
)

MLFLOW_SAVE = textwrap.dedent(
    """
    import sys, joblib, mlflow.sklearn
    mlflow.sklearn.save_model(joblib.load(sys.argv[1]), sys.argv[2], serialization_format="pickle")
    """
)

WRK_LUA = textwrap.dedent(
    """
    wrk.method = "POST"
    wrk.headers["Content-Type"] = "{content_type}"
    wrk.headers["Accept"] = "{accept}"
    local f = io.open("{body}", "rb"); wrk.body = f:read("*a"); f:close()
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, process: subprocess.Popen, timeout: float = 180) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}: {url}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server at {url} did not start in {timeout}s")


def start(command: list[str], ping: str, log: Path, extra_path: Path | None = None) -> subprocess.Popen:
    env = {**ENV, "PATH": f"{extra_path}{os.pathsep}{ENV['PATH']}"} if extra_path else ENV
    with log.open("wb") as sink:
        process = subprocess.Popen(
            ["taskset", "-c", "0", *command],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    wait_ready(ping, process)
    return process


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wrk(url: str, body: Path, content_type: str, accept: str, seconds: int, work: Path) -> dict[str, float]:
    script = work / f"wrk-{body.stem}-{content_type.replace('/', '_')}.lua"
    script.write_text(WRK_LUA.format(content_type=content_type, accept=accept, body=body))
    out = subprocess.run(
        [
            "taskset",
            "-c",
            "1",
            "wrk",
            "-t1",
            f"-c{CONNECTIONS}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    socket_errors = sum(int(v) for v in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    p99 = _ms(re.search(r"99%\s+([\d.]+)(us|ms|s)", out))
    p50 = _ms(re.search(r"50%\s+([\d.]+)(us|ms|s)", out))
    return {"rps": rps, "p50_ms": p50, "p99_ms": p99, "requests": total, "errors": non2xx + socket_errors}


def _ms(match: re.Match | None) -> float:
    if match is None:
        return float("nan")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def ensure_mlflow() -> Path:
    """mlflow in its own venv (never in the project's lock), with the project's scikit-learn version."""
    import sklearn

    python = MLFLOW_VENV / "bin" / "python"
    mlflow = MLFLOW_VENV / "bin" / "mlflow"
    if not mlflow.exists():
        uv = [sys.executable, "-m", "uv"] if shutil.which("uv") is None else ["uv"]
        subprocess.run(
            [
                *uv,
                "venv",
                "--quiet",
                "--python",
                f"{sys.version_info[0]}.{sys.version_info[1]}",
                str(MLFLOW_VENV),
            ],
            check=True,
        )
        subprocess.run(
            [
                *uv,
                "pip",
                "install",
                "--quiet",
                "--python",
                str(python),
                "mlflow-skinny",
                f"scikit-learn=={sklearn.__version__}",
                "uvicorn",
                "fastapi",
                "pandas",
            ],
            check=True,
        )
    return mlflow


def _matrix(frame):
    """The fraud model's inputs: numeric columns and category codes (what the project's handler feeds it)."""
    import pandas as pd

    from pipelines import synthetic

    matrix = frame[["amount", "hour", "customer_tenure_days"]].astype("float64").copy()
    for column, categories in (("merchant_category", synthetic.CATEGORIES), ("channel", synthetic.CHANNELS)):
        matrix[column] = pd.Categorical(frame[column], categories=categories).codes
    return matrix


def build_models(work: Path) -> dict[str, Path]:
    import warnings

    import joblib
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    from mlops_kit import settings
    from pipelines import synthetic

    warnings.simplefilter("ignore")
    config = settings.load("local")
    frame = synthetic.generate(synthetic.GeneratorOptions(rows=20_000, seed=config.training.seed))
    cut = frame["event_time"].quantile(0.8)
    train, test = frame[frame["event_time"] < cut], frame[frame["event_time"] >= cut]
    fraud = HistGradientBoostingClassifier(
        categorical_features=[3, 4], random_state=config.training.seed, **config.training.hyperparameters
    ).fit(_matrix(train), train["is_fraud"])
    light = LogisticRegression(max_iter=500).fit(_matrix(train), train["is_fraud"])
    paths = {}
    for name, model in (("fraud-hgb", fraud), ("logistic", light)):
        folder = work / name / "model"
        folder.mkdir(parents=True)
        joblib.dump(model, folder / "model.joblib")
        paths[name] = folder
    rows = _matrix(test)
    for n in (1, 100):
        sample = rows.head(n)
        (work / f"rows-{n}.csv").write_text(sample.to_csv(index=False, header=False, lineterminator="\n"))
        (work / f"rows-{n}-header.csv").write_text(sample.to_csv(index=False, lineterminator="\n"))
        (work / f"rows-{n}.json").write_text(json.dumps({"instances": sample.to_numpy().tolist()}))
        (work / f"rows-{n}-mlflow.json").write_text(
            json.dumps({"dataframe_split": sample.to_dict(orient="split") | {"index": None}})
        )
    return paths


CELLS = (  # (label, kit body, kit type, mlflow body, mlflow type, predict rows)
    ("1-row CSV", "rows-1.csv", "text/csv", "rows-1-header.csv", "text/csv", "rows-1-header.csv"),
    ("100-row CSV", "rows-100.csv", "text/csv", "rows-100-header.csv", "text/csv", "rows-100-header.csv"),
    (
        "1-row JSON",
        "rows-1.json",
        "application/json",
        "rows-1-mlflow.json",
        "application/json",
        "rows-1-header.csv",
    ),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serving")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk cell")
    parser.add_argument(
        "--saturation", type=int, default=60, help="seconds of the zero-error run; 0 skips it"
    )
    parser.add_argument("--models", default="fraud-hgb,logistic")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None or shutil.which("taskset") is None:
        print("needs wrk and taskset: apt-get install -y wrk util-linux", file=sys.stderr)
        return 2
    mlflow = ensure_mlflow()
    work = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    models = build_models(work)
    (work / "echo.py").write_text(ECHO)
    (work / "predict.py").write_text(PREDICT)
    (work / "save.py").write_text(MLFLOW_SAVE)
    results: list[dict] = []
    for name in args.models.split(","):
        model_dir = models[name]
        subprocess.run(
            [
                str(MLFLOW_VENV / "bin" / "python"),
                str(work / "save.py"),
                str(model_dir / "model.joblib"),
                str(work / name / "mlflow"),
            ],
            check=True,
            env=ENV,
            capture_output=True,
        )
        predict_args = [str(model_dir / "model.joblib"), str(max(3, args.duration // 2))]
        for label, *_rest, rows in CELLS:
            predict_args += [label, str(work / rows)]
        predicted = json.loads(
            subprocess.run(
                ["taskset", "-c", "0", PY, str(work / "predict.py"), *predict_args],
                capture_output=True,
                text=True,
                check=True,
                env=ENV,
            ).stdout
        )
        servers: dict[str, tuple[subprocess.Popen, int]] = {}
        kit_port, mlflow_port, echo_port = free_port(), free_port(), free_port()
        try:
            servers["kit"] = (
                start(
                    [PY, "-m", "mlops_kit.serving", "--model-dir", str(model_dir), "--port", str(kit_port)],
                    f"http://127.0.0.1:{kit_port}/ping",
                    work / f"{name}-kit.log",
                ),
                kit_port,
            )
            servers["mlflow"] = (
                start(
                    [
                        str(mlflow),
                        "models",
                        "serve",
                        "-m",
                        str(work / name / "mlflow"),
                        "-p",
                        str(mlflow_port),
                        "-h",
                        "127.0.0.1",
                        "--env-manager",
                        "local",
                        "-w",
                        "1",
                    ],
                    f"http://127.0.0.1:{mlflow_port}/ping",
                    work / f"{name}-mlflow.log",
                    MLFLOW_VENV / "bin",
                ),
                mlflow_port,
            )
            servers["echo"] = (
                start(
                    [PY, str(work / "echo.py"), str(echo_port)],
                    f"http://127.0.0.1:{echo_port}/",
                    work / f"{name}-echo.log",
                ),
                echo_port,
            )
            for label, kit_body, kit_type, mlflow_body, mlflow_type, _rows in CELLS:
                row = {
                    "model": name,
                    "request": label,
                    "predict_rps": predicted[label]["sklearn"],
                    "kit_predict_rps": predicted[label]["kit"],
                }
                row["kit"] = wrk(
                    f"http://127.0.0.1:{kit_port}/invocations",
                    work / kit_body,
                    kit_type,
                    "application/json",
                    args.duration,
                    work,
                )
                row["mlflow"] = wrk(
                    f"http://127.0.0.1:{mlflow_port}/invocations",
                    work / mlflow_body,
                    mlflow_type,
                    "application/json",
                    args.duration,
                    work,
                )
                row["echo"] = wrk(
                    f"http://127.0.0.1:{echo_port}/invocations",
                    work / kit_body,
                    kit_type,
                    "application/json",
                    args.duration,
                    work,
                )
                results.append(row)
                print(json.dumps(row), flush=True)
        finally:
            for process, _ in servers.values():
                stop(process)
    saturation = None
    if args.saturation:
        port = free_port()
        process = start(
            [PY, "-m", "mlops_kit.serving", "--model-dir", str(models["fraud-hgb"]), "--port", str(port)],
            f"http://127.0.0.1:{port}/ping",
            work / "saturation.log",
        )
        try:
            saturation = wrk(
                f"http://127.0.0.1:{port}/invocations",
                work / "rows-1.csv",
                "text/csv",
                "application/json",
                args.saturation,
                work,
            )
        finally:
            stop(process)
    captured = measure_capture(models["fraud-hgb"], work, args.duration) if "fraud-hgb" in models else None
    print()
    print(table(results, saturation, args, captured))
    ok = saturation is None or saturation["errors"] == 0
    return 0 if ok and (captured is None or captured["missing"] == 0) else 1


def measure_capture(model_dir: Path, work: Path, seconds: int) -> dict[str, float]:
    """The kit with 100 % data capture to a folder: its rate, and whether every answer was captured."""
    import urllib.request

    from mlops_kit.serving import metrics

    port, folder = free_port(), work / "capture"
    process = start(
        [PY, "-m", "mlops_kit.serving", "--model-dir", str(model_dir), "--port", str(port)]
        + ["--capture-to", str(folder), "--capture-percent", "100"],
        f"http://127.0.0.1:{port}/ping",
        work / "capture.log",
    )
    try:
        run = wrk(
            f"http://127.0.0.1:{port}/invocations",
            work / "rows-1.csv",
            "text/csv",
            "application/json",
            seconds,
            work,
        )
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
            answered = metrics.total(
                metrics.parse(answer.read().decode()),
                "mlops_http_request_duration_seconds_count",
                path="/invocations",
                status="200",
            )
    finally:
        stop(process)  # SIGTERM: the server flushes what capture still holds
    lines = sum(path.read_bytes().count(b"\n") for path in folder.rglob("*.jsonl"))
    return {**run, "answered": answered, "captured": lines, "missing": answered - lines}


def table(
    results: list[dict], saturation: dict | None, args: argparse.Namespace, captured: dict | None = None
) -> str:
    lines = [
        f"{CONNECTIONS} connections, server on 1 core, {args.duration}s per cell; rps = requests/s",
        "",
        "| model | request | kit rps | mlflow rps | kit / mlflow | echo rps | kit / echo | sklearn predict rps | kit / sklearn predict | kit predict rps | kit / kit predict | kit p99 ms | mlflow p99 ms | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        k, m, e = r["kit"], r["mlflow"], r["echo"]
        lines.append(
            f"| {r['model']} | {r['request']} | {k['rps']:,.0f} | {m['rps']:,.0f} | {k['rps'] / m['rps']:.1f}x | "
            f"{e['rps']:,.0f} | {k['rps'] / e['rps']:.0%} | {r['predict_rps']:,.0f} | {k['rps'] / r['predict_rps']:.0%} | "
            f"{r['kit_predict_rps']:,.0f} | {k['rps'] / r['kit_predict_rps']:.0%} | "
            f"{k['p99_ms']:.1f} | {m['p99_ms']:.1f} | {k['errors'] + m['errors'] + e['errors']:.0f} |"
        )
    if saturation is not None:
        lines += [
            "",
            f"saturation: kit, fraud-hgb, 1-row CSV, {args.saturation}s: {saturation['requests']:,.0f} requests, "
            f"{saturation['rps']:,.0f} rps, p99 {saturation['p99_ms']:.1f} ms, errors {saturation['errors']:.0f}",
        ]
    if captured is not None:
        lines += [
            "",
            f"capture at 100 %: kit, fraud-hgb, 1-row CSV, {args.duration}s: {captured['rps']:,.0f} rps, "
            f"p99 {captured['p99_ms']:.1f} ms; {captured['answered']:,.0f} answered, "
            f"{captured['captured']:,.0f} captured, {captured['missing']:,.0f} missing",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
