"""The kit's model monitor: Model-Monitor-format baselines and violations, drift, metrics and reports.

- `stats.baseline(frame)` → (statistics, constraints) of the training data; `files.write_baseline`.
- `run.run(baseline_dir, capture, out_dir, ...)` → one monitoring run over captured requests.
- `report.render(run_dir)` → a self-contained HTML drift report.
- `job.main(argv)` → the SageMaker Processing job's entry point (`python -m mlops_kit.monitoring.job`).

The core (stats, checks, drift, capture, files, quality) needs only numpy and pandas.
"""

from mlops_kit.monitoring.stats import baseline, profile

__all__ = ["baseline", "profile"]
