"""Overfitting statistics against hand evaluations of the published formulas, vectorbt 1.2 and brute force."""

from __future__ import annotations

import itertools
import math
import statistics
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest
from scipy.stats import rankdata

from maestro_pipeline.errors import MaestroError
from maestro_pipeline.stats import (
    bootstrap_ci,
    deflated_sharpe_ratio,
    dsr_report,
    expected_max_sharpe,
    parameter_stability,
    pbo_cscv,
    pbo_walk_forward,
    plateau_score,
    probabilistic_sharpe_ratio,
    trade_reshuffle_ci,
)
from maestro_pipeline.strategies import Categorical, FloatParam, IntParam

EULER_GAMMA = 0.5772156649015329

# ----------------------------------------------------------------------------------------------------- DSR / PSR


def test_dsr_equals_hand_evaluation_of_the_published_formula():
    sr, v, n, t, skew, kurt = 0.12, 0.0016, 20, 365, -0.8, 5.5
    nd = NormalDist()
    z1 = nd.inv_cdf(1 - 1 / 20)  # 1.644854
    z2 = nd.inv_cdf(1 - 1 / (20 * math.e))  # 2.088110
    assert z1 == pytest.approx(1.644854, abs=1e-6) and z2 == pytest.approx(2.088110, abs=1e-6)
    sr0 = math.sqrt(v) * ((1 - EULER_GAMMA) * z1 + EULER_GAMMA * z2)  # 0.04 * (0.69542 + 1.20530)
    assert sr0 == pytest.approx(0.0760283, abs=1e-6)
    den = 1 - skew * sr + (kurt - 1) / 4 * sr**2  # 1 + 0.096 + 1.125 * 0.0144
    assert den == pytest.approx(1.1122, abs=1e-12)
    z = (sr - sr0) * math.sqrt(t - 1) / math.sqrt(den)  # 0.0439717 * 19.078784 / 1.054609
    assert z == pytest.approx(0.795486, abs=1e-6)
    assert nd.cdf(z) == pytest.approx(0.786834, abs=1e-6)

    assert expected_max_sharpe(v, n) == pytest.approx(sr0, rel=1e-12)
    assert deflated_sharpe_ratio(sr, v, n, t, skew, kurt) == pytest.approx(nd.cdf(z), rel=1e-12)
    # PSR against 0: z = 0.12 * 19.078784 / 1.054609 = 2.170903
    assert probabilistic_sharpe_ratio(sr, 0.0, t, skew, kurt) == pytest.approx(nd.cdf(2.170903), abs=1e-6)


def test_single_trial_deflates_to_the_psr_against_zero():
    assert expected_max_sharpe(0.01, 1) == 0.0
    assert deflated_sharpe_ratio(0.05, 0.01, 1, 200, 0.1, 4.0) == pytest.approx(
        probabilistic_sharpe_ratio(0.05, 0.0, 200, 0.1, 4.0), rel=1e-15
    )
    # more trials, higher bar, lower DSR
    assert deflated_sharpe_ratio(0.05, 0.001, 100, 200, 0.1, 4.0) < deflated_sharpe_ratio(0.05, 0.001, 5, 200, 0.1, 4.0)


def test_dsr_equals_vectorbt_metric():
    from vectorbt.returns import metrics as vbt_metrics

    sr = np.array([0.02, 0.08, 0.15, -0.03])
    sk = np.array([-0.5, 0.3, -1.2, 0.0])
    ku = np.array([3.0, 4.5, 8.0, 3.2])
    ref = vbt_metrics.deflated_sharpe_ratio(
        est_sharpe=sr, var_sharpe=0.002, nb_trials=37, backtest_horizon=500, skew=sk, kurtosis=ku
    )
    mine = [deflated_sharpe_ratio(a, 0.002, 37, 500, b, c) for a, b, c in zip(sr, sk, ku, strict=True)]
    np.testing.assert_allclose(mine, ref, rtol=1e-12)


