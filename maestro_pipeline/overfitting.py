"""Overfitting statistics for a walk-forward search: is the chosen strategy better than the luck of many trials?

* :func:`deflated_sharpe_ratio` / :func:`probabilistic_sharpe_ratio` / :func:`dsr_report` — Bailey & López de
  Prado (2014): the probability that the true Sharpe exceeds the Sharpe the best of ``N`` skill-less trials
  would show by chance, corrected for sample length, skew and fat tails.
* :func:`pbo_cscv` / :func:`pbo_walk_forward` — Bailey, Borwein, López de Prado & Zhu (2015), combinatorially
  symmetric cross-validation: how often the in-sample winner lands in the bottom half out of sample.
* :func:`bootstrap_ci` / :func:`trade_reshuffle_ci` — how wide the Sharpe / max drawdown could plausibly be.
* :func:`parameter_stability` / :func:`plateau_score` — do the chosen parameters wander between splits, and
  does the best one sit on a plateau or a lone spike?

Conventions (shared with :mod:`maestro_pipeline.metrics`): Sharpe is ``mean / std(ddof=1)``, rf = 0, and 0 when
the std is zero; max drawdown is ``min(equity / running_peak - 1)`` with the equity starting at 1 before the
first return (a negative fraction, quantstats); a crypto year has 365 days. Pure numpy/scipy/pandas.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from .errors import MaestroError

__all__ = [
    "PBOResult",
    "bootstrap_ci",
    "deflated_sharpe_ratio",
    "dsr_report",
    "expected_max_sharpe",
    "parameter_stability",
    "pbo_cscv",
    "pbo_walk_forward",
    "plateau_score",
    "probabilistic_sharpe_ratio",
    "trade_reshuffle_ci",
]

#: A variance below this fraction of the mean square is float noise of a constant series: its std counts as 0.
_ZERO_VAR_RTOL = 1e-12
#: Cap on elements per vectorized chunk (bootstrap samples, CSCV combinations), to bound memory.
_CHUNK_ELEMENTS = 2_000_000


# --------------------------------------------------------------------------------------------------------------
# Deflated / probabilistic Sharpe ratio
# --------------------------------------------------------------------------------------------------------------


def _finite(name: str, value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise MaestroError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise MaestroError(f"{name} must be finite, got {v}: compute it from finite returns")
    return v


def _count(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise MaestroError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


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
    v = _finite("sr_variance", sr_variance)
    n = _count("n_trials", n_trials, 1)
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
    sr = _finite("observed_sr", observed_sr)
    bench = _finite("benchmark_sr", benchmark_sr)
    n = _count("n_obs", n_obs, 2)
    z = _psr_z(sr, bench, n, _finite("skew", skew), _finite("kurtosis", kurtosis))
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


def _returns_1d(name: str, values: Any, min_len: int) -> np.ndarray:
    x = np.asarray(values, dtype=float)
    if x.ndim != 1:
        raise MaestroError(f"{name} must be one-dimensional, got shape {x.shape}")
    if x.size < min_len:
        raise MaestroError(f"{name} needs at least {min_len} values, got {x.size}")
    if not np.all(np.isfinite(x)):
        raise MaestroError(f"{name} contains NaN or inf: drop or fill those periods first")
    return x


def _sharpe(x: np.ndarray) -> float:
    """Per-period Sharpe, ddof=1; 0 for a constant series."""
    sd = float(np.std(x, ddof=1))
    if sd * sd <= _ZERO_VAR_RTOL * float(np.mean(x * x)):
        return 0.0
    return float(np.mean(x)) / sd


def dsr_report(oos_daily_returns: np.ndarray, trial_sharpes: np.ndarray, n_trials: int) -> dict:
    """DSR of the stitched OOS returns, deflated by the spread of the ``n_trials`` searched trials' Sharpes.

    ``trial_sharpes``: per-period (daily, not annualized) Sharpe of each trial; NaN entries (pruned trials)
    are ignored. Estimators follow vectorbt 1.2's ``ReturnsAccessor.deflated_sharpe_ratio``: Sharpe with
    ddof=1, ``V = var(trial_sharpes, ddof=1)``, skew and Pearson kurtosis as the biased moment estimators
    (``scipy.stats.skew/kurtosis(bias=True)``), ``T`` = number of OOS returns.
    """
    r = _returns_1d("oos_daily_returns", oos_daily_returns, 2)
    n = _count("n_trials", n_trials, 1)
    if np.ptp(r) == 0:
        raise MaestroError("oos_daily_returns are constant: skew, kurtosis and the DSR are undefined")
    s = np.asarray(trial_sharpes, dtype=float).ravel()
    if np.isinf(s).any():
        raise MaestroError("trial_sharpes contains inf: a trial with zero volatility has Sharpe 0, not inf")
    s = s[~np.isnan(s)]
    if n > 1 and s.size < 2:
        raise MaestroError(f"n_trials={n} but only {s.size} finite trial Sharpe(s): need >= 2 to estimate V")
    variance = float(np.var(s, ddof=1)) if s.size >= 2 else 0.0
    sr = _sharpe(r)
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


# --------------------------------------------------------------------------------------------------------------
# Probability of backtest overfitting (CSCV)
# --------------------------------------------------------------------------------------------------------------

PBO_METRICS = ("sharpe", "mean")


@dataclass(frozen=True)
class PBOResult:
    """CSCV outcome. Arrays have one entry per IS/OOS combination, in ``itertools.combinations`` order."""

    pbo: float  # share of combinations whose IS winner ranks at or below the OOS median (logit <= 0)
    logits: np.ndarray  # λ = ln(ω / (1 - ω)), ω = OOS rank of the IS winner / (N + 1)
    is_metric: np.ndarray  # IS metric of the IS winner
    oos_metric: np.ndarray  # OOS metric of the same trial
    degradation_slope: float  # OLS slope of oos_metric on is_metric (< 0: IS excellence predicts OOS decay)
    degradation_intercept: float
    prob_oos_loss: float  # share of combinations where the IS winner's OOS metric is < 0
    n_blocks: int
    block_size: int
    rows_dropped: int  # oldest rows left out so the blocks are equal
    n_trials: int
    metric: str

    @property
    def n_combinations(self) -> int:
        return int(self.logits.size)

    def summary(self) -> dict:
        """JSON-safe scalars (no per-combination arrays)."""
        return {
            "pbo": self.pbo,
            "logit_median": float(np.median(self.logits)),
            "degradation_slope": self.degradation_slope,
            "degradation_intercept": self.degradation_intercept,
            "prob_oos_loss": self.prob_oos_loss,
            "n_combinations": self.n_combinations,
            "n_blocks": self.n_blocks,
            "block_size": self.block_size,
            "rows_dropped": self.rows_dropped,
            "n_trials": self.n_trials,
            "metric": self.metric,
        }


def _block_metric(sums: np.ndarray, sumsq: np.ndarray, n: int, metric: str) -> np.ndarray:
    mean = sums / n
    if metric == "mean":
        return mean
    var = (sumsq - sums * mean) / (n - 1)
    flat = var <= _ZERO_VAR_RTOL * (sumsq / n)
    with np.errstate(divide="ignore", invalid="ignore"):
        sr = mean / np.sqrt(np.where(flat, 1.0, var))
    return np.where(flat, 0.0, sr)


def pbo_cscv(returns: np.ndarray, n_blocks: int = 16, metric: str = "sharpe") -> PBOResult:
    """Probability of backtest overfitting by combinatorially symmetric cross-validation.

    ``returns``: T rows (periods, oldest first) x N columns (trials). The rows are cut into ``n_blocks`` equal
    contiguous blocks (the oldest ``T mod S`` rows are dropped so the newest are kept); each of the C(S, S/2)
    choices of S/2 blocks is in-sample, its complement out-of-sample. Per combination the IS winner
    (argmax; a tie goes to the lowest column) is ranked among all trials OOS (average rank for ties, as
    ``scipy.stats.rankdata``). Metric: per-period Sharpe (ddof=1, 0 for a flat block set) or ``mean``.
    Block sums and sums of squares are precomputed, so each combination costs one small matrix product.
    """
    x = np.asarray(returns, dtype=float)
    if x.ndim != 2:
        raise MaestroError(f"returns must be a 2-D array (periods x trials), got shape {x.shape}")
    t, n = x.shape
    if metric not in PBO_METRICS:
        raise MaestroError(f"metric {metric!r} is not supported: use one of {', '.join(PBO_METRICS)}")
    s = n_blocks
    if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 2 or s % 2:
        raise MaestroError(f"n_blocks must be an even integer >= 2, got {n_blocks!r}")
    if n < 2:
        raise MaestroError(f"PBO needs at least 2 trials (columns), got {n}")
    if t < s:
        raise MaestroError(f"{t} periods cannot fill {s} blocks: use n_blocks <= {t} (even) or more data")
    if not np.all(np.isfinite(x)):
        raise MaestroError("returns contain NaN or inf: fill missing periods (e.g. 0 when flat) or drop the trial")
    size = t // s
    dropped = t - size * s
    if metric == "sharpe" and size * s // 2 < 2:
        raise MaestroError("each half needs >= 2 periods for a Sharpe ratio: use more data or fewer blocks")
    blocks = x[dropped:].reshape(s, size, n)
    bsum, bsq = blocks.sum(axis=1), (blocks * blocks).sum(axis=1)
    tot_sum, tot_sq = bsum.sum(axis=0), bsq.sum(axis=0)
    half_n = size * s // 2

    combos = np.array(list(itertools.combinations(range(s), s // 2)), dtype=np.intp)
    m = combos.shape[0]
    is_chosen, oos_chosen, ranks = np.empty(m), np.empty(m), np.empty(m)
    step = max(1, _CHUNK_ELEMENTS // n)
    for lo in range(0, m, step):
        c = combos[lo : lo + step]
        ind = np.zeros((c.shape[0], s))
        np.put_along_axis(ind, c, 1.0, axis=1)
        is_sum, is_sq = ind @ bsum, ind @ bsq
        is_m = _block_metric(is_sum, is_sq, half_n, metric)
        oos_m = _block_metric(tot_sum - is_sum, tot_sq - is_sq, half_n, metric)
        best = np.argmax(is_m, axis=1)
        rows = np.arange(c.shape[0])
        chosen = oos_m[rows, best]
        below = (oos_m < chosen[:, None]).sum(axis=1)
        equal = (oos_m == chosen[:, None]).sum(axis=1)
        ranks[lo : lo + step] = below + (equal + 1) / 2.0  # average rank, 1 = worst
        is_chosen[lo : lo + step] = is_m[rows, best]
        oos_chosen[lo : lo + step] = chosen
    omega = ranks / (n + 1)
    logits = np.log(omega / (1 - omega))
    if np.ptp(is_chosen) > 0:
        slope, intercept = np.polyfit(is_chosen, oos_chosen, 1)
    else:  # IS metric identical in every combination: no relation to estimate
        slope, intercept = 0.0, float(np.mean(oos_chosen))
    return PBOResult(
        pbo=float(np.mean(logits <= 0)),
        logits=logits,
        is_metric=is_chosen,
        oos_metric=oos_chosen,
        degradation_slope=float(slope),
        degradation_intercept=float(intercept),
        prob_oos_loss=float(np.mean(oos_chosen < 0)),
        n_blocks=s,
        block_size=size,
        rows_dropped=dropped,
        n_trials=n,
        metric=metric,
    )


TRIAL_DAILY_COLUMNS = ("split", "trial", "day", "return")


def pbo_walk_forward(trial_daily: pd.DataFrame, n_blocks: int = 16) -> dict:
    """CSCV per split of a ledger of per-trial daily train returns (long format: split, trial, day, return).

    Per split, the blocks are ``min(n_blocks, largest even number leaving >= 2 days per block)``. A trial with
    missing days is dropped (CSCV needs one common calendar); a split with < 4 days or < 2 complete trials is
    skipped. Every drop or skip is said in ``notes``. Returns ``{"per_split": [...], "mean_pbo", "notes"}``;
    ``mean_pbo`` is None when no split could be evaluated.
    """
    if not isinstance(trial_daily, pd.DataFrame):
        raise MaestroError(f"trial_daily must be a pandas DataFrame, got {type(trial_daily).__name__}")
    missing = [c for c in TRIAL_DAILY_COLUMNS if c not in trial_daily.columns]
    if missing:
        raise MaestroError(f"trial_daily lacks column(s) {missing}: expected {list(TRIAL_DAILY_COLUMNS)}")
    if isinstance(n_blocks, bool) or not isinstance(n_blocks, (int, np.integer)) or n_blocks < 2 or n_blocks % 2:
        raise MaestroError(f"n_blocks must be an even integer >= 2, got {n_blocks!r}")
    dup = trial_daily.duplicated(["split", "trial", "day"])
    if dup.any():
        row = trial_daily.loc[dup, ["split", "trial", "day"]].iloc[0].to_dict()
        raise MaestroError(f"trial_daily has {int(dup.sum())} duplicate (split, trial, day) rows, e.g. {row}")
    per_split, notes = [], []
    for split, g in trial_daily.groupby("split", sort=True):
        wide = g.pivot(index="day", columns="trial", values="return").sort_index()
        incomplete = wide.columns[wide.isna().any()]
        if len(incomplete):
            notes.append(f"split {split}: dropped {len(incomplete)} trial(s) with missing days: {list(incomplete)}")
            wide = wide.drop(columns=incomplete)
        days, trials = wide.shape
        if trials < 2 or days < 4:
            notes.append(
                f"split {split}: skipped, {days} day(s) x {trials} complete trial(s) "
                "(PBO needs >= 4 days and >= 2 trials)"
            )
            continue
        s = min(int(n_blocks), (days // 2) // 2 * 2)
        res = pbo_cscv(wide.to_numpy(dtype=float), n_blocks=s)
        per_split.append(
            {
                "split": split,
                "pbo": res.pbo,
                "n_blocks": s,
                "n_days": days,
                "n_trials": trials,
                "prob_oos_loss": res.prob_oos_loss,
                "degradation_slope": res.degradation_slope,
            }
        )
    mean = float(np.mean([p["pbo"] for p in per_split])) if per_split else None
    return {"per_split": per_split, "mean_pbo": mean, "notes": notes}


# --------------------------------------------------------------------------------------------------------------
# Bootstrap confidence intervals
# --------------------------------------------------------------------------------------------------------------

BOOTSTRAP_STATS = ("sharpe", "max_drawdown")


def _sharpe_rows(x: np.ndarray, periods_per_year: float) -> np.ndarray:
    mean = x.mean(axis=1)
    sd = x.std(axis=1, ddof=1)
    flat = sd * sd <= _ZERO_VAR_RTOL * (x * x).mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        sr = mean / np.where(flat, 1.0, sd) * math.sqrt(periods_per_year)
    return np.where(flat, 0.0, sr)


def _max_drawdown_rows(x: np.ndarray) -> np.ndarray:
    equity = np.cumprod(1.0 + x, axis=1)
    peak = np.maximum(np.maximum.accumulate(equity, axis=1), 1.0)  # the starting equity 1 is a peak too
    return np.minimum((equity / peak - 1.0).min(axis=1), 0.0)


def _interval(samples: np.ndarray, level: float) -> tuple[float, float]:
    a = (1.0 - level) / 2.0
    low, high = np.quantile(samples, [a, 1.0 - a])
    return float(low), float(high)


def _check_level(level: float) -> float:
    lv = _finite("level", level)
    if not 0 < lv < 1:
        raise MaestroError(f"level must be in (0, 1), e.g. 0.95; got {lv}")
    return lv


def bootstrap_ci(
    returns: np.ndarray,
    stat: str,
    periods_per_year: float = 365,
    n_boot: int = 2000,
    block: int | None = None,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float, float]:
    """Percentile CI of the annualized Sharpe or the max drawdown by stationary bootstrap: ``(low, high, point)``.

    Politis & Romano's stationary bootstrap (circular, geometric block lengths with mean ``block``, default
    ``round(sqrt(T))``) keeps the serial dependence of returns that an i.i.d. resample would destroy;
    ``block=1`` is the i.i.d. bootstrap. ``point`` is the statistic of the original series. Seeded: the same
    inputs give the same interval.
    """
    if stat not in BOOTSTRAP_STATS:
        raise MaestroError(f"stat {stat!r} is not supported: use one of {', '.join(BOOTSTRAP_STATS)}")
    x = _returns_1d("returns", returns, 2)
    t = x.size
    ppy = _finite("periods_per_year", periods_per_year)
    if ppy <= 0:
        raise MaestroError(f"periods_per_year must be > 0 (365 for daily crypto returns), got {ppy}")
    nb = _count("n_boot", n_boot, 1)
    lv = _check_level(level)
    b = max(1, round(math.sqrt(t))) if block is None else _count("block", block, 1)
    if b > t:
        raise MaestroError(f"block={b} is longer than the series ({t} returns): use block <= {t}")
    fn = (lambda a: _sharpe_rows(a, ppy)) if stat == "sharpe" else _max_drawdown_rows
    point = float(fn(x[None, :])[0])
    rng = np.random.default_rng(seed)
    pos = np.arange(t)
    out = np.empty(nb)
    step = max(1, _CHUNK_ELEMENTS // t)
    for lo in range(0, nb, step):
        k = min(step, nb - lo)
        starts = rng.integers(0, t, size=(k, t))
        new = rng.random((k, t)) < 1.0 / b
        new[:, 0] = True
        run_start = np.maximum.accumulate(np.where(new, pos, 0), axis=1)
        idx = (np.take_along_axis(starts, run_start, axis=1) + pos - run_start) % t
        out[lo : lo + k] = fn(x[idx])
    low, high = _interval(out, lv)
    return low, high, point


def trade_reshuffle_ci(
    trade_returns: np.ndarray, n: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float, float]:
    """Percentile CI of the max drawdown of the compounded trade sequence over ``n`` random reorderings.

    The final equity does not depend on the order of the trades, the drawdown does: a narrow interval around
    ``point`` (the drawdown in the order traded) says the path was typical, a ``low`` far below it says a
    worse ordering was as likely. Returns ``(low, high, point)``, negative fractions.
    """
    x = _returns_1d("trade_returns", trade_returns, 1)
    nn = _count("n", n, 1)
    lv = _check_level(level)
    point = float(_max_drawdown_rows(x[None, :])[0])
    rng = np.random.default_rng(seed)
    out = np.empty(nn)
    step = max(1, _CHUNK_ELEMENTS // x.size)
    for lo in range(0, nn, step):
        k = min(step, nn - lo)
        out[lo : lo + k] = _max_drawdown_rows(rng.permuted(np.tile(x, (k, 1)), axis=1))
    low, high = _interval(out, lv)
    return low, high, point


# --------------------------------------------------------------------------------------------------------------
# Parameter stability and plateaus
# --------------------------------------------------------------------------------------------------------------


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _parse_space(space: Mapping[str, Any]) -> dict[str, tuple]:
    """name -> ("num", low, high, log) or ("cat", choices).

    Accepts the strategies' ``IntParam``/``FloatParam``/``Categorical`` (duck-typed), a ``(low, high)`` tuple of
    two numbers (numeric), or any other list/tuple (categorical choices).
    """
    if not isinstance(space, Mapping) or not space:
        raise MaestroError("space must be a non-empty mapping of parameter name -> (low, high) or choices")
    out: dict[str, tuple] = {}
    for name, spec in space.items():
        if hasattr(spec, "choices"):
            out[name] = ("cat", tuple(spec.choices))
        elif hasattr(spec, "low") and hasattr(spec, "high"):
            out[name] = ("num", float(spec.low), float(spec.high), bool(getattr(spec, "log", False)))
        elif isinstance(spec, tuple) and len(spec) == 2 and all(_is_num(v) for v in spec):
            out[name] = ("num", float(spec[0]), float(spec[1]), False)
        elif isinstance(spec, (list, tuple)) and spec:
            out[name] = ("cat", tuple(spec))
        else:
            raise MaestroError(f"space[{name!r}] = {spec!r}: use a (low, high) tuple or a list of choices")
        if out[name][0] == "num":
            _, lo, hi, log = out[name]
            if not lo <= hi or (log and lo <= 0):
                raise MaestroError(f"space[{name!r}] has low={lo} > high={hi} (or a log range not above 0)")
    return out


def _numeric(name: str, params: Mapping[str, Any], where: str) -> float:
    if name not in params:
        raise MaestroError(f"{where} lacks parameter {name!r}: every entry must hold every parameter of space")
    v = params[name]
    if not _is_num(v) or not math.isfinite(float(v)):
        raise MaestroError(f"{where}: parameter {name!r} = {v!r} is not a finite number, but space says numeric")
    return float(v)


def _scale(v: np.ndarray | float, lo: float, hi: float, log: bool) -> tuple[Any, float]:
    """Values and range width on the scale the search used (log10 for log ranges)."""
    if log:
        return np.log10(v), math.log10(hi) - math.log10(lo)
    return v, hi - lo


def parameter_stability(per_split_params: Sequence[Mapping[str, Any]], space: Mapping[str, Any]) -> dict:
    """How much the chosen parameters move between splits, relative to the searched range.

    Numeric: ``std_ratio = std(ddof=0) / (high - low)`` (0 = identical every split; at most 0.5, reached
    when the picks sit half at each end) and ``range_ratio = (max - min) / (high - low)`` (1 = spread over the
    whole range); log ranges are measured in log10. Categorical: ``modal_share`` (1 = same choice every split).
    """
    spec = _parse_space(space)
    splits = list(per_split_params)
    if not splits:
        raise MaestroError("per_split_params is empty: pass the chosen parameters of at least one split")
    out: dict[str, dict] = {}
    for name, sp in spec.items():
        if sp[0] == "num":
            _, lo, hi, log = sp
            raw = np.array([_numeric(name, p, f"split {i}") for i, p in enumerate(splits)])
            v, width = _scale(raw, lo, hi, log)
            std, spread = float(np.std(v)), float(np.ptp(v))
            out[name] = {
                "kind": "numeric",
                "mean": float(np.mean(raw)),
                "std": float(np.std(raw)),
                "std_ratio": std / width if width > 0 else 0.0,
                "range_ratio": spread / width if width > 0 else 0.0,
                "values": raw.tolist(),
            }
        else:
            vals = []
            for i, p in enumerate(splits):
                if name not in p:
                    raise MaestroError(f"split {i} lacks parameter {name!r}: every split must hold every parameter")
                vals.append(p[name])
            mode, count = Counter(vals).most_common(1)[0]
            out[name] = {"kind": "categorical", "mode": mode, "modal_share": count / len(vals), "values": vals}
    return {"n_splits": len(splits), "params": out}


def plateau_score(
    ledger_params: Sequence[Mapping[str, Any]],
    values: np.ndarray,
    best_params: Mapping[str, Any],
    space: Mapping[str, Any],
    radius: float = 0.1,
) -> dict:
    """Does the best trial sit on a plateau? Median value of its neighbours relative to its own value.

    Neighbours: completed trials (finite value) whose every numeric parameter lies within ``radius`` x range
    width of the best (log10 scale for log ranges) and whose categorical parameters are equal, excluding trials
    with exactly the best parameters. ``score = max(0, median(neighbour values) / best value)``: ≈ 1 on a
    plateau, ≪ 1 on a spike. ``score`` is None (with a ``note``) when there are no neighbours or the best value
    is not positive (a ratio to a loss means nothing).
    """
    spec = _parse_space(space)
    params = list(ledger_params)
    vals = np.asarray(values, dtype=float).ravel()
    if len(params) != vals.size:
        raise MaestroError(f"ledger_params has {len(params)} entries but values has {vals.size}: pass one per trial")
    r = _finite("radius", radius)
    if not r > 0:
        raise MaestroError(f"radius must be > 0 (a fraction of each numeric range, e.g. 0.1), got {r}")

    def key(p: Mapping[str, Any], where: str) -> tuple:
        out = []
        for name, sp in spec.items():
            if sp[0] == "num":
                out.append(_numeric(name, p, where))
            elif name not in p:
                raise MaestroError(f"{where} lacks parameter {name!r}: every entry must hold every parameter")
            else:
                out.append(p[name])
        return tuple(out)

    best_key = key(best_params, "best_params")
    best_vals = [v for p, v in zip(params, vals) if np.isfinite(v) and key(p, "ledger trial") == best_key]
    if not best_vals:
        raise MaestroError("best_params is not among the completed ledger trials: pass the ledger it was chosen from")
    best = float(max(best_vals))
    neighbours = []
    for i, (p, v) in enumerate(zip(params, vals)):
        if not np.isfinite(v):
            continue
        k = key(p, f"ledger trial {i}")
        if k == best_key:
            continue
        near = True
        for (name, sp), a, b in zip(spec.items(), k, best_key):
            if sp[0] == "cat":
                near = a == b
            else:
                _, lo, hi, log = sp
                (sa, sb), width = _scale(np.array([a, b]), lo, hi, log)
                near = abs(sa - sb) <= r * width + 1e-12 * max(1.0, abs(width))
            if not near:
                break
        if near:
            neighbours.append(float(v))
    result = {
        "score": None,
        "median_value": None,
        "best_value": best,
        "n_neighbours": len(neighbours),
        "radius": r,
        "note": None,
    }
    if not neighbours:
        result["note"] = f"no completed trial within radius {r} of the best: widen radius or run more trials"
        return result
    med = float(np.median(neighbours))
    result["median_value"] = med
    if best <= 0:
        result["note"] = f"best value {best:.4g} is not positive: a ratio to it would mean nothing"
        return result
    result["score"] = max(0.0, med / best)
    return result
