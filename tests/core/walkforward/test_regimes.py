"""Market regimes: a Gaussian HMM fitted on past days only, read with a causal forward filter.

Seeded synthetic 1h markets whose regime is known day by day: calm bars have 0.3 % per-bar volatility,
volatile bars 0.9 %. References are independent of the module: features recomputed with pandas, the HMM
refitted with hmmlearn directly, filtering checked against hmmlearn's forward-backward on the last day.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hmmlearn.hmm import GaussianHMM

from maestro_pipeline.config import RegimesConfig
from maestro_pipeline.errors import MaestroError
from maestro_pipeline.timeframes import DAY_MS, HOUR_MS, MINUTE_MS
from maestro_pipeline.walkforward import (
    Split,
    daily_features,
    filter_daily,
    filtered_regimes,
    fit_daily,
    fit_regimes,
    regime_shift,
    regimes_of_splits,
    shift_in,
    split_regime_rows,
    split_regimes,
)

T0 = 1_735_689_600_000  # 2025-01-01 00:00 UTC
CALM, VOLATILE = 0.003, 0.009
FIT_DAYS = 200  # the model sees days 0..199
SWITCH = 230  # the unseen future turns volatile on this day
# day -> per-bar volatility: calm, a volatile episode, calm (all fitted); then calm, and volatile from SWITCH on
VOLS = np.concatenate([np.full(100, CALM), np.full(40, VOLATILE), np.full(60, CALM),
                       np.full(SWITCH - FIT_DAYS, CALM), np.full(30, VOLATILE)])


def market(day_vols, seed: int, bar_ms: int = HOUR_MS) -> tuple[np.ndarray, np.ndarray]:
    """Bars from T0 with Gaussian log returns; ``day_vols[d]`` is the per-bar volatility on day d."""
    per_day = DAY_MS // bar_ms
    sigma = np.repeat(np.asarray(day_vols, dtype=float), per_day)
    rng = np.random.default_rng(seed)
    ts = T0 + np.arange(len(sigma), dtype=np.int64) * bar_ms
    return ts, 100.0 * np.exp(np.cumsum(rng.normal(0.0, 1.0, len(sigma)) * sigma))


def upto(ts, close, end_ms):
    keep = ts < end_ms
    return ts[keep], close[keep]


def day_ms(d: float) -> int:
    return T0 + int(d * DAY_MS)


@pytest.fixture(scope="module")
def two_regimes():
    ts, close = market(VOLS, seed=1)
    model = fit_regimes(ts, close, day_ms(FIT_DAYS), n_regimes=2, seed=0)
    return ts, close, model


def pandas_features(ts, close, window):
    """The daily features recomputed independently: pandas rolling std and a per-day groupby."""
    df = pd.DataFrame({"day": ts // DAY_MS * DAY_MS, "r": np.log(close)})
    df["r"] = df["r"].diff()
    df["vol"] = df["r"].rolling(window).std()
    g = df.groupby("day").agg(ret=("r", "sum"), vol=("vol", lambda s: s.iloc[-1])).iloc[1:]
    g = g[g["vol"].notna()]
    return g.index.to_numpy(), np.column_stack([g["ret"].to_numpy(), np.log(g["vol"].to_numpy())])


@pytest.mark.parametrize("bar_ms, window", [(HOUR_MS, 24), (DAY_MS, 5)])
def test_daily_features_match_pandas(bar_ms, window):
    ts, close = market(np.r_[np.full(20, CALM), np.full(20, VOLATILE)], seed=3, bar_ms=bar_ms)
    keep = np.random.default_rng(0).random(len(ts)) > 0.1  # gaps: bars missing at random
    ts, close = ts[keep], close[keep]
    days, expected = pandas_features(ts, close, window)
    got = daily_features(ts, close, vol_window=window)
    np.testing.assert_array_equal(got["day"].to_numpy(), days)
    np.testing.assert_allclose(got[["log_return", "log_realized_vol"]].to_numpy(), expected, rtol=1e-10, atol=1e-12)


def test_daily_features_of_1m_bars_match_pandas():
    """1m bars with a day's window (1,440 bars): the case whose rolling std at every bar took 1,440 floats a bar."""
    ts, close = market(np.r_[np.full(4, CALM), np.full(4, VOLATILE)] / 8, seed=4, bar_ms=MINUTE_MS)
    keep = np.random.default_rng(1).random(len(ts)) > 0.05
    ts, close = ts[keep], close[keep]
    days, expected = pandas_features(ts, close, 1440)
    got = daily_features(ts, close, vol_window=1440)
    np.testing.assert_array_equal(got["day"].to_numpy(), days)
    np.testing.assert_allclose(got[["log_return", "log_realized_vol"]].to_numpy(), expected, rtol=1e-10, atol=1e-12)


