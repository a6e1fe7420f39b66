"""Monitoring benchmark: the kit's drift run against evidently, plain numpy and the sort-bound floor.

    python -m benchmarks.monitoring [--rows 1000000] [--repeats 3] [--skip-evidently]

A baseline (reference) of `rows` rows and a window of `rows` rows, 20 numeric and 3 categorical
features, the window drifted in five of them (seeded). Each contender runs in a fresh process of its own
(see contenders.py), so its peak RSS is its own; every time is measured in this same run and reported
as a ratio to the kit's. evidently does not import with pandas 3, so it runs in its own environment,
made here under benchmarks/monitoring/.peers/ (gitignored) with uv: evidently + pandas 2.

Targets (issue 7): at least 50x faster than evidently, at most 1.2 GB peak, within 2x of the floor.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
DATA = HERE / ".data"
PEERS = HERE / ".peers"
EVIDENTLY_SPEC = ["evidently==0.7.*", "pandas>=2.2,<3", "pyarrow"]
SEED = 20260301
TARGET_SPEEDUP = 50.0
TARGET_RSS_MB = 1200.0
TARGET_FLOOR_RATIO = 2.0


def make_data(rows: int, folder: Path) -> None:
    """Reference and window parquet files, and the kit's baseline of the reference (untimed setup)."""
    stamp = folder / f"rows-{rows}-seed-{SEED}"
    if stamp.exists():
        return
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    categories = ["grocery", "fuel", "restaurants", "retail", "travel", "electronics", "gaming", "services"]
    mix = np.array([0.26, 0.14, 0.16, 0.18, 0.06, 0.08, 0.04, 0.08])
    drifted_mix = np.array([0.16, 0.10, 0.12, 0.16, 0.10, 0.18, 0.10, 0.08])
    regions = [f"region-{i:02d}" for i in range(50)]

    def frame(drift: bool) -> pd.DataFrame:
        columns: dict[str, np.ndarray] = {}
        for i in range(5):
            columns[f"normal_{i}"] = rng.normal(10.0 * i + (2.0 if drift and i == 0 else 0.0), 1.0 + i, rows)
        for i in range(5):
            columns[f"lognormal_{i}"] = rng.lognormal(
                3.0 + 0.1 * i, 0.6 * (1.5 if drift and i == 1 else 1.0), rows
            )
        for i in range(4):
            columns[f"count_{i}"] = rng.poisson(3.0 + 5 * i + (3.0 if drift and i == 2 else 0.0), rows)
        for i in range(3):
            columns[f"uniform_{i}"] = rng.uniform(0, 100 * (i + 1), rows)
        for i in range(3):
            values = rng.exponential(5.0 * (i + 1) * (1.6 if drift and i == 0 else 1.0), rows)
            values[rng.random(rows) < 0.01] = np.nan  # some missing values
            columns[f"exponential_{i}"] = values
        columns["category"] = np.asarray(categories, dtype=object)[
            rng.choice(len(categories), rows, p=drifted_mix if drift else mix)
        ]
        columns["channel"] = np.asarray(["pos", "online", "atm"], dtype=object)[
            rng.choice(3, rows, p=[0.6, 0.3, 0.1])
        ]
        columns["region"] = np.asarray(regions, dtype=object)[rng.integers(0, 50, rows)]
        return pd.DataFrame(columns)

    reference, window = frame(False), frame(True)
    reference.to_parquet(folder / "reference.parquet", index=False)
    window.to_parquet(folder / "window.parquet", index=False)

    from mlops_kit.monitoring import files, stats

    files.write_baseline(folder / "baseline", *stats.baseline(pd.read_parquet(folder / "reference.parquet")))
    for old in folder.glob("rows-*"):
        old.unlink()
    stamp.touch()


def _uv() -> list[str] | None:
    for command in ([sys.executable, "-m", "uv"], ["python3", "-m", "uv"], [shutil.which("uv") or "uv"]):
        try:
            subprocess.run([*command, "--version"], check=True, capture_output=True)
            return command
        except (OSError, subprocess.CalledProcessError):
            continue
    return None