def test_dsr_report_equals_vectorbt_accessor():
    import vectorbt  # noqa: F401  (registers the .vbt accessor)

    rng = np.random.default_rng(5)
    k, t = 8, 300
    data = rng.standard_t(df=5, size=(t, k)) * 0.02 + np.linspace(-0.001, 0.003, k)
    df = pd.DataFrame(data, index=pd.date_range("2025-01-01", periods=t, freq="D"))
    acc = df.vbt.returns(freq="1D")
    assert acc.ann_factor == 365.0  # vectorbt's default year_freq is 365 days, like ours
    ref = acc.deflated_sharpe_ratio().to_numpy()  # var of all columns' SRs (ddof=1), nb_trials = k
    per_period = [statistics.mean(c) / statistics.stdev(c) for c in data.T.tolist()]
    for j in range(k):
        rep = dsr_report(data[:, j], np.array(per_period), k)
        assert rep["observed_sr"] == pytest.approx(per_period[j], rel=1e-10)
        assert rep["sr_variance"] == pytest.approx(statistics.variance(per_period), rel=1e-10)
        assert rep["n_obs"] == t and rep["n_trials"] == k
        assert rep["dsr"] == pytest.approx(ref[j], rel=1e-9)
        assert rep["dsr"] <= rep["psr"]


def test_dsr_report_moments_are_the_biased_moment_estimators():
    x = [0.01, -0.02, 0.03, 0.0, 0.05, -0.01]
    m = statistics.fmean(x)
    m2 = sum((a - m) ** 2 for a in x) / len(x)
    m3 = sum((a - m) ** 3 for a in x) / len(x)
    m4 = sum((a - m) ** 4 for a in x) / len(x)
    rep = dsr_report(np.array(x), np.array([0.1, 0.2, 0.05]), 3)
    assert rep["skew"] == pytest.approx(m3 / m2**1.5, rel=1e-10)
    assert rep["kurtosis"] == pytest.approx(m4 / m2**2, rel=1e-10)  # Pearson: not minus 3


@pytest.mark.parametrize(
    "args, fragment",
    [
        ((0.1, 0.01, 0, 100, 0.0, 3.0), "n_trials"),
        ((0.1, 0.01, 5, 1, 0.0, 3.0), "n_obs"),
        ((0.1, -0.01, 5, 100, 0.0, 3.0), "sr_variance"),
        ((0.5, 0.01, 5, 100, 10.0, 3.0), "not positive"),
        ((float("nan"), 0.01, 5, 100, 0.0, 3.0), "finite"),
    ],
)
def test_dsr_rejects_bad_input_in_one_line(args, fragment):
    with pytest.raises(MaestroError, match=fragment) as err:
        deflated_sharpe_ratio(*args)
    assert "\n" not in str(err.value)


def test_dsr_report_rejects_constant_or_nan_returns():
    with pytest.raises(MaestroError, match="constant"):
        dsr_report(np.zeros(10), np.array([0.1, 0.2]), 2)
    with pytest.raises(MaestroError, match="NaN"):
        dsr_report(np.array([0.1, np.nan, 0.2]), np.array([0.1, 0.2]), 2)
    with pytest.raises(MaestroError, match="only 1"):
        dsr_report(np.array([0.1, -0.1, 0.2]), np.array([0.1, np.nan]), 2)


# ----------------------------------------------------------------------------------------------------- PBO


