"""Deflated and probabilistic Sharpe ratios (Bailey & López de Prado, 2014).

The probability that the true Sharpe exceeds the Sharpe the best of ``N`` skill-less trials would show by chance,
corrected for sample length, skew and fat tails. Conventions (shared with :mod:`.metrics`): Sharpe is
``mean / std(ddof=1)`` per period, rf = 0, and 0 when the std is zero.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps

from ..errors import MaestroError
from ._inputs import count, finite, returns_1d, sharpe

__all__ = ["deflated_sharpe_ratio", "dsr_report", "expected_max_sharpe", "probabilistic_sharpe_ratio"]


def _psr_z(sr: float, benchmark: float, n_obs: int, skew: float, kurtosis: float) -> float:
    den = 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr * sr
    if not den > 0:
        raise MaestroError(
            f"Sharpe standard-error term 1 - skew*SR + (kurt-1)/4*SR^2 = {den:.4g} is not positive "
            f"(SR={sr:.4g}, skew={skew:.4g}, kurtosis={kurtosis:.4g}): pass the non-excess (Pearson) kurtosis "
            "and a per-period (not annualized) Sharpe"
        )
    return (sr - benchmark) * math.sqrt(n_obs - 1) / math.sqrt(den)


def expected_max_sharpe(sr_variance: float, n_trials: int) -> float:
    """SR0: the expected maximum of ``n_trials`` skill-less Sharpe estimates with variance ``sr_variance``.

    ``sqrt(V) * ((1 - γ) Φ⁻¹(1 - 1/N) + γ Φ⁻¹(1 - 1/(N e)))`` (γ: Euler–Mascheroni). With one trial
    nothing was selected, so SR0 = 0 (the formula's Φ⁻¹(0) = -inf is not meaningful) and the DSR is the PSR
    against a zero benchmark.
    """
    v = finite("sr_variance", sr_variance)
    n = count("n_trials", n_trials, 1)
    if v < 0:
        raise MaestroError(f"sr_variance must be >= 0, got {v}: it is the variance of the trials' Sharpe ratios")
    if n == 1 or v == 0:
        return 0.0
    g = float(np.euler_gamma)
    q = (1 - g) * sps.norm.ppf(1 - 1 / n) + g * sps.norm.ppf(1 - 1 / (n * math.e))
    return math.sqrt(v) * float(q)


def probabilistic_sharpe_ratio(
    observed_sr: float, benchmark_sr: float, n_obs: int, skew: float, kurtosis: float
) -> float:
    """P(true SR > benchmark): ``Φ((SR - SR*) sqrt(T-1) / sqrt(1 - skew·SR + (kurt-1)/4·SR²))``.

    SR and SR* per period (not annualized); ``kurtosis`` is Pearson (3 for a normal), not excess.
    """
    sr = finite("observed_sr", observed_sr)
    bench = finite("benchmark_sr", benchmark_sr)
    n = count("n_obs", n_obs, 2)
    z = _psr_z(sr, bench, n, finite("skew", skew), finite("kurtosis", kurtosis))
    return float(sps.norm.cdf(z))


def deflated_sharpe_ratio(
    observed_sr: float, sr_variance: float, n_trials: int, n_obs: int, skew: float, kurtosis: float
) -> float:
    """DSR: the PSR of ``observed_sr`` against SR0 = :func:`expected_max_sharpe` of the ``n_trials`` tried.

    All Sharpe inputs per period (not annualized); ``kurtosis`` Pearson. ``n_trials = 1`` gives SR0 = 0, i.e.
    the plain PSR against zero.
    """
    sr0 = expected_max_sharpe(sr_variance, n_trials)
    return probabilistic_sharpe_ratio(observed_sr, sr0, n_obs, skew, kurtosis)

def dsr_report(oos_daily_returns: np.ndarray, trial_sharpes: np.ndarray, n_trials: int) -> dict:
    """DSR of the stitched OOS returns, deflated by the spread of the ``n_trials`` searched trials' Sharpes.

    ``trial_sharpes``: per-period (daily, not annualized) Sharpe of each trial; NaN entries (pruned trials)
    are ignored. Estimators follow vectorbt 1.2's ``ReturnsAccessor.deflated_sharpe_ratio``: Sharpe with
    ddof=1, ``V = var(trial_sharpes, ddof=1)``, skew and Pearson kurtosis as the biased moment estimators
    (``scipy.stats.skew/kurtosis(bias=True)``), ``T`` = number of OOS returns.
    """
    r = returns_1d("oos_daily_returns", oos_daily_returns, 2)
    n = count("n_trials", n_trials, 1)
    if np.ptp(r) == 0:
        raise MaestroError("oos_daily_returns are constant: skew, kurtosis and the DSR are undefined")
    s = np.asarray(trial_sharpes, dtype=float).ravel()
    if np.isinf(s).any():
        raise MaestroError("trial_sharpes contains inf: a trial with zero volatility has Sharpe 0, not inf")
    s = s[~np.isnan(s)]
    if n > 1 and s.size < 2:
        raise MaestroError(f"n_trials={n} but only {s.size} finite trial Sharpe(s): need >= 2 to estimate V")
    variance = float(np.var(s, ddof=1)) if s.size >= 2 else 0.0
    sr = sharpe(r)
    skew = float(sps.skew(r, bias=True))
    kurt = float(sps.kurtosis(r, fisher=False, bias=True))
    sr0 = expected_max_sharpe(variance, n)
    return {
        "dsr": probabilistic_sharpe_ratio(sr, sr0, r.size, skew, kurt),
        "psr": probabilistic_sharpe_ratio(sr, 0.0, r.size, skew, kurt),
        "sr0": sr0,
        "observed_sr": sr,
        "sr_variance": variance,
        "n_trials": n,
        "n_obs": int(r.size),
        "skew": skew,
        "kurtosis": kurt,
    }

