"""Market regimes from a Gaussian HMM on daily return/volatility features, fitted only on past data.

Re-optimization should follow the market, not only the calendar: when the regime of the newest days differs
from the regime the last test window was researched in, the parameters chosen there may no longer fit.

Causality is the point of this module. The model is fitted on whole days before ``fit_end_ms``; features are
standardized with the fit window's mean/std; and regimes are read with a hand-written *forward filter*, so the
regime of day ``d`` uses days ``<= d`` only. hmmlearn's ``predict``/``predict_proba`` (Viterbi, forward-backward
smoothing) read the future and are never used for labels. Regimes are numbered by ascending volatility
(0 = calm, n-1 = volatile), so labels do not depend on the order EM happened to find the states in.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from ..errors import MaestroError
from ..timeframes import DAY_MS

#: A per-bar volatility floor, so a flat run (zero std) gives a finite log-volatility.
_VOL_FLOOR = 1e-8
_FEATURES = ("log_return", "log_realized_vol")


@dataclass(frozen=True, eq=False)  # arrays inside: compare models by their fields (or as_dict), not with ==
class RegimeModel:
    """A fitted HMM in canonical state order (0 = calmest) plus what is needed to reproduce and record it."""

    startprob: np.ndarray  # (n,)
    transmat: np.ndarray  # (n, n)
    means: np.ndarray  # (n, 2), standardized feature space
    variances: np.ndarray  # (n, 2), diagonal covariances
    feature_mean: np.ndarray  # (2,), fit window only
    feature_std: np.ndarray  # (2,), fit window only
    n_regimes: int
    seed: int
    vol_window: int
    fit_start_ms: int  # first fitted day (inclusive)
    fit_end_ms: int  # exclusive end of the fitted days (a day boundary <= the requested fit_end_ms)
    n_days: int
    converged: bool
    n_iter: int
    log_likelihood: float
    hmm: Any = field(repr=False, compare=False)  # the hmmlearn GaussianHMM, states permuted to canonical order

    @property
    def expected_durations(self) -> np.ndarray:
        """Expected days a regime lasts once entered, ``1 / (1 - transmat[k, k])``; short means noise, not a regime."""
        with np.errstate(divide="ignore"):
            return 1.0 / (1.0 - np.diag(self.transmat))

    def as_dict(self) -> dict[str, Any]:
        """Scalar metadata for research records (seed, window, convergence, per-regime volatility level)."""
        vol = self.feature_mean[1] + self.feature_std[1] * self.means[:, 1]
        return {
            "n_regimes": self.n_regimes, "seed": self.seed, "vol_window": self.vol_window,
            "fit_start_ms": self.fit_start_ms, "fit_end_ms": self.fit_end_ms, "n_days": self.n_days,
            "converged": self.converged, "n_iter": self.n_iter, "log_likelihood": self.log_likelihood,
            "features": list(_FEATURES),
            "regime_bar_vol": [float(np.exp(v)) for v in vol],  # typical per-bar volatility of each regime
            "regime_expected_days": [float(d) for d in self.expected_durations],
        }


@dataclass(frozen=True)
class RegimeShift:
    """The newest days left the reference window's dominant regime."""

    from_regime: int
    to_regime: int
    first_day_ms: int  # first day of the run of confident ``to_regime`` days ending at the newest day
    last_day_ms: int  # the newest day
    reference_share: float  # mean filtered probability of ``from_regime`` over the reference window
    min_prob: float  # lowest filtered probability of ``to_regime`` over the confirming days

    def describe(self) -> str:
        day = datetime.fromtimestamp(self.first_day_ms / 1000, tz=UTC).date().isoformat()
        return (f"regime {self.from_regime} -> {self.to_regime} since {day} "
                f"(filtered p >= {self.min_prob:.2f}; reference share {self.reference_share:.2f})")


# --------------------------------------------------------------------------------------------- features

def _as_series(timestamps_ms, close) -> tuple[np.ndarray, np.ndarray]:
    ts = np.asarray(timestamps_ms)
    px = np.asarray(close, dtype=float)
    if ts.ndim != 1 or px.ndim != 1 or len(ts) != len(px):
        raise MaestroError(f"regimes: timestamps ({ts.shape}) and close ({px.shape}) must be 1-D and the same length")
    if len(ts) and not np.issubdtype(ts.dtype, np.integer):
        raise MaestroError(f"regimes: timestamps must be integer milliseconds (UTC), got dtype {ts.dtype}")
    ts = ts.astype(np.int64)
    if len(ts) > 1 and np.any(np.diff(ts) <= 0):
        raise MaestroError("regimes: timestamps must be strictly increasing; sort the bars and drop duplicates")
    if not np.all(np.isfinite(px)) or np.any(px <= 0):
        raise MaestroError("regimes: close prices must be finite and > 0; validate the bars first")
    return ts, px