def _pbo_brute_force(x: np.ndarray, s: int) -> list[float]:
    """Slow reference: statistics.stdev Sharpe per combination, scipy rankdata for the OOS rank."""
    t, n = x.shape
    x = x[t % s :]
    blocks = np.split(x, s)

    def sharpe(col):
        sd = statistics.stdev(col)
        return 0.0 if sd == 0 else statistics.fmean(col) / sd

    out = []
    for combo in itertools.combinations(range(s), s // 2):
        is_rows = np.vstack([blocks[i] for i in combo])
        oos_rows = np.vstack([blocks[i] for i in range(s) if i not in combo])
        is_m = [sharpe(is_rows[:, j].tolist()) for j in range(n)]
        oos_m = [sharpe(oos_rows[:, j].tolist()) for j in range(n)]
        best = is_m.index(max(is_m))
        w = rankdata(oos_m)[best] / (n + 1)
        out.append(math.log(w / (1 - w)))
    return out


def test_pbo_hand_checked_tiny_case():
    # T=4 rows, S=4 blocks of 1 row, N=3 trials; Sharpe of a pair (a, b) ranks like (a + b) / |a - b|.
    x = np.array([[1, 2, -1], [3, 0, 2], [-1, 3, -2], [1, 4, 3]], dtype=float)
    # IS rows -> IS winner -> OOS rank of the winner (1 = worst of 3) -> λ = ln(ω/(1-ω)), ω = rank / 4
    # (0,1): A 2, B 1, C 1/3 -> A; OOS (2,3): A 0, B 7, C 0.2      -> rank 1 -> ln(1/3)
    # (0,2): A 0, B 5, C -3  -> B; OOS (1,3): A 2, B 1, C 5        -> rank 1 -> ln(1/3)
    # (0,3): A 0 (flat), B 3, C 0.5 -> B; OOS (1,2): A .5, B 1, C 0 -> rank 3 -> ln 3
    # (1,2): A .5, B 1, C 0  -> B; OOS (0,3): A 0, B 3, C .5       -> rank 3 -> ln 3
    # (1,3): A 2, B 1, C 5   -> C; OOS (0,2): A 0, B 5, C -3       -> rank 1 -> ln(1/3)
    # (2,3): A 0, B 7, C .2  -> B; OOS (0,1): A 2, B 1, C 1/3      -> rank 2 -> 0 (the median counts as overfit)
    res = pbo_cscv(x, n_blocks=4)
    l3 = math.log(3)
    np.testing.assert_allclose(res.logits, [-l3, -l3, l3, l3, -l3, 0.0], atol=1e-12)
    assert res.pbo == pytest.approx(4 / 6)
    assert res.n_combinations == 6 and res.block_size == 1 and res.rows_dropped == 0
    # the IS winner's OOS Sharpe is negative only for (1,3) -> C on rows (0,2): (-1 - 2) / (sqrt2 * 1) < 0
    assert res.prob_oos_loss == pytest.approx(1 / 6)


def test_pbo_hand_checked_tie_uses_average_rank():
    x = np.array([[1, 2, -1], [3, 0, 2], [-1, 3, 1], [1, 4, 3]], dtype=float)
    # (1,3) IS: A 2, B 1, C 5 -> C; OOS (0,2): A (1,-1) = 0, B (2,3) = 5, C (-1,1) = 0: A and C tie at
    # ranks 1 and 2 -> average 1.5, ω = 1.5/4 = 0.375, λ = ln(0.6). Other combinations as worked out by hand:
    # (0,1)->A rank 1, (0,2)->B rank 1, (0,3)->B rank 2, (1,2)->C rank 2, (2,3)->B rank 2.
    res = pbo_cscv(x, n_blocks=4)
    l3 = math.log(3)
    np.testing.assert_allclose(res.logits, [-l3, -l3, 0.0, 0.0, math.log(0.6), 0.0], atol=1e-12)
    assert res.pbo == 1.0


def test_pbo_matches_brute_force_and_drops_oldest_rows():
    rng = np.random.default_rng(11)
    x = rng.normal(0.0, 0.01, size=(53, 6))  # 53 = 6 * 8 + 5: the 5 oldest rows go
    x[:5] = 1.0  # would dominate every Sharpe if they were kept
    res = pbo_cscv(x, n_blocks=6)
    assert res.rows_dropped == 5 and res.block_size == 8
    np.testing.assert_allclose(res.logits, _pbo_brute_force(x, 6), rtol=1e-12, atol=1e-12)


def test_pbo_of_pure_noise_is_about_one_half():
    pbos = [pbo_cscv(np.random.default_rng(seed).normal(0, 0.01, (240, 50)), 16).pbo for seed in (1, 2, 3, 4)]
    assert 0.3 < float(np.mean(pbos)) < 0.7


def test_pbo_of_a_planted_edge_is_low():
    rng = np.random.default_rng(3)
    x = rng.normal(0, 0.01, (480, 50))
    x[:, 17] += 0.004  # per-period Sharpe 0.4, far above the noise maximum (~0.15 on 240 rows)
    res = pbo_cscv(x, 16)
    assert res.pbo < 0.1
    assert res.prob_oos_loss < 0.1


def test_pbo_of_an_overfit_construction_is_high():
    # Demeaned columns: every trial's total is 0, so a high IS mean forces a low OOS mean (Bailey et al. 2015).
    rng = np.random.default_rng(8)
    x = rng.normal(0, 0.01, (240, 30))
    x -= x.mean(axis=0)
    res = pbo_cscv(x, 16)
    assert res.pbo > 0.5
    assert res.degradation_slope < 0


def test_pbo_exact_copies_tie_as_in_the_brute_force_reference():
    # trials that never trade (all zero) and trials that trade alike: exact ties in IS and OOS, average ranks
    rng = np.random.default_rng(21)
    base = rng.normal(0.0002, 0.01, (80, 12))
    x = np.concatenate([base, base[:, :5], np.zeros((80, 4)), base[:, 7:9]], axis=1)
    res = pbo_cscv(x, n_blocks=8)
    np.testing.assert_allclose(res.logits, _pbo_brute_force(x, 8), rtol=1e-12, atol=1e-12)


def test_pbo_rounding_never_decides_a_rank():
    # Trials that differ only in position size have the same Sharpe in every block set, so they must tie exactly as
    # exact copies do, whatever the rounding of their sums (0.3x and 1.7x are not exact in binary); and the order
    # of the trials must not matter. Before TIE_RTOL, 894 of the 12,870 logits here
    # differed (on an AMD EPYC with OpenBLAS).
    rng = np.random.default_rng(7)
    base = rng.normal(0.0002, 0.01, (160, 30))
    copies = pbo_cscv(np.concatenate([base, base[:, :10], base[:, :10]], axis=1), 16)
    sized = np.concatenate([base, base[:, :10] * 0.3, base[:, :10] * 1.7], axis=1)
    np.testing.assert_array_equal(pbo_cscv(sized, 16).logits, copies.logits)
    reordered = pbo_cscv(sized[:, ::-1], 16)
    np.testing.assert_array_equal(reordered.logits, copies.logits)
    assert reordered.pbo == copies.pbo


def test_pbo_mean_metric_matches_a_hand_loop():
    rng = np.random.default_rng(4)
    x = rng.normal(0.0, 0.01, (40, 5))
    res = pbo_cscv(x, n_blocks=4, metric="mean")
    blocks = np.split(x, 4)
    expected = []
    for combo in itertools.combinations(range(4), 2):
        is_m = np.vstack([blocks[i] for i in combo]).mean(axis=0)
        oos_m = np.vstack([blocks[i] for i in range(4) if i not in combo]).mean(axis=0)
        w = rankdata(oos_m)[int(np.argmax(is_m))] / 6
        expected.append(math.log(w / (1 - w)))
    np.testing.assert_allclose(res.logits, expected, rtol=1e-12)


@pytest.mark.parametrize(
    "x, s, fragment",
    [
        (np.zeros((20, 1)), 4, "at least 2 trials"),
        (np.zeros((3, 4)), 4, "cannot fill"),
        (np.zeros((20, 4)), 5, "even"),
        (np.zeros(20), 4, "2-D"),
        (np.where(np.eye(20, 4) > 0, np.nan, 0.0), 4, "NaN"),
    ],
)
def test_pbo_rejects_bad_input(x, s, fragment):
    with pytest.raises(MaestroError, match=fragment):
        pbo_cscv(x, s)


def test_pbo_walk_forward_per_split_with_notes():
    rng = np.random.default_rng(2)
    rows = []
    day0 = pd.Timestamp("2025-01-01")
    for trial in range(12):  # split 0: 180 days, trial 5 misses one day
        for d in range(180):
            if not (trial == 5 and d == 40):
                rows.append((0, trial, day0 + pd.Timedelta(days=d), rng.normal(0, 0.01)))
    for trial in range(4):  # split 1: 10 days (int ms days) -> 4 blocks of 2 days, 2 dropped
        for d in range(10):
            rows.append((1, trial, 1_700_000_000_000 + d * 86_400_000, rng.normal(0, 0.01)))
    for d in range(3):  # split 2: 3 days only -> skipped
        rows.append((2, 0, d, 0.01))
        rows.append((2, 1, d, -0.01))
    df = pd.DataFrame(rows, columns=["split", "trial", "day", "return"])
    shuffled = df.sample(frac=1.0, random_state=0)  # order of the ledger rows must not matter
    out = pbo_walk_forward(shuffled)

    by_split = {p["split"]: p for p in out["per_split"]}
    assert set(by_split) == {0, 1}
    assert by_split[0]["n_blocks"] == 16 and by_split[0]["n_trials"] == 11 and by_split[0]["n_days"] == 180
    assert by_split[1]["n_blocks"] == 4 and by_split[1]["n_days"] == 10
    wide0 = df[(df.split == 0) & (df.trial != 5)].pivot(index="day", columns="trial", values="return")
    assert by_split[0]["pbo"] == pbo_cscv(wide0.to_numpy(), 16).pbo
    wide1 = df[df.split == 1].pivot(index="day", columns="trial", values="return")
    assert by_split[1]["pbo"] == pytest.approx(float(np.mean(np.array(_pbo_brute_force(wide1.to_numpy(), 4)) <= 0)))
    assert out["mean_pbo"] == pytest.approx((by_split[0]["pbo"] + by_split[1]["pbo"]) / 2)
    assert any("split 0" in n and "[5]" in n for n in out["notes"])
    assert any("split 2" in n and "skipped" in n for n in out["notes"])


def test_pbo_walk_forward_rejects_missing_columns():
    with pytest.raises(MaestroError, match="lacks column"):
        pbo_walk_forward(pd.DataFrame({"split": [0], "trial": [0], "ret": [0.1]}))


# ----------------------------------------------------------------------------------------------------- bootstrap


def test_bootstrap_sharpe_ci_covers_the_true_sharpe():
    mu, sigma = 0.002, 0.02
    true_sr = mu / sigma * math.sqrt(365)  # 1.9105
    covered = 0
    for seed in range(30):
        r = np.random.default_rng(100 + seed).normal(mu, sigma, 365)
        low, high, _ = bootstrap_ci(r, "sharpe", n_boot=1000, seed=seed)
        covered += low <= true_sr <= high
    assert covered >= 25  # nominal 95%: 28.5 of 30 expected


def test_bootstrap_width_shrinks_with_more_data():
    rng = np.random.default_rng(4)
    small = rng.normal(0.001, 0.02, 200)
    large = rng.normal(0.001, 0.02, 3200)
    lo_s, hi_s, _ = bootstrap_ci(small, "sharpe", n_boot=1000)
    lo_l, hi_l, _ = bootstrap_ci(large, "sharpe", n_boot=1000)
    assert hi_l - lo_l < 0.5 * (hi_s - lo_s)  # ~ 1/sqrt(T): 16x data, about 1/4 the width


def test_bootstrap_blocks_keep_serial_dependence():
    # AR(1) with phi = 0.8: the sample mean's std is sqrt((1 + phi) / (1 - phi)) = 3x the i.i.d. value, which
    # a block bootstrap sees and an i.i.d. one (block=1) does not.
    rng = np.random.default_rng(6)
    e = rng.normal(0, 0.01, 1500)
    r = np.empty_like(e)
    r[0] = e[0]
    for i in range(1, r.size):
        r[i] = 0.8 * r[i - 1] + e[i]
    r += 0.001
    lo_b, hi_b, _ = bootstrap_ci(r, "sharpe", n_boot=1000, block=40)
    lo_i, hi_i, _ = bootstrap_ci(r, "sharpe", n_boot=1000, block=1)
    assert hi_b - lo_b > 1.8 * (hi_i - lo_i)


def test_bootstrap_is_seeded_and_point_is_the_sample_statistic():
    r = np.random.default_rng(9).normal(0.001, 0.02, 365)
    assert bootstrap_ci(r, "sharpe", seed=3) == bootstrap_ci(r, "sharpe", seed=3)
    assert bootstrap_ci(r, "sharpe", seed=3)[:2] != bootstrap_ci(r, "sharpe", seed=4)[:2]
    point = bootstrap_ci(r, "sharpe")[2]
    vals = r.tolist()
    assert point == pytest.approx(statistics.fmean(vals) / statistics.stdev(vals) * math.sqrt(365), rel=1e-12)

    # equity 1.1, 0.88, 0.924, 0.8316, 1.08108: trough 0.8316 under the peak 1.1 -> 0.8316/1.1 - 1 = -0.244
    low, high, dd = bootstrap_ci(np.array([0.1, -0.2, 0.05, -0.1, 0.3]), "max_drawdown", block=1)
    assert dd == pytest.approx(-0.244, abs=1e-12)
    assert -1 <= low <= high <= 0
    # a first-bar loss is a drawdown from the starting equity 1
    assert bootstrap_ci(np.array([-0.1, 0.05]), "max_drawdown")[2] == pytest.approx(-0.1)


def test_bootstrap_flat_series_gives_zero_sharpe_and_drawdown():
    assert bootstrap_ci(np.full(50, 0.001), "sharpe") == (0.0, 0.0, 0.0)
    assert bootstrap_ci(np.full(50, 0.001), "max_drawdown") == (0.0, 0.0, 0.0)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"stat": "sortino"}, "not supported"),
        ({"stat": "sharpe", "block": 500}, "longer than"),
        ({"stat": "sharpe", "level": 1.5}, "level"),
        ({"stat": "sharpe", "n_boot": 0}, "n_boot"),
    ],
)
def test_bootstrap_rejects_bad_input(kwargs, fragment):
    with pytest.raises(MaestroError, match=fragment):
        bootstrap_ci(np.random.default_rng(0).normal(0, 0.01, 100), **kwargs)


