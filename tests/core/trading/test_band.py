"""The bootstrap band: seeded, recorded, and equal to an exact distribution where one is known."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from maestro_pipeline.errors import MaestroError
from maestro_pipeline.trading import horizon_band, path_indices


def test_iid_band_matches_the_exact_binomial_quantiles():
    # returns are +1 % or -1 % in equal numbers: an i.i.d. bootstrap path of h bars holds k ~ Binomial(h, 1/2) ups,
    # so its compounded return is 1.01^k * 0.99^(h-k) - 1 — the band's ends are that at the binomial quantiles
    r = np.array([0.01, -0.01] * 500)
    h = 60
    band = horizon_band(r, h, n_boot=40_000, seed=7, level=0.9, block=1)

    def value(k):
        return 1.01 ** k * 0.99 ** (h - k) - 1

    lo_k, hi_k = stats.binom.ppf([0.05, 0.95], h, 0.5)
    step = value(31) - value(30)  # one more up move
    assert band.low == pytest.approx(value(lo_k), abs=1.01 * step)
    assert band.high == pytest.approx(value(hi_k), abs=1.01 * step)
    assert band.median == pytest.approx(value(30), abs=1.01 * step)


def test_band_is_seeded_and_records_its_inputs():
    r = np.random.default_rng(0).normal(0.0005, 0.01, 800)
    a, b = horizon_band(r, 48, seed=3), horizon_band(r, 48, seed=3)
    assert a == b
    assert horizon_band(r, 48, seed=4) != a
    assert (a.horizon, a.n_boot, a.seed, a.level, a.sample_bars, a.block) == (48, 2000, 3, 0.95, 800, 28)
    assert a.low < a.median < a.high


def test_constant_returns_give_a_point_band():
    band = horizon_band(np.full(100, 0.002), 24, n_boot=200)
    assert band.low == pytest.approx(1.002 ** 24 - 1) and band.high == pytest.approx(1.002 ** 24 - 1)


def test_stationary_paths_are_runs_of_consecutive_values():
    rng = np.random.default_rng(1)
    idx = path_indices(50, 200, 30, 10, rng)
    steps = np.diff(idx, axis=1)
    jumps = (steps != 1) & (steps != -49)  # -49: wrapping from the last value to the first is a continuation
    # a new block starts with probability 1/10 per step: about 10 % of the steps jump (a jump can land on +1 too)
    assert 0.06 < jumps.mean() < 0.12
    assert idx.min() >= 0 and idx.max() < 50
    # an infinite mean block is one circular window per path
    whole = path_indices(50, 120, 5, 10**9, rng)
    assert np.all((np.diff(whole, axis=1) % 50) == 1)


def test_a_ruined_bar_makes_the_path_worth_nothing():
    band = horizon_band(np.full(10, -1.0), 3, n_boot=100)
    assert band.low == band.high == -1.0


@pytest.mark.parametrize(("returns", "horizon", "msg"), [
    ([0.01], 5, "at least 2"), ([0.01, np.nan], 5, "NaN"), ([0.01, 0.02], 0, "horizon"),
])
def test_bad_input_is_one_clear_error(returns, horizon, msg):
    with pytest.raises(MaestroError, match=msg):
        horizon_band(np.array(returns), horizon)
