"""Probability of Backtest Overfitting by combinatorially symmetric cross-validation (Bailey, Borwein, López de
Prado & Zhu, 2015): how often the in-sample winner among the trials lands in the bottom half out of sample."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numba import njit

from ..errors import MaestroError
from ._inputs import ZERO_VAR_RTOL

__all__ = ["PBO_METRICS", "TIE_RTOL", "TRIAL_DAILY_COLUMNS", "PBOResult", "pbo_cscv", "pbo_walk_forward"]

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


#: Two metrics whose difference is within this fraction of their size (+ the metric's scale) are a tie. Trials that
#: differ only in position size have the same Sharpe, and trials that trade alike on some blocks the same sums;
#: computed by different float paths such values differ in the last bits, so exact comparison would let rounding
#: (library, CPU) decide the IS winner and the OOS rank. No real difference between trials is this small.
TIE_RTOL = 1e-9


@njit(cache=True)
def _metric_nb(total, sq, n, sharpe):
    mean = total / n
    if not sharpe:
        return mean
    var = (sq - total * mean) / (n - 1)
    if var <= ZERO_VAR_RTOL * (sq / n):  # a flat block set: its Sharpe is 0
        return 0.0
    return mean / math.sqrt(var)


@njit(cache=True)
def _tie_nb(a, b, scale):
    return abs(a - b) <= TIE_RTOL * (max(abs(a), abs(b)) + scale)


@njit(cache=True)
def _cscv_nb(bsum, bsq, combos, half_n, sharpe, scale):
    """Per combination: the IS winner's IS metric, its OOS metric and its OOS rank (1 = worst; ties averaged).

    ``bsum``/``bsq``: trials x blocks sums and sums of squares. Every trial's IS and OOS sums are added block by
    block in block order (never ``total - IS``), so trials equal on a block set get bit-equal sums."""
    n, s = bsum.shape
    m, h = combos.shape
    is_chosen, oos_chosen, ranks = np.empty(m), np.empty(m), np.empty(m)
    in_is = np.zeros(s, dtype=np.bool_)
    is_m, oos_m = np.empty(n), np.empty(n)
    for c in range(m):
        in_is[:] = False
        for k in range(h):
            in_is[combos[c, k]] = True
        for j in range(n):
            a = q = oa = oq = 0.0
            for b in range(s):
                if in_is[b]:
                    a += bsum[j, b]
                    q += bsq[j, b]
                else:
                    oa += bsum[j, b]
                    oq += bsq[j, b]
            is_m[j] = _metric_nb(a, q, half_n, sharpe)
            oos_m[j] = _metric_nb(oa, oq, half_n, sharpe)
        top = is_m.max()
        best = 0
        while not _tie_nb(is_m[best], top, scale):  # the lowest column tied with the maximum
            best += 1
        chosen = oos_m[best]
        below = equal = 0
        for j in range(n):
            if _tie_nb(oos_m[j], chosen, scale):
                equal += 1
            elif oos_m[j] < chosen:
                below += 1
        ranks[c] = below + (equal + 1) / 2.0  # average rank, 1 = worst
        is_chosen[c], oos_chosen[c] = is_m[best], chosen
    return is_chosen, oos_chosen, ranks


def pbo_cscv(returns: np.ndarray, n_blocks: int = 16, metric: str = "sharpe") -> PBOResult:
    """Probability of backtest overfitting by combinatorially symmetric cross-validation.

    ``returns``: T rows (periods, oldest first) x N columns (trials). The rows are cut into ``n_blocks`` equal
    contiguous blocks (the oldest ``T mod S`` rows are dropped so the newest are kept); each of the C(S, S/2)
    choices of S/2 blocks is in-sample, its complement out-of-sample. Per combination the IS winner
    (argmax; a tie goes to the lowest column) is ranked among all trials OOS (average rank for ties, as
    ``scipy.stats.rankdata``). Metric: per-period Sharpe (ddof=1, 0 for a flat block set) or ``mean``. Metrics
    within :data:`TIE_RTOL` of each other tie (relative to their size plus the metric's scale: 1 for a Sharpe,
    the mean absolute return for a mean), so float rounding never decides a rank.
    Block sums and sums of squares are precomputed; one compiled pass per combination does the rest.
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
    bsum = np.ascontiguousarray(blocks.sum(axis=1).T)
    bsq = np.ascontiguousarray((blocks * blocks).sum(axis=1).T)
    combos = np.array(list(itertools.combinations(range(s), s // 2)), dtype=np.int64)
    scale = 1.0 if metric == "sharpe" else float(np.mean(np.abs(x[dropped:])))
    is_chosen, oos_chosen, ranks = _cscv_nb(bsum, bsq, combos, size * s // 2, metric == "sharpe", scale)
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

