"""The distances: PSI, KS from the baseline's CDF grid, L-infinity and chi-square."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops_kit.monitoring import drift, stats


def exact_ks(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.sort(a), np.sort(b)
    points = np.concatenate([a, b])
    fa = np.searchsorted(a, points, side="right") / len(a)
    fb = np.searchsorted(b, points, side="right") / len(b)
    return float(np.max(np.abs(fa - fb)))


def test_psi_is_zero_for_the_same_shares_and_matches_the_formula():
    assert drift.psi([10, 20, 70], [1, 2, 7]) == pytest.approx(0.0)
    e, a = np.array([0.5, 0.5]), np.array([0.25, 0.75])
    assert drift.psi([50, 50], [25, 75]) == pytest.approx(np.sum((a - e) * np.log(a / e)))


def test_psi_refuses_unaligned_or_empty_bins():
    with pytest.raises(ValueError, match="same bins"):
        drift.psi([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="at least one value"):
        drift.psi([0, 0], [1, 1])


@pytest.mark.parametrize("kind", ["continuous", "discrete"])
def test_ks_from_the_baseline_grid_is_within_one_grid_step_of_the_exact_statistic(kind):
    rng = np.random.default_rng(5)
    if kind == "continuous":
        base, window = rng.lognormal(3, 0.6, 50_000), rng.lognormal(3.1, 0.7, 7_000)
    else:
        base, window = rng.integers(0, 24, 50_000), rng.integers(0, 20, 7_000)
    statistics, _ = stats.baseline(pd.DataFrame({"x": base}))
    measured = stats.profile(pd.DataFrame({"x": window}), statistics)["features"][0]["mlops_kit"]["drift"]
    assert measured["ks"] == pytest.approx(exact_ks(base, window), abs=1.0 / stats.CDF_GRID + 1e-12)


def test_ks_exceeds_robust_discounts_small_samples_simple_does_not():
    assert drift.ks_exceeds(0.15, 100_000, 50, 0.1, "Simple")
    assert not drift.ks_exceeds(0.15, 100_000, 50, 0.1, "Robust")
    assert drift.ks_exceeds(0.15, 100_000, 100_000, 0.1, "Robust")
    with pytest.raises(ValueError, match="comparison_method"):
        drift.ks_exceeds(0.1, 1, 1, 0.1, "Fancy")


def test_l_infinity_is_the_largest_share_difference():
    assert drift.l_infinity([50, 30, 20], [40, 30, 30]) == pytest.approx(0.1)


@pytest.mark.parametrize(("x", "dof", "p"), [(3.841459, 1, 0.05), (18.307038, 10, 0.05), (1.0, 3, 0.801252)])
def test_chi_square_p_values_match_the_tables(x, dof, p):
    assert drift.chi2_sf(x, dof) == pytest.approx(p, rel=1e-5)


def test_chi_square_detects_a_shifted_mix_and_not_the_same_mix():
    same = drift.chi_square([500, 300, 200], [250, 150, 100])
    shifted = drift.chi_square([500, 300, 200], [150, 150, 200])
    assert same[0] == pytest.approx(0.0) and same[1] == pytest.approx(1.0)
    assert shifted[1] < 1e-6
