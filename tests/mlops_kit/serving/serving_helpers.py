"""Model directories the serving tests build themselves, and a real server process on 127.0.0.1.

A module of its own (not conftest): test modules import these by name, and `conftest` is a name every
test folder has.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import tarfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression

# A partial script, as SageMaker's container allows: model_fn and predict_fn; input_fn and output_fn are
# the container's defaults. A first value of -999 makes the model fail (the 500 path).
SCRIPT = textwrap.dedent(
    """
    import os

    import joblib


    def model_fn(model_dir):
        return joblib.load(os.path.join(model_dir, "model.joblib"))


    def predict_fn(data, model):
        if (data[:, 0] == -999).any():
            raise RuntimeError("sentinel row: the test's model error")
        return model.predict_proba(data)[:, 1]
    """
)


# A full script that decodes as leniently as pandas does (a short row padded with NaN, `inf` and `1e309`
# read as numbers): what the kit's screen must hold to its own rules before this input_fn runs.
OWN_DECODER = textwrap.dedent(
    """
    import io, json, os
    import joblib, pandas as pd

    CALLS = []

    def model_fn(model_dir):
        return joblib.load(os.path.join(model_dir, "model.joblib"))

    def input_fn(body, content_type):  # as lenient as pandas: NaN-padded short rows, inf, 1e309
        CALLS.append(body)
        if content_type == "application/json":
            return pd.DataFrame(json.loads(body))
        return pd.read_csv(io.BytesIO(body), header=None)

    def predict_fn(data, model):
        return model.predict_proba(data.to_numpy(dtype=float))[:, 1]

    def output_fn(prediction, accept):
        if accept == "application/x-unsupported":
            raise type("UnsupportedFormatError", (Exception,), {})(f"no {accept} here")
        return "\\n".join(f"{p:.6f}" for p in prediction), "text/csv"
    """
)


def fitted_model(features: int = 3, names: list[str] | None = None) -> LogisticRegression:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, features))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    if names is not None:
        import pandas as pd

        return LogisticRegression().fit(pd.DataFrame(x, columns=names), y)
    return LogisticRegression().fit(x, y)


def write_model_dir(folder: Path, script: str | None = SCRIPT, model: object | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    joblib.dump(model if model is not None else fitted_model(), folder / "model.joblib")
    if script is not None:
        (folder / "code").mkdir(exist_ok=True)
        (folder / "code" / "inference.py").write_text(script)
    return folder


def pack(folder: Path, target: Path) -> Path:
    with tarfile.open(target, "w:gz") as archive:
        for path in sorted(folder.rglob("*")):
            archive.add(path, arcname=str(path.relative_to(folder)), recursive=False)
    return target


@dataclass
class RunningServer:
    process: subprocess.Popen
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()

    def invoke(self, body: bytes | str, content_type: str = "text/csv", accept: str | None = None):
        headers = {"Content-Type": content_type}
        if accept:
            headers["Accept"] = accept
        data = body.encode() if isinstance(body, str) else body
        return self.request("POST", "/invocations", data, headers)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_server(model: Path, state: Path, *args: str, env: dict[str, str] | None = None) -> RunningServer:
    """`python -m mlops_kit.serving` on a free loopback port; returns once it has written its port."""
    ready = state / f"ready-{time.monotonic_ns()}.json"
    log = ready.with_suffix(".log")
    command = [sys.executable, "-m", "mlops_kit.serving", "--model-dir", str(model), "--port", "0"]
    command += ["--ready-file", str(ready), *args]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, stdout=sink, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
    deadline = time.monotonic() + 60
    while not ready.exists():
        if process.poll() is not None:
            raise AssertionError(f"server exited: {log.read_text()}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"server did not start: {log.read_text()}")
        time.sleep(0.02)
    return RunningServer(process, json.loads(ready.read_text())["port"], log)