def _dd(seq):
    equity, peak, worst = 1.0, 1.0, 0.0
    for r in seq:
        equity *= 1 + r
        peak = max(peak, equity)
        worst = min(worst, equity / peak - 1)
    return worst


def test_trade_reshuffle_spans_the_orderings():
    trades = [0.1, -0.2, 0.15, -0.05]
    all_dd = [_dd(p) for p in itertools.permutations(trades)]  # 24 orderings, each drawn with p = 1/24
    low, high, point = trade_reshuffle_ci(np.array(trades), n=4000, seed=1, level=0.9)
    assert point == pytest.approx(_dd(trades))  # 1.1 -> 0.88 -> 1.012 -> 0.9614: -0.2
    assert point == pytest.approx(-0.2)
    assert low == pytest.approx(min(all_dd))  # -0.24 (both losses together) is > 5% likely
    assert high == pytest.approx(max(all_dd))  # -0.2 (the mildest ordering) is > 5% likely
    assert trade_reshuffle_ci(np.array(trades), seed=1) == trade_reshuffle_ci(np.array(trades), seed=1)


def test_trade_reshuffle_without_losses_has_no_drawdown():
    assert trade_reshuffle_ci(np.array([0.01, 0.02, 0.0])) == (0.0, 0.0, 0.0)
    with pytest.raises(MaestroError, match="at least 1"):
        trade_reshuffle_ci(np.array([]))


