"""The contenders, each run alone in a fresh process: `python contenders.py NAME DATA_DIR REPEATS`.

Prints one JSON line: the best wall time of the timed part over the repeats, the process's peak RSS
(loading included: that is what the machine must hold), and a digest of the result so the run can check
that every contender saw the same drift. This file imports only numpy and pandas at module level, so
evidently's own environment (pandas 2) can run it too.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM). Not ru_maxrss: Linux carries that across exec from
    the parent, so every child would report at least the parent's peak."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def timed(fn, repeats: int):
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def kit_run(data: Path, repeats: int):
    """The monitoring job: the window against a baseline computed earlier (as the pipeline does)."""
    from mlops_kit.monitoring import checks, files, stats

    window = pd.read_parquet(data / "window.parquet")
    statistics, constraints = files.read_baseline(data / "baseline")

    def go():
        current = stats.profile(window, statistics)
        checks.check(statistics, constraints, current)
        return checks.drift_scores(current)

    return timed(go, repeats)


def kit_full(data: Path, repeats: int):
    """Baseline and window both from raw data, as evidently does."""
    from mlops_kit.monitoring import checks, stats

    reference = pd.read_parquet(data / "reference.parquet")
    window = pd.read_parquet(data / "window.parquet")

    def go():
        statistics, constraints = stats.baseline(reference)
        current = stats.profile(window, statistics)
        checks.check(statistics, constraints, current)
        return checks.drift_scores(current)

    return timed(go, repeats)


def plain_numpy(data: Path, repeats: int):
    """What one writes by hand with numpy: decile PSI with np.histogram, exact KS by sorting both sides,
    PSI over np.unique counts for categories."""
    reference = pd.read_parquet(data / "reference.parquet")
    window = pd.read_parquet(data / "window.parquet")

    def psi(e, a):
        e = np.clip(e / e.sum(), 1e-4, None)
        a = np.clip(a / a.sum(), 1e-4, None)
        return float(np.sum((a - e) * np.log(a / e)))

    def go():
        out = {}
        for column in reference.columns:
            b = reference[column].to_numpy()
            c = window[column].to_numpy()
            if np.issubdtype(b.dtype, np.number):
                edges = np.unique(np.quantile(b, np.linspace(0, 1, 11)))
                edges[0], edges[-1] = -np.inf, np.inf
                eb, _ = np.histogram(b, edges)
                ec, _ = np.histogram(c, edges)
                bs, cs = np.sort(b), np.sort(c)
                points = np.concatenate([bs, cs])
                ks = np.max(
                    np.abs(
                        np.searchsorted(bs, points, "right") / len(bs)
                        - np.searchsorted(cs, points, "right") / len(cs)
                    )
                )
                out[column] = (psi(eb, ec), float(ks))
            else:
                vb, cb = np.unique(b.astype(str), return_counts=True)
                vc, cc = np.unique(c.astype(str), return_counts=True)
                values = np.union1d(vb, vc)
                eb = np.zeros(len(values))
                ec = np.zeros(len(values))
                eb[np.searchsorted(values, vb)] = cb
                ec[np.searchsorted(values, vc)] = cc
                out[column] = (psi(eb, ec), None)
        return {k: v[0] for k, v in out.items()}

    return timed(go, repeats)


def sort_floor(data: Path, repeats: int):
    """The least any exact method must do with a pre-sorted baseline: sort each numeric column of the
    window, and count each categorical one."""
    window = pd.read_parquet(data / "window.parquet")
    numeric = [c for c in window.columns if pd.api.types.is_numeric_dtype(window[c].dtype)]
    text = [c for c in window.columns if c not in numeric]

    def go():
        for column in numeric:
            np.sort(window[column].to_numpy())
        for column in text:
            window[column].value_counts()
        return {}

    return timed(go, repeats)


def evidently(data: Path, repeats: int):
    """evidently's DataDriftPreset over the reference and the window."""
    reference = pd.read_parquet(data / "reference.parquet")
    window = pd.read_parquet(data / "window.parquet")
    try:
        from evidently import Report
        from evidently.presets import DataDriftPreset

        def go():
            snapshot = Report([DataDriftPreset()]).run(current_data=window, reference_data=reference)
            return snapshot.dict()
    except ImportError:  # evidently before 0.7
        from evidently.metric_preset import DataDriftPreset
        from evidently.report import Report

        def go():
            report = Report(metrics=[DataDriftPreset()])
            report.run(reference_data=reference, current_data=window)
            return report.as_dict()

    seconds, result = timed(go, repeats)
    return seconds, {"metrics": len(result.get("metrics", []))}


CONTENDERS = {
    "kit": kit_run,
    "kit (baseline + window)": kit_full,
    "plain numpy": plain_numpy,
    "sort floor": sort_floor,
    "evidently": evidently,
}


if __name__ == "__main__":
    name, folder, count = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    seconds, digest = CONTENDERS[name](folder, count)
    print(json.dumps({"name": name, "seconds": seconds, "peak_rss_mb": peak_rss_mb(), "digest": digest}))
