"""`python -m benchmarks.feature_store [--scale F] [--skip-feast] [--readme]`.

Point-in-time training sets at full size: 1M entity rows against 5M feature records (10 features, 100k
entities), TTL 7 days. Contenders, each in its own process on the same files, in the same run: the kit
(`mlops_kit.features.pit`), a bare DuckDB ASOF join, pandas `merge_asof` (the reference for values), and
Feast 0.67 with its file offline store, installed in its own environment under `benchmarks/.peers/`.
Every contender's values are checked against the reference for every row. `--scale 0.05` is a quick run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.feature_store.data import FEATURES, TTL_HOURS, generate

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PEERS = ROOT / "benchmarks" / ".peers"
FEAST = "feast==0.67.0"
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


def run(name: str, command: list[str], out: Path) -> dict:
    print(f"  {name} ...", flush=True)
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"{name} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["out"] = out
    print(f"  {name}: {result['seconds']:.2f}s, {result['peak_rss_mb']:.0f} MB", flush=True)
    return result


def mismatches(out: Path, reference: pd.DataFrame) -> int:
    """Rows whose 10 values differ from the reference (nulls equal nulls)."""
    got = pd.read_parquet(out)
    if len(got) != len(reference):
        return max(len(got), len(reference))
    a, b = got[FEATURES].to_numpy(), reference[FEATURES].to_numpy()
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    return int((~same.all(axis=1)).sum())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.feature_store")
    parser.add_argument("--scale", type=float, default=1.0, help="1.0: 1M entity rows x 5M feature rows")
    parser.add_argument("--skip-feast", action="store_true", help="leave Feast out (no peer environment)")
    parser.add_argument("--readme", action="store_true", help="write the table into benchmarks/README.md")
    args = parser.parse_args(argv)

    sizes = dict(
        feature_rows=int(5_000_000 * args.scale),
        entity_rows=int(1_000_000 * args.scale),
        entities=max(100, int(100_000 * args.scale)),
    )
    folder = PEERS / "feature_store" / f"scale-{args.scale:g}"
    if not (folder / "entities.parquet").exists():
        print(f"generating {sizes} in {folder}", flush=True)
        generate(folder, **sizes)
    python = sys.executable
    contenders = {
        "pandas merge_asof": [python, "-m", "benchmarks.feature_store.contenders", "merge_asof"],
        "DuckDB ASOF (bare)": [python, "-m", "benchmarks.feature_store.contenders", "duckdb"],
        "mlops-kit": [python, "-m", "benchmarks.feature_store.contenders", "kit"],
    }
    if not args.skip_feast:
        contenders["Feast 0.67 (file store)"] = [str(feast_python()), str(HERE / "feast_runner.py")]
    results = {}
    for name, command in contenders.items():
        out = folder / f"result-{name.split()[0].lower()}.parquet"
        results[name] = run(name, [*command, str(folder), str(out)], out)
    reference = pd.read_parquet(results["pandas merge_asof"]["out"])
    kit = results["mlops-kit"]
    rows = []
    for name, result in results.items():
        rows.append(
            {
                "contender": name,
                "seconds": result["seconds"],
                "peak RSS (MB)": result["peak_rss_mb"],
                "rows returned": result["rows"],
                "rows differing from merge_asof": mismatches(result["out"], reference),
                "ratio": result["seconds"] / kit["seconds"],
            }
        )
    table = _markdown(rows, sizes, args.scale)
    print(table)
    if args.readme:
        _write_readme(table)
    bad = [
        r["contender"]
        for r in rows
        if r["rows differing from merge_asof"] and r["contender"] != "Feast 0.67 (file store)"
    ]
    if bad:
        print(f"values differ from the reference: {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


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
        lines.append(
            f"| {r['contender']} | {r['seconds']:.2f} | {r['peak RSS (MB)']:.0f} | {r['rows returned']:,} | "
            f"{r['rows differing from merge_asof']:,} | {r['ratio']:.2f}× |"
        )
    return "\n".join(lines)


def _write_readme(table: str) -> None:
    section = f"{START}\n## Feature store: point-in-time training sets\n\n`python -m benchmarks.feature_store`\n\n{table}\n{END}"
    text = README.read_text() if README.exists() else "# Benchmarks\n"
    if START in text and END in text:
        before, rest = text.split(START, 1)
        text = before + section + rest.split(END, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    README.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