def evidently_python() -> tuple[Path | None, str]:
    """The evidently environment's interpreter (made on first use), or None and why not."""
    venv = PEERS / "evidently"
    python = venv / "bin" / "python"
    ready = venv / ".ready"
    if ready.exists() and python.exists():
        return python, ready.read_text().strip()
    uv = _uv()
    if uv is None:
        return None, "uv is not installed (python3 -m pip install uv)"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    try:
        subprocess.run(
            [*uv, "venv", "--quiet", "--python", version, str(venv)], check=True, capture_output=True
        )
        subprocess.run(
            [*uv, "pip", "install", "--quiet", "--python", str(python), *EVIDENTLY_SPEC],
            check=True,
            capture_output=True,
            text=True,
        )
        versions = subprocess.run(
            [str(python), "-c", "import evidently, pandas; print(evidently.__version__, pandas.__version__)"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
    except subprocess.CalledProcessError as exc:
        detail = (exc.stderr or exc.stdout or "").strip().splitlines()[-3:]
        return None, f"installing evidently failed: {' | '.join(detail)}"
    label = f"evidently {versions[0]}, pandas {versions[1]}"
    ready.write_text(label)
    return python, label


def run_contender(name: str, python: Path | str, rows: int, repeats: int, timeout_s: float) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    command = [str(python), str(HERE / "contenders.py"), name, str(DATA), str(repeats)]
    started = time.perf_counter()
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout_s, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        return {"name": name, "error": f"did not finish within {timeout_s:.0f}s"}
    if done.returncode != 0:
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])
        return {"name": name, "error": f"failed (exit {done.returncode}): {tail}"}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall_s"] = time.perf_counter() - started
    return result


def table(results: list[dict], rows: int) -> str:
    kit = next((r for r in results if r["name"] == "kit" and "seconds" in r), None)
    lines = [
        f"| contender ({rows:,} + {rows:,} rows, 20 numeric + 3 categorical) | time (s) | vs kit | peak RSS (MB) |",
        "|---|---:|---:|---:|",
    ]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['name']} | {r['error']} | | |")
            continue
        ratio = f"{r['seconds'] / kit['seconds']:.1f}x" if kit else "-"
        lines.append(f"| {r['name']} | {r['seconds']:.3f} | {ratio} | {r['peak_rss_mb']:.0f} |")
    return "\n".join(lines)


def verdicts(results: list[dict]) -> list[str]:
    by = {r["name"]: r for r in results if "seconds" in r}
    out = []
    kit = by.get("kit")
    if kit is None:
        return ["the kit did not run: no verdict"]
    if "evidently" in by:
        speedup = by["evidently"]["seconds"] / kit["seconds"]
        out.append(
            f"speed-up over evidently: {speedup:.0f}x (target >= {TARGET_SPEEDUP:.0f}x): "
            f"{'met' if speedup >= TARGET_SPEEDUP else 'NOT met'}"
        )
    else:
        out.append("speed-up over evidently: not measured (see the evidently row)")
    out.append(
        f"kit peak RSS: {kit['peak_rss_mb']:.0f} MB (target <= {TARGET_RSS_MB:.0f} MB): "
        f"{'met' if kit['peak_rss_mb'] <= TARGET_RSS_MB else 'NOT met'}"
    )
    if "sort floor" in by:
        ratio = kit["seconds"] / by["sort floor"]["seconds"]
        out.append(
            f"kit vs the sort-bound floor: {ratio:.2f}x (target <= {TARGET_FLOOR_RATIO:.0f}x): "
            f"{'met' if ratio <= TARGET_FLOOR_RATIO else 'NOT met'}"
        )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.monitoring", description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--skip-evidently", action="store_true")
    p.add_argument("--evidently-timeout", type=float, default=3600.0)
    args = p.parse_args(argv)

    print(f"monitoring benchmark: {args.rows:,} + {args.rows:,} rows; preparing data ...", flush=True)
    make_data(args.rows, DATA)
    results = []
    for name in ("sort floor", "kit", "kit (baseline + window)", "plain numpy"):
        print(f"  running {name} ...", flush=True)
        results.append(run_contender(name, sys.executable, args.rows, args.repeats, 1800.0))
    peer_label = "skipped (--skip-evidently)"
    if not args.skip_evidently:
        print("  preparing evidently's environment ...", flush=True)
        python, peer_label = evidently_python()
        if python is None:
            print(f"  EVIDENTLY NOT RUN: {peer_label}", flush=True)
            results.append({"name": "evidently", "error": f"not run: {peer_label}"})
        else:
            print(f"  running evidently ({peer_label}) ...", flush=True)
            results.append(run_contender("evidently", python, args.rows, 1, args.evidently_timeout))
    print()
    print(table(results, args.rows))
    print()
    for line in verdicts(results):
        print(line)
    print(f"(peer: {peer_label}; machine: {os.cpu_count()} cores; each contender in its own process)")
    DATA.mkdir(parents=True, exist_ok=True)
    (DATA / "results.json").write_text(
        json.dumps({"rows": args.rows, "peer": peer_label, "results": results}, indent=2)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