def _traced_peak(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_daily_features_memory_is_a_few_floats_per_bar_not_a_window_per_bar():
    """Peak allocations of 30 days of 1m bars (43,200 bars, window 1,440): a rolling std at every bar needs
    1,440 x 8 bytes per bar (~500 MB here); computing it only at each day's last bar stays near the inputs' size
    and grows linearly with the days."""
    ts, close = market(np.full(30, CALM / 8), seed=6, bar_ms=MINUTE_MS)
    small = _traced_peak(lambda: daily_features(ts[: len(ts) // 2], close[: len(ts) // 2], vol_window=1440))
    full = _traced_peak(lambda: daily_features(ts, close, vol_window=1440))
    per_bar = full / len(ts)
    assert per_bar < 100, per_bar  # bytes per bar: a handful of float64 arrays of the bars' length
    assert 1.5 < full / small < 2.5  # linear in the history, with no term growing with the window


def test_fitting_on_daily_rows_equals_fitting_on_bars(two_regimes):
    """One pass over the bars serves every split: the daily rows of the whole history, cut at a fit end, give the
    model that ``fit_regimes`` builds from the bars before that end (bit for bit), and the same filter, shift and
    split labels."""
    ts, close, model = two_regimes
    daily = daily_features(ts, close, 24)
    again = fit_daily(daily, day_ms(FIT_DAYS), n_regimes=2, seed=0)
    assert again.as_dict() == model.as_dict()
    np.testing.assert_array_equal(again.transmat, model.transmat)
    np.testing.assert_array_equal(again.means, model.means)
    filtered = filter_daily(again, daily)
    pd.testing.assert_frame_equal(filtered, filtered_regimes(model, ts, close), check_exact=True)
    part = upto(ts, close, day_ms(SWITCH + 6))
    since = day_ms(SWITCH - 25)
    shift = shift_in(again, filter_daily(again, daily_features(*part, 24)), since)
    assert shift is not None and shift == regime_shift(model, *part, since)
    splits = [Split(0, day_ms(10), day_ms(100), day_ms(100), day_ms(140))]
    assert regimes_of_splits(again, filtered, splits) == split_regimes(model, ts, close, splits)


def test_split_regime_rows_label_each_split_with_its_own_past_model():
    """The splits table's regimes (features computed once) equal a model fitted from the bars before each split's
    train end, the bar-level reference path."""
    ts, close = market(VOLS, seed=1)
    bars = pl.DataFrame({"timestamp": ts, "close": close})
    splits = [Split(0, day_ms(30), day_ms(120), day_ms(120), day_ms(150)),
              Split(1, day_ms(60), day_ms(150), day_ms(150), day_ms(180)),
              Split(2, day_ms(5), day_ms(40), day_ms(40), day_ms(60))]  # too little history: a note, no label
    cfg = RegimesConfig()
    rows = split_regime_rows(bars, splits, "1h", cfg)
    for row, s in zip(rows[:2], splits[:2], strict=True):
        ref = split_regimes(fit_regimes(ts, close, s.train_end, n_regimes=2, seed=0, min_days=60), ts, close, [s])[0]
        assert row["regime_note"] == ""
        assert (row["train_regime"], row["test_regime"]) == (ref["train_regime"], ref["test_regime"])
        assert row["train_regime_share"] == ref["train_regime_share"]
        assert row["test_regime_share"] == ref["test_regime_share"]
    assert rows[2]["train_regime"] is None and "usable days" in rows[2]["regime_note"]


def test_model_labels_calm_0_and_volatile_1(two_regimes):
    ts, close, model = two_regimes
    f = filtered_regimes(model, ts, close)
    truth = (VOLS[(f["day"].to_numpy() - T0) // DAY_MS] == VOLATILE).astype(int)
    assert (f["regime"].to_numpy()[truth == 0] == 0).mean() > 0.9
    assert (f["regime"].to_numpy()[truth == 1] == 1).mean() > 0.9
    meta = model.as_dict()
    np.testing.assert_allclose(meta["regime_bar_vol"], [CALM, VOLATILE], rtol=0.1)  # the true volatilities
    assert meta["seed"] == 0 and meta["n_regimes"] == 2 and meta["converged"]
    assert meta["fit_start_ms"] == day_ms(1) and meta["fit_end_ms"] == day_ms(FIT_DAYS)
    assert meta["n_days"] == FIT_DAYS - 1  # day 0 has no previous close


def test_canonical_relabeling_keeps_the_fitted_likelihood(two_regimes):
    """Refit with hmmlearn directly: same likelihood and the same states, only sorted by volatility."""
    ts, close, model = two_regimes
    _, x = pandas_features(*upto(ts, close, day_ms(FIT_DAYS)), 24)
    z = (x - x.mean(axis=0)) / x.std(axis=0)
    ref = GaussianHMM(n_components=2, covariance_type="diag", random_state=0, n_iter=200, tol=1e-4,
                      params="tmc", init_params="tmc")
    ref.startprob_ = np.full(2, 0.5)
    ref.fit(z)
    assert model.log_likelihood == pytest.approx(ref.score(z), abs=1e-6)
    order = np.argsort(ref.means_[:, 1])
    np.testing.assert_allclose(model.means, ref.means_[order], atol=1e-9)
    np.testing.assert_allclose(model.transmat, ref.transmat_[np.ix_(order, order)], atol=1e-9)


def test_fit_reads_only_whole_days_before_fit_end(two_regimes):
    ts, close, model = two_regimes
    wild = close.copy()
    after = ts >= day_ms(FIT_DAYS)
    wild[after] = wild[after] * np.exp(np.random.default_rng(9).normal(0, 0.05, after.sum()))
    again = fit_regimes(ts, wild, day_ms(FIT_DAYS + 0.5), seed=0)  # a mid-day end: that day is not whole
    np.testing.assert_array_equal(again.means, model.means)
    np.testing.assert_array_equal(again.transmat, model.transmat)
    np.testing.assert_array_equal(again.feature_mean, model.feature_mean)
    assert again.fit_end_ms == model.fit_end_ms


def test_forward_filter_equals_hmmlearn_on_the_last_day(two_regimes):
    """On the last day filtering and forward-backward smoothing coincide."""
    ts, close, model = two_regimes
    for end in (40, 101, 141, SWITCH + 1, len(VOLS)):
        f = filtered_regimes(model, *upto(ts, close, day_ms(end)))
        _, x = pandas_features(*upto(ts, close, day_ms(end)), 24)
        smoothed = model.hmm.predict_proba((x - model.feature_mean) / model.feature_std)
        np.testing.assert_allclose(f[["p_0", "p_1"]].to_numpy()[-1], smoothed[-1], atol=1e-8, rtol=0)


def test_filter_never_reads_the_future():
    """Regimes only 1.5x apart, so some days are ambiguous and hindsight would change their label."""
    vols = np.concatenate([np.full(60, 0.004), np.full(30, 0.006), np.full(40, 0.004), np.full(30, 0.006)])
    ts, close = market(vols, seed=2)
    model = fit_regimes(ts, close, day_ms(130), seed=0)
    full = filtered_regimes(model, ts, close)
    _, flipped = market(np.where(vols == 0.004, 0.006, 0.004), seed=5)  # the other regime, other noise
    moved = 0.0
    for d in (67, 96, 123, 129, 145):
        cut = day_ms(d + 1)
        head = full[full["day"] < cut]
        pd.testing.assert_frame_equal(filtered_regimes(model, *upto(ts, close, cut)), head, check_exact=True)
        altered = close.copy()  # after day d: the market continues in the other regime
        altered[ts >= cut] = close[ts < cut][-1] * flipped[ts >= cut] / flipped[ts < cut][-1]
        g = filtered_regimes(model, ts, altered)
        pd.testing.assert_frame_equal(g[g["day"] < cut], head, check_exact=True)
        # the same alteration moves hmmlearn's smoothed (forward-backward) probabilities of those days
        p, pa = (model.hmm.predict_proba((pandas_features(ts, c, 24)[1] - model.feature_mean) / model.feature_std)
                 for c in (close, altered))
        moved = max(moved, np.abs(p[: len(head)] - pa[: len(head)]).max())
    assert moved > 0.05  # so this test would catch a filter that reads the future


def test_shift_detected_after_the_switch_never_before(two_regimes):
    ts, close, model = two_regimes
    since = day_ms(SWITCH - 25)  # the last test window started here
    for end in [SWITCH - 10, SWITCH - 3, SWITCH - 0.5, SWITCH, SWITCH + 1, SWITCH + 2]:  # < 3 volatile days seen
        assert regime_shift(model, *upto(ts, close, day_ms(end)), since) is None, end
    detected = [end for end in range(SWITCH + 3, SWITCH + 9)
                if regime_shift(model, *upto(ts, close, day_ms(end)), since) is not None]
    assert detected and detected[0] <= SWITCH + 5 and detected == list(range(detected[0], SWITCH + 9))
    shift = regime_shift(model, *upto(ts, close, day_ms(SWITCH + 6)), since)
    assert (shift.from_regime, shift.to_regime) == (0, 1)
    assert shift.first_day_ms == day_ms(SWITCH)  # 3x the volatility is plain from the first volatile day
    assert shift.last_day_ms == day_ms(SWITCH + 5) and shift.min_prob >= 0.8
    # reference = days SWITCH-25 .. SWITCH+2 (all but the newest 3): 25 calm of 28
    assert shift.reference_share == pytest.approx(25 / 28, abs=0.03)
    assert "regime 0 -> 1 since 2025-08-19" in shift.describe()  # day 230 counted from 2025-01-01
    # the other direction, inside the fitted history: volatile days 100..139, calm again from day 140
    back = regime_shift(model, *upto(ts, close, day_ms(145)), day_ms(115))
    assert (back.from_regime, back.to_regime) == (1, 0) and day_ms(140) <= back.first_day_ms <= day_ms(142)
    assert regime_shift(model, *upto(ts, close, day_ms(141)), day_ms(115)) is None


def test_no_shift_in_a_single_regime_market():
    """A 2-state HMM fitted on one regime splits it into flickering states; those must not trigger."""
    unguarded = 0
    for seed in (5, 9):
        ts, close = market(np.full(150, 0.004), seed=seed)
        model = fit_regimes(ts, close, day_ms(90), seed=0)
        assert model.expected_durations.min() < 10  # what the persistence guard sees
        for end in range(125, 151):
            args = (*upto(ts, close, day_ms(end)), day_ms(end - 20))
            assert regime_shift(model, *args) is None, (seed, end)
            unguarded += regime_shift(model, *args, min_duration_days=0) is not None
    assert unguarded > 0  # without the guard these seeded markets do raise false shifts


def test_same_seed_same_output(two_regimes):
    ts, close, model = two_regimes
    again = fit_regimes(pl.Series(ts), pl.Series(close), day_ms(FIT_DAYS), seed=0)  # polars columns work too
    assert again.as_dict() == model.as_dict()
    np.testing.assert_array_equal(again.transmat, model.transmat)
    pd.testing.assert_frame_equal(filtered_regimes(again, ts, close), filtered_regimes(model, ts, close))
    part = upto(ts, close, day_ms(SWITCH + 4))
    assert regime_shift(again, *part, day_ms(SWITCH - 25)) == regime_shift(model, *part, day_ms(SWITCH - 25))


def test_split_regimes_dominant_regime_and_share(two_regimes):
    ts, close, model = two_regimes
    splits = [Split(0, day_ms(10), day_ms(100), day_ms(100), day_ms(140)),
              Split(1, day_ms(80), day_ms(150), day_ms(150), day_ms(150.5))]  # a test window shorter than a day
    rows = split_regimes(model, ts, close, splits)
    assert [r["index"] for r in rows] == [0, 1]
    assert rows[0]["train_regime"] == 0 and rows[0]["train_regime_share"] > 0.9 and rows[0]["train_days"] == 90
    assert rows[0]["test_regime"] == 1 and rows[0]["test_regime_share"] > 0.9 and rows[0]["test_days"] == 40
    # days 80..149: 40 volatile of 70 -> regime 1 with a share near 40/70
    assert rows[1]["train_regime"] == 1 and rows[1]["train_regime_share"] == pytest.approx(40 / 70, abs=0.05)
    assert rows[1]["test_regime"] is None and rows[1]["test_days"] == 0
    assert split_regimes(model, ts, close, [s.as_dict() for s in splits]) == rows


def test_bad_input_is_a_clear_error(two_regimes):
    ts, close, model = two_regimes
    with pytest.raises(MaestroError, match=r"only 39 usable days .*need min_days=60"):
        fit_regimes(ts, close, day_ms(40))
    with pytest.raises(MaestroError, match="strictly increasing"):
        fit_regimes(ts[::-1], close, day_ms(FIT_DAYS))
    with pytest.raises(MaestroError, match="finite and > 0"):
        fit_regimes(ts, np.where(ts == ts[5], -1.0, close), day_ms(FIT_DAYS))
    with pytest.raises(MaestroError, match="n_regimes must be"):
        fit_regimes(ts, close, day_ms(FIT_DAYS), n_regimes=1)
    with pytest.raises(MaestroError, match="pass an earlier since_ms"):
        regime_shift(model, ts, close, day_ms(len(VOLS) - 2))