# ----------------------------------------------------------------------------------------------------- stability


def test_parameter_stability_identical_and_spread():
    space = {"fast": (0, 100), "slow": (10, 50), "mode": ["a", "b", "c"]}
    same = parameter_stability([{"fast": 20, "slow": 30, "mode": "a"}] * 3, space)
    assert same["n_splits"] == 3
    assert same["params"]["fast"]["std_ratio"] == 0 and same["params"]["fast"]["range_ratio"] == 0
    assert same["params"]["mode"]["modal_share"] == 1

    spread = parameter_stability(
        [
            {"fast": 20, "slow": 10, "mode": "a"},
            {"fast": 30, "slow": 50, "mode": "b"},
            {"fast": 40, "slow": 10, "mode": "a"},
        ],
        space,
    )
    p = spread["params"]
    assert p["fast"]["std_ratio"] == pytest.approx(math.sqrt(200 / 3) / 100)  # population std of 20,30,40
    assert p["fast"]["range_ratio"] == pytest.approx(0.2)
    assert p["slow"]["range_ratio"] == pytest.approx(1.0)  # both ends of the range
    assert p["slow"]["std_ratio"] == pytest.approx(math.sqrt(2 / 9 * 40**2) / 40)  # 10,50,10 -> std 18.86
    assert p["mode"]["mode"] == "a" and p["mode"]["modal_share"] == pytest.approx(2 / 3)


