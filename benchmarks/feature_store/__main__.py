"""`python -m benchmarks.feature_store [--scale F] [--skip-feast] [--readme]`.

Point-in-time training sets at full size: 1M entity rows against 5M feature records (10 features, 100k
entities), TTL 7 days. Contenders, each in its own process on the same files, in the same run: the kit
(`mlops_kit.features.pit`), a bare DuckDB ASOF join, pandas `merge_asof` (the reference for values), and
Feast 0.67 with its file offline store, installed in its own environment under `benchmarks/.peers/`.
Every contender's values are checked against the reference for every row. `--scale 0.02` is a quick run.

Feast is bounded: it is stopped after `--feast-timeout` seconds or once its RSS passes `--feast-memory-gb`
(at full size, idle machine: 438 s, 13.6 GB). If it does not finish, the table says so, and Feast and
the kit run again at `--feast-fallback-scale`, in the same run, so a measured ratio is still reported.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.feature_store.data import FEATURES, TTL_HOURS, generate

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PEERS = ROOT / "benchmarks" / ".peers"
FEAST = "feast==0.67.0"
FEAST_NAME = "Feast 0.67 (file store)"
README = ROOT / "benchmarks" / "README.md"
START, END = "<!-- feature_store:start -->", "<!-- feature_store:end -->"
TARGETS = {"feast_ratio": 50.0, "duckdb_ratio": 1.3, "peak_mb": 1200.0}


def _uv() -> list[str]:
    found = shutil.which("uv")
    return [found] if found else ["python3", "-m", "uv"]


def feast_python() -> Path:
    """The peer environment's Python, created on first use (its own venv; never the project's lock)."""
    venv = PEERS / "feast"
    python = venv / "bin" / "python"
    marker = venv / ".installed"
    if not marker.exists() or marker.read_text() != FEAST:
        subprocess.run([*_uv(), "venv", "--python", "3.11", str(venv)], check=True)
        subprocess.run([*_uv(), "pip", "install", "--python", str(python), FEAST, "pyarrow"], check=True)
        marker.write_text(FEAST)
    return python


def run(
    name: str, command: list[str], out: Path, timeout_s: float | None = None, memory_mb: float | None = None
) -> dict:
    """Run one contender in its own process; a bounded one that overruns is stopped and marked `failed`."""
    print(f"  {name} ...", flush=True)
    marker = Path(f"{out}.started")  # a contender may touch it when its timed part starts
    marker.unlink(missing_ok=True)
    started = time.monotonic()
    peak, failed = 0.0, ""
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(command, cwd=ROOT, stdout=stdout, stderr=stderr, start_new_session=True)
        while process.poll() is None:
            peak = max(peak, _rss_mb(process.pid))
            if timeout_s is not None and time.monotonic() - started > timeout_s:
                failed = f"did not finish in {timeout_s:.0f} s"
            elif memory_mb is not None and peak > memory_mb:
                failed = f"passed the {memory_mb / 1024:.0f} GB memory cap"
            if failed:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                break
            time.sleep(0.25)
        elapsed = time.monotonic() - started
        if marker.exists():  # time spent in the timed part only, as the contenders report it
            elapsed = min(elapsed, time.time() - marker.stat().st_mtime)
        stdout.seek(0)
        stderr.seek(0)
        output, errors = stdout.read().decode(errors="replace"), stderr.read().decode(errors="replace")
    if failed or (process.returncode and timeout_s is not None):
        failed = failed or f"exited with {process.returncode}: {errors.strip().splitlines()[-1:]}"
        print(f"  {name}: {failed} (RSS {peak:.0f} MB when stopped)", flush=True)
        return {"failed": failed, "seconds": elapsed, "peak_rss_mb": peak, "rows": 0, "out": out}
    if process.returncode:
        raise RuntimeError(f"{name} failed ({process.returncode}):\n{errors[-3000:]}")
    result = json.loads(output.strip().splitlines()[-1])
    result["out"] = out
    print(f"  {name}: {result['seconds']:.2f}s, {result['peak_rss_mb']:.0f} MB", flush=True)
    return result


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def mismatches(out: Path, reference: pd.DataFrame) -> int:
    """Rows whose 10 values differ from the reference (nulls equal nulls)."""
    got = pd.read_parquet(out)
    if len(got) != len(reference):
        return max(len(got), len(reference))
    a, b = got[FEATURES].to_numpy(), reference[FEATURES].to_numpy()
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    return int((~same.all(axis=1)).sum())


def sizes_for(scale: float) -> dict[str, int]:
    return dict(
        feature_rows=int(5_000_000 * scale),
        entity_rows=int(1_000_000 * scale),
        entities=max(100, int(100_000 * scale)),
    )


def measure(scale: float, names: list[str], feast_bounds: dict) -> tuple[list[dict], dict]:
    """Run `names` (merge_asof always, as the reference) on the data of `scale`; the table's rows."""
    sizes = sizes_for(scale)
    folder = PEERS / "feature_store" / f"scale-{scale:g}"
    if not (folder / "entities.parquet").exists():
        print(f"generating {sizes} in {folder}", flush=True)
        generate(folder, **sizes)
    python = sys.executable
    commands = {
        "pandas merge_asof": [python, "-m", "benchmarks.feature_store.contenders", "merge_asof"],
        "DuckDB ASOF (bare)": [python, "-m", "benchmarks.feature_store.contenders", "duckdb"],
        "mlops-kit": [python, "-m", "benchmarks.feature_store.contenders", "kit"],
    }
    if FEAST_NAME in names:
        commands[FEAST_NAME] = [str(feast_python()), str(HERE / "feast_runner.py")]
    results = {}
    for name, command in commands.items():
        if name != "pandas merge_asof" and name not in names:
            continue
        out = folder / f"result-{name.split()[0].lower()}.parquet"
        bounds = feast_bounds if name == FEAST_NAME else {}
        results[name] = run(name, [*command, str(folder), str(out)], out, **bounds)
    reference = pd.read_parquet(results["pandas merge_asof"]["out"])
    kit = results["mlops-kit"]
    rows = []
    for name, result in results.items():
        failed = result.get("failed", "")
        rows.append(
            {
                "contender": name,
                "failed": failed,
                "seconds": result["seconds"],
                "peak RSS (MB)": result["peak_rss_mb"],
                "rows returned": result["rows"],
                "rows differing from merge_asof": None if failed else mismatches(result["out"], reference),
                "ratio": result["seconds"] / kit["seconds"],
            }
        )
    return rows, sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.feature_store")
    parser.add_argument("--scale", type=float, default=1.0, help="1.0: 1M entity rows x 5M feature rows")
    parser.add_argument("--skip-feast", action="store_true", help="leave Feast out (no peer environment)")
    parser.add_argument("--feast-timeout", type=float, default=900.0, help="seconds before Feast is stopped")
    parser.add_argument("--feast-memory-gb", type=float, default=16.0, help="RSS at which Feast is stopped")
    parser.add_argument(
        "--feast-fallback-scale", type=float, default=0.2, help="where Feast runs again if it does not finish"
    )
    parser.add_argument("--readme", action="store_true", help="write the table into benchmarks/README.md")
    args = parser.parse_args(argv)

    bounds = {"timeout_s": args.feast_timeout, "memory_mb": args.feast_memory_gb * 1024}
    names = ["DuckDB ASOF (bare)", "mlops-kit"] + ([] if args.skip_feast else [FEAST_NAME])
    rows, sizes = measure(args.scale, names, bounds)
    tables = [_markdown(rows, sizes, args.scale)]
    feast = next((r for r in rows if r["contender"] == FEAST_NAME), None)
    fallback: list[dict] = []
    if feast is not None and feast["failed"] and args.feast_fallback_scale < args.scale:
        print(f"Feast did not finish at scale {args.scale:g}; both again at {args.feast_fallback_scale:g}")
        fallback, small = measure(args.feast_fallback_scale, ["mlops-kit", FEAST_NAME], bounds)
        tables.append(_markdown(fallback, small, args.feast_fallback_scale))
    tables.append(verdict(rows, fallback, args.scale))
    table = "\n\n".join(tables)
    print(table)
    if args.readme:
        _write_readme(table)
    bad = [
        r["contender"]
        for r in rows + fallback
        if r["rows differing from merge_asof"] and r["contender"] != FEAST_NAME
    ]
    if bad:
        print(f"values differ from the reference: {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


def verdict(rows: list[dict], fallback: list[dict], scale: float) -> str:
    """The issue's targets against this run; Feast's ratio from the fallback scale if it finished only there."""
    by_name = {r["contender"]: r for r in rows}
    kit, duck = by_name["mlops-kit"], by_name.get("DuckDB ASOF (bare)")
    parts = []
    feast, small = by_name.get(FEAST_NAME), {r["contender"]: r for r in fallback}.get(FEAST_NAME)
    target = f"target ≥ {TARGETS['feast_ratio']:.0f}×"
    if feast is not None and not feast["failed"]:
        parts.append(f"Feast / kit {feast['ratio']:.1f}× ({target})")
    elif feast is not None:
        parts.append(f"Feast did not finish, so Feast / kit > {feast['ratio']:.0f}× ({target})")
        if small is not None and not small["failed"]:
            parts.append(f"at the fallback scale Feast / kit {small['ratio']:.1f}×")
    if duck is not None:
        parts.append(
            f"kit / bare DuckDB {kit['seconds'] / duck['seconds']:.2f}× (target ≤ {TARGETS['duckdb_ratio']}×)"
        )
    parts.append(f"kit peak {kit['peak RSS (MB)']:.0f} MB (target ≤ {TARGETS['peak_mb']:.0f} MB)")
    parts.append(f"kit rows differing from merge_asof {kit['rows differing from merge_asof']:,}")
    return f"Targets at scale {scale:g}: " + "; ".join(parts) + "."


def _markdown(rows: list[dict], sizes: dict, scale: float) -> str:
    lines = [
        f"Point-in-time training set: {sizes['entity_rows']:,} entity rows against {sizes['feature_rows']:,} feature "
        f"records ({len(FEATURES)} features, {sizes['entities']:,} entities), TTL {TTL_HOURS} h, scale {scale:g}. "
        f"Measured {datetime.date.today()} on {platform.machine()}, one process per contender, same run.",
        "",
        "| contender | seconds | peak RSS (MB) | rows returned | rows differing from merge_asof | time / kit's |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if r["failed"]:
            lines.append(
                f"| {r['contender']} | **{r['failed']}** | {r['peak RSS (MB)']:.0f} when stopped | - | - | "
                f"> {r['ratio']:.0f}× |"
            )
            continue
        lines.append(
            f"| {r['contender']} | {r['seconds']:.2f} | {r['peak RSS (MB)']:.0f} | {r['rows returned']:,} | "
            f"{r['rows differing from merge_asof']:,} | {r['ratio']:.2f}× |"
        )
    return "\n".join(lines)


ABOUT = """The point-in-time training set of issue 5: for each entity row, the latest of its customer's
feature records at or before its time and within the TTL (7 days), every entity row kept. Each contender
runs alone in a fresh process on the same Parquet files (generated, seeded); seconds are from reading the
files to having the training set in memory, peak RSS is the process's high-water mark (`ru_maxrss`),
reading the entity rows included. Every contender's 10 values are compared with the reference on every row.

- **mlops-kit**: `mlops_kit.features.pit.point_in_time` over an Arrow dataset of the records, as
  `features.training_set` hands it the offline store's files: a DuckDB ASOF join on keys and times only
  (DuckDB reads just those Parquet columns), then only the chosen records' features, by position, one row
  group at a time. It also does what the peers here skip: it parses the offline store's ISO-8601 event
  times, breaks ties on event time by the latest `write_time`, and honours `is_deleted`.
- **DuckDB ASOF (bare)**: one `ASOF LEFT JOIN` over `read_parquet`, all columns, on a ready timestamp column.
- **pandas merge_asof**: `merge_asof(by=customer_id, tolerance=TTL)`, the reference for values.
- **Feast 0.67 (file store)**: `get_historical_features` with the file offline store, in its own
  environment (`benchmarks/.peers/feast`, made by the script with uv). Bounded: stopped after
  `--feast-timeout` seconds or past `--feast-memory-gb` of RSS; if it does not finish, Feast and the kit
  run again at `--feast-fallback-scale` in the same run."""


def _write_readme(table: str) -> None:
    section = (
        f"{START}\n## Feature store: point-in-time training sets (`python -m benchmarks.feature_store`)\n\n"
        f"{ABOUT}\n\n{table}\n{END}"
    )
    text = README.read_text() if README.exists() else "# Benchmarks\n"
    if START in text and END in text:
        before, rest = text.split(START, 1)
        text = before + section + rest.split(END, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    README.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
