"""Distribution distances between a baseline and a window: PSI, KS, L-infinity and chi-square.

Pure numpy. Each takes counts or cumulative fractions that the statistics module already computed on
aligned bins, so none of them needs the raw data again.
"""

from __future__ import annotations

import math

import numpy as np

# Proportions below this are clipped before the log in PSI, so an empty bin costs a bounded amount.
PSI_EPSILON = 1e-4
# Two-sample KS critical value factor at the 95% level (Smirnov); `Robust` comparisons use it.
KS_C_ALPHA_95 = 1.358


def psi(expected_counts: np.ndarray, actual_counts: np.ndarray, epsilon: float = PSI_EPSILON) -> float:
    """Population stability index of `actual` against `expected`, over the same bins."""
    expected = np.asarray(expected_counts, dtype=np.float64)
    actual = np.asarray(actual_counts, dtype=np.float64)
    if expected.shape != actual.shape:
        raise ValueError(f"PSI needs the same bins on both sides, got {expected.shape} and {actual.shape}")
    if expected.sum() <= 0 or actual.sum() <= 0:
        raise ValueError("PSI needs at least one value on each side")
    e = np.clip(expected / expected.sum(), epsilon, None)
    a = np.clip(actual / actual.sum(), epsilon, None)
    return float(np.sum((a - e) * np.log(a / e)))


def ks_from_cdf(
    baseline_below: np.ndarray,
    baseline_at_or_below: np.ndarray,
    current_below: np.ndarray,
    current_at_or_below: np.ndarray,
) -> float:
    """The KS distance sup|F_current - F_baseline|, evaluated just below and at each grid value.

    With grid values at the baseline's 1/m quantiles this is within 1/m of the exact two-sample
    statistic: between two grid values the baseline's CDF rises by at most 1/m, and the current CDF is
    monotone, so the supremum cannot hide there by more than that.
    """
    below = np.abs(np.asarray(current_below) - np.asarray(baseline_below))
    at = np.abs(np.asarray(current_at_or_below) - np.asarray(baseline_at_or_below))
    if below.size == 0:
        return 0.0
    return float(max(below.max(), at.max()))


def ks_exceeds(ks: float, n_baseline: int, n_current: int, threshold: float, method: str) -> bool:
    """Model Monitor's comparison methods: `Simple` compares the distance itself with the threshold;
    `Robust` compares its lower 95% confidence bound, so a small window's noise does not count as drift."""
    if method == "Simple":
        return ks > threshold
    if method == "Robust":
        if n_baseline <= 0 or n_current <= 0:
            return False
        margin = KS_C_ALPHA_95 * math.sqrt((n_baseline + n_current) / (n_baseline * n_current))
        return ks - margin > threshold
    raise ValueError(f"unknown comparison_method {method!r}; expected Simple or Robust")


def l_infinity(expected_counts: np.ndarray, actual_counts: np.ndarray) -> float:
    """The largest difference in share of any one category (Model Monitor's `LInfinity`)."""
    expected = np.asarray(expected_counts, dtype=np.float64)
    actual = np.asarray(actual_counts, dtype=np.float64)
    if expected.sum() <= 0 or actual.sum() <= 0:
        raise ValueError("L-infinity needs at least one value on each side")
    return float(np.max(np.abs(expected / expected.sum() - actual / actual.sum())))


def chi_square(expected_counts: np.ndarray, actual_counts: np.ndarray) -> tuple[float, float]:
    """Pearson's chi-square test of homogeneity between the two count vectors: (statistic, p-value).

    Categories empty on both sides are dropped; the p-value comes from the regularized upper
    incomplete gamma function, so no scipy is needed inside the monitoring container.
    """
    table = np.vstack([np.asarray(expected_counts, np.float64), np.asarray(actual_counts, np.float64)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) <= 0).any():
        return 0.0, 1.0
    total = table.sum()
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / total
    statistic = float(np.sum((table - expected) ** 2 / expected))
    dof = table.shape[1] - 1
    return statistic, chi2_sf(statistic, dof)


def chi2_sf(x: float, dof: int) -> float:
    """P(X >= x) for X ~ chi-square(dof)."""
    if x <= 0:
        return 1.0
    return _gamma_q(dof / 2.0, x / 2.0)


def _gamma_q(a: float, x: float) -> float:
    """Regularized upper incomplete gamma Q(a, x) (series below a+1, continued fraction above)."""
    if x < a + 1.0:
        term = total = 1.0 / a
        n = a
        for _ in range(10_000):
            n += 1.0
            term *= x / n
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(-x + a * math.log(x) - math.lgamma(a)))
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return min(1.0, math.exp(-x + a * math.log(x) - math.lgamma(a)) * h)