def test_parameter_stability_accepts_strategy_specs_and_log_ranges():
    space = {"n": IntParam(5, 25), "k": FloatParam(0.001, 0.1, log=True), "side": Categorical(("long", "short"))}
    res = parameter_stability([{"n": 5, "k": 0.001, "side": "long"}, {"n": 25, "k": 0.01, "side": "short"}], space)
    assert res["params"]["n"]["range_ratio"] == pytest.approx(1.0)
    assert res["params"]["k"]["range_ratio"] == pytest.approx(0.5)  # one decade of two, in log10
    assert res["params"]["side"]["modal_share"] == 0.5
    with pytest.raises(MaestroError, match="lacks parameter 'side'"):
        parameter_stability([{"n": 5, "k": 0.01}], space)


def test_plateau_score_bowl_vs_needle():
    grid = [(x, y) for x in np.linspace(0, 1, 21) for y in np.linspace(0, 1, 21)]
    params = [{"x": float(x), "y": float(y)} for x, y in grid]
    space = {"x": (0.0, 1.0), "y": (0.0, 1.0)}
    best = {"x": 0.5, "y": 0.5}
    bowl = np.array([2 - (x - 0.5) ** 2 - (y - 0.5) ** 2 for x, y in grid])
    res = plateau_score(params, bowl, best, space, radius=0.1)
    assert res["n_neighbours"] == 24  # 5 x 5 grid points within ±0.1 (step 0.05), less the best itself
    assert res["score"] > 0.98
    needle = np.array([1.0 if (x, y) == (0.5, 0.5) else 0.05 for x, y in grid])
    assert plateau_score(params, needle, best, space, radius=0.1)["score"] == pytest.approx(0.05)