def daily_features(timestamps_ms, close, vol_window: int = 24) -> pd.DataFrame:
    """Per UTC day: the day's log return and the log of the trailing ``vol_window``-bar realized volatility.

    Volatility is the sample std of per-bar log returns over the last ``vol_window`` bars ending at the day's last
    bar (24 for 1h = that day's intraday returns; e.g. 20 for 1d bars). Its log is used because volatility is
    skewed and a Gaussian emission fits its log far better. A day's features use bars up to that day only. The
    first day (no previous close) and days before the window fills are dropped.

    This is the one pass over the bars: everything after it (fits, filters, shifts, split labels) works on the
    daily rows. Volatility is computed only at each day's last bar, a chunk of days at a time: memory is a few
    floats per bar read, never ``bars x vol_window`` (a rolling std at every 1m bar is 1,440 floats per bar).
    """
    if not isinstance(vol_window, (int, np.integer)) or vol_window < 2:
        raise MaestroError(f"regimes: vol_window must be an integer >= 2 bars, got {vol_window!r}")
    ts, px = _as_series(timestamps_ms, close)
    empty = pd.DataFrame({"day": np.array([], dtype=np.int64), "log_return": [], "log_realized_vol": []})
    if len(ts) <= vol_window:
        return empty
    r = np.diff(np.log(px))  # r[i] is the return of bar i+1
    day = ts // DAY_MS * DAY_MS
    starts = np.flatnonzero(np.concatenate([[True], day[1:] != day[:-1]]))
    last = np.concatenate([starts[1:], [len(ts)]]) - 1
    day_ret = np.add.reduceat(np.concatenate([[0.0], r]), starts)
    day_vol = _window_std_at(r, last, vol_window)
    keep = np.isfinite(day_vol)
    keep[0] = False  # the first day's return misses the move from the previous close
    return pd.DataFrame({
        "day": day[starts][keep],
        "log_return": day_ret[keep],
        "log_realized_vol": np.log(np.maximum(day_vol[keep], _VOL_FLOOR)),
    })


#: Floats of volatility windows materialized at once (512 KB): 45 days of 1m bars, 2,730 days of 1h bars.
_STD_CHUNK_FLOATS = 1 << 16