def test_plateau_score_neighbours_by_hand():
    space = {"n": (0, 10), "mode": ["a", "b"]}
    params = [
        {"n": 5, "mode": "a"},  # the best: 2.0
        {"n": 6, "mode": "a"},  # |1| <= 0.1 * 10: neighbour, 1.0
        {"n": 4, "mode": "a"},  # neighbour, 1.6
        {"n": 4.5, "mode": "a"},  # neighbour, 1.2
        {"n": 5, "mode": "b"},  # other category: not a neighbour
        {"n": 7, "mode": "a"},  # too far
        {"n": 5.5, "mode": "a"},  # pruned (NaN): not completed
    ]
    values = np.array([2.0, 1.0, 1.6, 1.2, 5.0, 1.9, np.nan])
    res = plateau_score(params, values, {"n": 5, "mode": "a"}, space, radius=0.1)
    assert res["n_neighbours"] == 3 and res["median_value"] == 1.2 and res["best_value"] == 2.0
    assert res["score"] == pytest.approx(0.6)
    lonely = plateau_score(params, values, {"n": 5, "mode": "a"}, space, radius=0.01)
    assert lonely["score"] is None and "widen radius" in lonely["note"]
    with pytest.raises(MaestroError, match="not among"):
        plateau_score(params, values, {"n": 3, "mode": "a"}, space)