def _window_std_at(r: np.ndarray, last: np.ndarray, window: int) -> np.ndarray:
    """Sample std (ddof 1) of ``r[i - window : i]`` for each bar index ``i`` in ``last`` (NaN where ``i < window``):
    the volatility of the ``window`` returns ending at bar ``i``, computed only where it is read."""
    out = np.full(len(last), np.nan)
    ok = np.flatnonzero(last >= window)
    view = np.lib.stride_tricks.sliding_window_view(r, window)  # a view: no copy
    step = max(1, _STD_CHUNK_FLOATS // window)
    for a in range(0, len(ok), step):
        rows = ok[a:a + step]
        out[rows] = view[last[rows] - window].std(axis=-1, ddof=1)
    return out


# --------------------------------------------------------------------------------------------- fitting

def fit_regimes(timestamps_ms, close, fit_end_ms: int, n_regimes: int = 2, seed: int = 0, min_days: int = 60,
                *, vol_window: int = 24, n_iter: int = 200, tol: float = 1e-4) -> RegimeModel:
    """Fit a ``GaussianHMM`` (diagonal covariances) on the whole UTC days that end at or before ``fit_end_ms``.

    Bars at or after the day boundary ``floor(fit_end_ms / 1 day)`` are not read at all, so nothing from the
    future can shape the model. The start distribution is held uniform (not learned): a start probability learned
    from a single sequence is degenerate (all mass on its first day's state), and filtering may begin on any day.
    """
    ts, px = _as_series(timestamps_ms, close)
    cut = int(fit_end_ms) // DAY_MS * DAY_MS
    return fit_daily(daily_features(ts[ts < cut], px[ts < cut], vol_window), fit_end_ms, n_regimes, seed, min_days,
                     vol_window=vol_window, n_iter=n_iter, tol=tol)


def fit_daily(features: pd.DataFrame, fit_end_ms: int, n_regimes: int = 2, seed: int = 0, min_days: int = 60,
              *, vol_window: int = 24, n_iter: int = 200, tol: float = 1e-4) -> RegimeModel:
    """``fit_regimes`` on daily rows already computed by ``daily_features`` (with this ``vol_window``): only the
    days before the day boundary ``floor(fit_end_ms / 1 day)`` are used. A day's row depends on bars up to that
    day only, so the rows of a longer history are the rows of the truncated one: compute the features once and
    fit as many models as there are splits."""
    from hmmlearn.hmm import GaussianHMM  # heavy import (sklearn), only when fitting

    if not isinstance(n_regimes, (int, np.integer)) or n_regimes < 2:
        raise MaestroError(f"regimes: n_regimes must be an integer >= 2, got {n_regimes!r}")
    if min_days < 5 * n_regimes:
        raise MaestroError(
            f"regimes: min_days={min_days} is too few to fit {n_regimes} regimes; use >= {5 * n_regimes}")
    cut = int(fit_end_ms) // DAY_MS * DAY_MS
    feats = features[features["day"].to_numpy() < cut]
    if len(feats) < min_days:
        raise MaestroError(f"regimes: only {len(feats)} usable days before fit_end_ms={fit_end_ms} "
                           f"(need min_days={min_days}); fit later or on a longer history")
    x = feats[list(_FEATURES)].to_numpy()
    mu, sd = x.mean(axis=0), x.std(axis=0)
    if np.any(sd <= 0):
        raise MaestroError("regimes: daily features are constant over the fit window (flat prices?); nothing to fit")
    z = (x - mu) / sd

    hmm = GaussianHMM(n_components=n_regimes, covariance_type="diag", random_state=seed, n_iter=n_iter, tol=tol,
                      params="tmc", init_params="tmc")
    hmm.startprob_ = np.full(n_regimes, 1.0 / n_regimes)
    quiet = logging.getLogger("hmmlearn.base")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # EM's "not converging" chatter on tiny likelihood wobbles; we record convergence
    try:
        hmm.fit(z)
    finally:
        quiet.setLevel(level)
    history = list(hmm.monitor_.history)
    # hmmlearn's monitor_.converged is also True when n_iter ran out; record whether the tolerance was reached.
    converged = len(history) >= 2 and history[-1] - history[-2] < tol

    variances = np.array([np.diag(c) for c in hmm.covars_])
    order = np.argsort(hmm.means_[:, 1], kind="stable")  # ascending volatility: 0 = calm
    canon = copy.deepcopy(hmm)
    canon.startprob_ = hmm.startprob_[order]
    canon.transmat_ = hmm.transmat_[np.ix_(order, order)]
    canon.means_ = hmm.means_[order]
    canon.covars_ = variances[order]
    return RegimeModel(
        startprob=canon.startprob_.copy(), transmat=canon.transmat_.copy(), means=canon.means_.copy(),
        variances=variances[order].copy(), feature_mean=mu, feature_std=sd, n_regimes=int(n_regimes),
        seed=int(seed), vol_window=int(vol_window), fit_start_ms=int(feats["day"].iloc[0]), fit_end_ms=cut,
        n_days=len(feats), converged=bool(converged), n_iter=len(history),
        log_likelihood=float(canon.score(z)), hmm=canon,
    )


# --------------------------------------------------------------------------------------------- filtering

def _log_emissions(model: RegimeModel, z: np.ndarray) -> np.ndarray:
    var = model.variances
    return -0.5 * (z.shape[1] * np.log(2 * np.pi) + np.log(var).sum(axis=1)
                   + (((z[:, None, :] - model.means[None]) ** 2) / var[None]).sum(axis=2))


def forward_filter(model: RegimeModel, z: np.ndarray) -> np.ndarray:
    """P(regime_t | z_1..z_t) for each t: alpha_t ∝ (alpha_{t-1} @ transmat) * emission_t.

    The prediction step is in probabilities (alpha is normalized, so it cannot underflow as a whole); the update
    adds log-emissions and normalizes by the max, so extreme days (emission ~ 1e-300) stay exact.
    """
    log_b = _log_emissions(model, z)
    out = np.empty_like(log_b)
    pred = model.startprob
    with np.errstate(divide="ignore"):
        for t in range(len(z)):
            if t:
                pred = out[t - 1] @ model.transmat
            log_alpha = np.log(pred) + log_b[t]
            alpha = np.exp(log_alpha - log_alpha.max())
            out[t] = alpha / alpha.sum()
    return out


def filtered_regimes(model: RegimeModel, timestamps_ms, close) -> pd.DataFrame:
    """Causal regime per day: columns ``day`` (ms, UTC midnight), ``regime`` (argmax) and ``p_0..p_{n-1}``.

    The filter starts at the first usable day of the bars given; pass the history from the fit start on.
    """
    return filter_daily(model, daily_features(timestamps_ms, close, model.vol_window))


def filter_daily(model: RegimeModel, features: pd.DataFrame) -> pd.DataFrame:
    """``filtered_regimes`` on daily rows from ``daily_features`` (computed with the model's ``vol_window``)."""
    z = (features[list(_FEATURES)].to_numpy() - model.feature_mean) / model.feature_std
    probs = forward_filter(model, z) if len(z) else np.empty((0, model.n_regimes))
    out = pd.DataFrame({"day": features["day"].to_numpy(), "regime": probs.argmax(axis=1).astype(np.int64)})
    for k in range(model.n_regimes):
        out[f"p_{k}"] = probs[:, k]
    return out


def _dominant(frame: pd.DataFrame, n: int) -> tuple[int, float]:
    share = frame[[f"p_{k}" for k in range(n)]].to_numpy().mean(axis=0)
    k = int(share.argmax())
    return k, float(share[k])


def regime_shift(model: RegimeModel, timestamps_ms, close, since_ms: int, min_prob: float = 0.8,
                 min_days: int = 3, *, min_duration_days: float = 10.0) -> RegimeShift | None:
    """Has the regime changed since the reference window that starts at ``since_ms``?

    Reference = the days from ``since_ms`` up to (not including) the newest ``min_days`` days; its dominant regime
    has the highest mean filtered probability. A shift = each of the newest ``min_days`` days is in one and the
    same other regime with filtered probability >= ``min_prob``. Returns None otherwise.

    Both regimes must also persist: expected duration ``1 / (1 - transmat[k, k]) >= min_duration_days``. An HMM
    fitted on a market with a single regime still splits it in two, but into states that flicker day to day
    (self-transition ~0.1-0.8); without this guard a few noisy days would trigger a re-optimization.
    """
    return shift_in(model, filtered_regimes(model, timestamps_ms, close), since_ms, min_prob, min_days,
                    min_duration_days=min_duration_days)


def shift_in(model: RegimeModel, filtered: pd.DataFrame, since_ms: int, min_prob: float = 0.8, min_days: int = 3,
             *, min_duration_days: float = 10.0) -> RegimeShift | None:
    """``regime_shift`` on the filtered days of ``filter_daily`` (the newest row is the newest day)."""
    if not 0.5 <= min_prob < 1:
        raise MaestroError(f"regimes: min_prob must be in [0.5, 1), got {min_prob!r}")
    if not isinstance(min_days, (int, np.integer)) or min_days < 1:
        raise MaestroError(f"regimes: min_days must be an integer >= 1, got {min_days!r}")
    f = filtered[filtered["day"] >= since_ms].reset_index(drop=True)
    if len(f) <= min_days:
        raise MaestroError(f"regimes: {len(f)} usable days since since_ms={since_ms}; need more than "
                           f"min_days={min_days} (a reference window plus the newest days) - pass an earlier since_ms")
    ref, new = f.iloc[:-min_days], f.iloc[-min_days:]
    from_regime, share = _dominant(ref, model.n_regimes)
    to = int(new["regime"].iloc[-1])
    p_to = f[f"p_{to}"].to_numpy()
    confident = (f["regime"].to_numpy() == to) & (p_to >= min_prob)
    if to == from_regime or not confident[-min_days:].all():
        return None
    if min(model.expected_durations[[from_regime, to]]) < min_duration_days:
        return None
    first = len(f) - 1
    while first > 0 and confident[first - 1]:
        first -= 1
    return RegimeShift(from_regime, to, int(f["day"].iloc[first]), int(f["day"].iloc[-1]), share,
                       float(p_to[-min_days:].min()))


def _window(split: Any, key: str) -> int:
    return int(split[key] if isinstance(split, Mapping) else getattr(split, key))


def split_regimes(model: RegimeModel, timestamps_ms, close, splits: Sequence[Any]) -> list[dict[str, Any]]:
    """Per split (``Split`` or mapping), the dominant regime and its share in the train and the test window.

    A day counts for a window when it lies wholly inside the half-open ``[start, end)``; a window holding no
    whole day gets regime None. Shares are mean filtered probabilities, so they are causal too.
    """
    return regimes_of_splits(model, filtered_regimes(model, timestamps_ms, close), splits)


def regimes_of_splits(model: RegimeModel, filtered: pd.DataFrame, splits: Sequence[Any]) -> list[dict[str, Any]]:
    """``split_regimes`` on the filtered days of ``filter_daily``."""
    f = filtered
    out = []
    for i, s in enumerate(splits):
        row: dict[str, Any] = {"index": int(s["index"] if isinstance(s, Mapping) and "index" in s
                                            else getattr(s, "index", i))}
        for part in ("train", "test"):
            start, end = _window(s, f"{part}_start"), _window(s, f"{part}_end")
            w = f[(f["day"] >= start) & (f["day"] + DAY_MS <= end)]
            regime, share = _dominant(w, model.n_regimes) if len(w) else (None, None)
            row.update({f"{part}_regime": regime, f"{part}_regime_share": share, f"{part}_days": len(w)})
        out.append(row)
    return out
