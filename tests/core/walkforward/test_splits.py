"""Walk-forward split planning: disjoint, ordered, on a stable grid; calendar months, bar counts and the old
engine's parts; purge and embargo; volatility-adaptive train windows; clear errors.

Expected boundaries are computed by hand (or with ``datetime``), never by the planner itself.
"""

from __future__ import annotations

import dataclasses
import json
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest

from maestro_pipeline.config import WalkForwardConfig, parse_config, parse_section
from maestro_pipeline.durations import Length, add_months, parse_length
from maestro_pipeline.errors import ConfigError, MaestroError
from maestro_pipeline.search import check_window_fits, shortest_train_bars, window_params_over
from maestro_pipeline.strategies import FloatParam, IntParam
from maestro_pipeline.timeframes import DAY_MS, HOUR_MS
from maestro_pipeline.walkforward import Split, make_splits, next_test_end_ms, plan_splits, splits_from_table
from tests.support.config import ms, small_config

START = 1_735_689_600_000  # 2025-01-01 00:00 UTC


def hourly(start: int, end: int) -> np.ndarray:
    """Open times of every 1h bar in [start, end)."""
    return np.arange(start, end, HOUR_MS, dtype=np.int64)


def wf(over: dict) -> WalkForwardConfig:
    return parse_section(WalkForwardConfig, over, "walk_forward")


def _splits(days: float, **kw):
    return plan_splits(hourly(START, START + int(days * DAY_MS)), None, "1h",
                       wf({"train": "40d", "test": "10d", "n_splits": 4, **kw}))


def _check_basic(sp: list[Split]) -> None:
    for s in sp:
        assert s.train_start < s.train_end <= s.test_start < s.test_end
    for a, b in zip(sp, sp[1:], strict=False):
        assert a.test_end <= b.test_start and a.train_start <= b.train_start
    assert [s.index for s in sp] == list(range(len(sp)))


# ---------------------------------------------------------------------------------------------------
# the fixed-length grid (unchanged behaviour)
# ---------------------------------------------------------------------------------------------------
def test_disjoint_ordered_and_tiling():
    sp = _splits(200)
    assert len(sp) == 4
    _check_basic(sp)
    for s in sp:
        assert s.train_end - s.train_start == 40 * DAY_MS and s.test_end - s.test_start == 10 * DAY_MS
    for a, b in zip(sp, sp[1:], strict=False):
        assert a.test_end == b.test_start  # test windows tile the OOS period, no overlap, no hole
    # 200 days: test windows start at day 40, 50, ...; the last complete one is [190, 200)
    assert [(s.test_start - START) // DAY_MS for s in sp] == [160, 170, 180, 190]


def test_grid_is_stable_as_data_grows():
    before = _splits(200)
    after = _splits(200 + 9.9)   # not a whole new test window yet: identical splits
    assert after == before
    grown = _splits(210)         # one whole test window more: one new split, older ones keep boundaries
    assert grown[-1].test_start == before[-1].test_end
    assert [(s.train_start, s.test_start) for s in grown[:-1]] == [(s.train_start, s.test_start) for s in before[1:]]
    assert next_test_end_ms(before, "1h", wf({"train": "40d", "test": "10d"})) == grown[-1].test_end


def test_anchored_and_purge():
    sp = _splits(200, scheme="anchored", purge="2d")
    assert {s.train_start for s in sp} == {START}  # expanding: same start, the origin
    for s in sp:
        assert s.test_start - s.train_end == 2 * DAY_MS


def test_first_day_is_whole():
    sp = plan_splits(hourly(START + 5 * HOUR_MS, START + 100 * DAY_MS), None, "1h",
                     wf({"train": "40d", "test": "10d", "n_splits": 50}))
    assert sp[0].train_start == START + DAY_MS


def test_too_little_data_is_a_clear_error():
    # train 40d + test 10d from 2025-01-01 needs data to 2025-02-20: 50 days; 45 are there
    with pytest.raises(MaestroError,
                       match=r"not enough data for one walk-forward split: need about 50 days .*2025-02-20"):
        _splits(45)
    with pytest.raises(MaestroError, match="not enough data"):
        plan_splits(hourly(START, START + 45 * DAY_MS), None, "1h", wf({"train": "40d", "test": "10d"}))


# ---------------------------------------------------------------------------------------------------
# lengths: bar counts, calendar months, step
# ---------------------------------------------------------------------------------------------------
def test_bar_count_lengths_are_exact():
    ts = hourly(START, START + 60 * DAY_MS)  # 1440 bars
    sp = plan_splits(ts, None, "1h", wf({"train": 500, "test": "100", "n_splits": 3}))
    # grid: test k starts at bar 500 + 100k; complete while 600 + 100k <= 1440 -> k = 0..8, the last 3 are 6, 7, 8
    assert [(s.test_start - START) // HOUR_MS for s in sp] == [1100, 1200, 1300]
    for s in sp:
        assert np.count_nonzero((ts >= s.train_start) & (ts < s.train_end)) == 500
        assert np.count_nonzero((ts >= s.test_start) & (ts < s.test_end)) == 100
        assert s.train_end == s.test_start


def test_calendar_months_are_the_real_months():
    ts = hourly(ms(2024, 11, 1), ms(2025, 5, 1))
    sp = plan_splits(ts, None, "1h", wf({"train": "3M", "test": "1mo", "n_splits": 10}))
    assert [(s.test_start, s.test_end) for s in sp] == [
        (ms(2025, 2, 1), ms(2025, 3, 1)), (ms(2025, 3, 1), ms(2025, 4, 1)), (ms(2025, 4, 1), ms(2025, 5, 1))]
    assert [s.train_start for s in sp] == [ms(2024, 11, 1), ms(2024, 12, 1), ms(2025, 1, 1)]
    assert [s.train_end for s in sp] == [s.test_start for s in sp]
    # data starting mid-month: origin is the next whole day (Nov 16), + 3 months = Feb 16, snapped to Mar 1
    late = plan_splits(hourly(ms(2024, 11, 15, 5), ms(2025, 5, 1)), None, "1h",
                       wf({"train": "3M", "test": "1M", "n_splits": 10}))
    assert [s.test_start for s in late] == [ms(2025, 3, 1), ms(2025, 4, 1)]
    assert late[0].train_start == ms(2024, 12, 1) >= ms(2024, 11, 16)


def test_month_units_and_arithmetic():
    assert parse_length("1y") == parse_length("12M") == parse_length("12mo") == Length(12, "months")
    assert parse_length("6m") == Length(6 * 60_000, "ms")  # lower-case m stays minutes
    assert parse_length(500) == parse_length("500") == parse_length("500bars") == Length(500, "bars")
    assert add_months(ms(2024, 1, 31, 7), 1) == ms(2024, 2, 29, 7)  # clamped to the leap-year February
    assert add_months(ms(2025, 3, 31), -1) == ms(2025, 2, 28)
    assert add_months(ms(2024, 11, 15), 14) == ms(2026, 1, 15)


def test_step_longer_than_test_leaves_gaps_and_month_step_with_short_test():
    ts = hourly(START, START + 120 * DAY_MS)
    sp = plan_splits(ts, None, "1h", wf({"train": "30d", "test": "10d", "step": "15d", "n_splits": 20}))
    _check_basic(sp)
    # test k starts at day 30 + 15k and needs 10 days: 40 + 15k <= 120 -> k = 0..5
    assert [(s.test_start - START) // DAY_MS for s in sp] == [30, 45, 60, 75, 90, 105]
    assert all(s.test_end - s.test_start == 10 * DAY_MS for s in sp)
    weekly = plan_splits(hourly(ms(2025, 1, 1), ms(2025, 6, 1)), None, "1h",
                         wf({"train": "30d", "test": "7d", "step": "1M", "n_splits": 9}))
    assert [(s.test_start, s.test_end) for s in weekly] == [(ms(2025, m, 1), ms(2025, m, 8)) for m in (2, 3, 4, 5)]


def test_step_shorter_than_test_is_refused():
    ts = hourly(START, START + 200 * DAY_MS)
    with pytest.raises(MaestroError, match=r"^maestro.yaml: walk_forward: step 20d is shorter than test 30d: "
                                           r"test windows would overlap"):
        plan_splits(ts, None, "1h", wf({"train": "40d", "test": "30d", "step": "20d"}))
    with pytest.raises(MaestroError, match="step 1M is shorter than test 2M"):
        plan_splits(ts, None, "1h", wf({"train": "40d", "test": "2M", "step": "1M"}))
    with pytest.raises(MaestroError, match="step 30d is shorter than test 1M"):  # a 31-day month would overlap
        plan_splits(ts, None, "1h", wf({"train": "40d", "test": "1M", "step": "30d"}))
    with pytest.raises(MaestroError, match="step 10 bars is shorter than test 1d"):
        plan_splits(ts, None, "1h", wf({"train": "40d", "test": "1d", "step": 10}))
    assert len(plan_splits(ts, None, "1h", wf({"train": "40d", "test": "1M", "step": "31d", "n_splits": 99}))) > 1


def test_unknown_unit_and_bad_lengths_are_one_line_errors():
    ts = hourly(START, START + 200 * DAY_MS)
    with pytest.raises(MaestroError, match=r"cannot read window length '3q': unknown unit 'q'; write a bar count"):
        plan_splits(ts, None, "1h", wf({"train": "3q"}))
    with pytest.raises(MaestroError, match=r"cannot read embargo '1 fortnight'"):
        plan_splits(ts, None, "1h", wf({"embargo": "1 fortnight"}))
    with pytest.raises(MaestroError, match="window length must be positive"):
        plan_splits(ts, None, "1h", wf({"test": 0}))
    with pytest.raises(MaestroError, match="shorter than one bar"):
        plan_splits(ts, None, "1h", wf({"test": "30m"}))
    with pytest.raises(MaestroError, match="walk_forward.scheme: Input should be 'rolling', 'anchored' or 'adaptive'"):
        plan_splits(ts, None, "1h", wf({"scheme": "expanding"}))
    with pytest.raises(MaestroError, match="adaptive scheme needs one close per bar"):
        plan_splits(ts, None, "1h", wf({"scheme": "adaptive"}))


# ---------------------------------------------------------------------------------------------------
# purge and embargo
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("purge, gap", [(24, 24 * HOUR_MS), ("36h", 36 * HOUR_MS), ("2d", 2 * DAY_MS)])
def test_purge_gap_is_exact(purge, gap):
    sp = plan_splits(hourly(START, START + 200 * DAY_MS), None, "1h",
                     wf({"train": "40d", "test": "10d", "purge": purge, "n_splits": 5}))
    _check_basic(sp)
    for s in sp:
        assert s.test_start - s.train_end == gap and s.train_end - s.train_start == 40 * DAY_MS


def test_purge_in_months():
    sp = plan_splits(hourly(ms(2024, 1, 1), ms(2024, 9, 1)), None, "1h",
                     wf({"train": "2M", "test": "1M", "purge": "1M", "n_splits": 3}))
    # first test: Jan 1 + 2M + 1M = Apr 1; the last three complete tests are Jun, Jul, Aug
    assert [(s.train_start, s.train_end, s.test_start) for s in sp] == [
        (ms(2024, 3, 1), ms(2024, 5, 1), ms(2024, 6, 1)),
        (ms(2024, 4, 1), ms(2024, 6, 1), ms(2024, 7, 1)),
        (ms(2024, 5, 1), ms(2024, 7, 1), ms(2024, 8, 1))]


def test_embargo_zones_by_hand():
    sp = plan_splits(hourly(START, START + 200 * DAY_MS), None, "1h",
                     wf({"train": "40d", "test": "10d", "embargo": "2d", "n_splits": 16}))
    # test k starts at day 40 + 10k (k = 0..15); earlier test ends inside split k's train [t-40d, t) are
    # t-40d (k >= 5), t-30d (k >= 4), t-20d (k >= 3), t-10d (k >= 2); each excludes the next 2 days
    assert len(sp) == 16
    for k, s in enumerate(sp):
        t = s.test_start
        want = [(t - m * DAY_MS, t - m * DAY_MS + 2 * DAY_MS) for m in (40, 30, 20, 10) if k >= m // 10 + 1]
        assert list(s.exclude) == want, k


def test_embargo_zones_touching_are_merged_and_anchored_lists_all():
    sp = plan_splits(hourly(START, START + 200 * DAY_MS), None, "1h",
                     wf({"train": "40d", "test": "10d", "embargo": "10d", "n_splits": 3}))
    for s in sp:  # zones [t-40d, t-30d), ..., [t-10d, t) touch: one zone covering the whole train window
        assert s.exclude == ((s.train_start, s.train_end),)
    anch = plan_splits(hourly(START, START + 100 * DAY_MS), None, "1h",
                       wf({"train": "40d", "test": "10d", "embargo": "1d", "scheme": "anchored", "n_splits": 6}))
    # tests start at day 40..90; split k's train [0, 40 + 10k) holds the ends of tests 0..k-2 at day 50, 60, ...
    for k, s in enumerate(anch):
        assert list(s.exclude) == [(START + d * DAY_MS, START + (d + 1) * DAY_MS) for d in range(50, 40 + 10 * k, 10)]


@pytest.mark.parametrize("scheme", ["rolling", "anchored"])
def test_no_train_bar_inside_an_earlier_embargo_zone(scheme):
    ts = hourly(START, START + 150 * DAY_MS)
    sp = plan_splits(ts, None, "1h", wf({"train": "30d", "test": "7d", "step": "8d", "embargo": "3d", "purge": "12h",
                                         "scheme": scheme, "n_splits": 40}))
    _check_basic(sp)
    for i, s in enumerate(sp):
        train = ts[(ts >= s.train_start) & (ts < s.train_end)]
        keep = np.ones(train.size, dtype=bool)
        for a, b in s.exclude:
            assert s.train_start <= a < b <= s.train_end
            keep &= ~((train >= a) & (train < b))
        used = train[keep]
        for e in sp[:i]:  # an earlier split's embargo zone
            assert not np.any((used >= e.test_end) & (used < e.test_end + 3 * DAY_MS))
        assert used.size > 0


def test_make_splits_table_round_trips_exclude():
    ts = hourly(START, START + 200 * DAY_MS)
    bars = pl.DataFrame({"timestamp": ts, "close": np.full(ts.size, 100.0)})
    wf = WalkForwardConfig(train="40d", test="10d", embargo="2d", n_splits=4)
    splits, table = make_splits(bars, "1h", wf)
    assert table["train_bars_excluded"].to_list() == [4 * 48] * 4  # four 2-day zones of hourly bars
    assert json.loads(table["exclude"][0]) == [list(z) for z in splits[0].exclude]
    assert table["train_bars"].to_list() == [960] * 4 and table["scheme"].to_list() == ["rolling"] * 4
    assert splits_from_table(table) == splits
    assert shortest_train_bars(splits, ts) == 960 - 192
    old = table.drop("exclude")  # a table written before this column existed
    assert splits_from_table(old) == [dataclasses.replace(s, exclude=()) for s in splits]


# ---------------------------------------------------------------------------------------------------
# the old engine's parts
# ---------------------------------------------------------------------------------------------------
def test_parts_mode_by_hand():
    ts = hourly(START + 3 * HOUR_MS, START + 24 * HOUR_MS + 103 * HOUR_MS)  # origin = START + 1 day; 103 h after it
    o = START + DAY_MS
    sp = plan_splits(ts, None, "1h", wf({"mode": "parts", "n_splits": 3, "train_parts": 2, "test_parts": 1}))
    # K = 3*1 + 2 = 5 parts of floor(103 / 5) = 20 h; split i trains on parts [i, i+2), tests on part i+2
    h = HOUR_MS
    assert [(s.train_start, s.train_end, s.test_start, s.test_end) for s in sp] == [
        (o, o + 40 * h, o + 40 * h, o + 60 * h), (o + 20 * h, o + 60 * h, o + 60 * h, o + 80 * h),
        (o + 40 * h, o + 80 * h, o + 80 * h, o + 100 * h)]
    sp2 = plan_splits(ts, None, "1h", wf({"mode": "parts", "n_splits": 2, "train_parts": 3, "test_parts": 2, "purge": 2,
                                          "scheme": "anchored"}))
    # K = 2*2 + 3 = 7 parts of floor(103 / 7) = 14 h; split i tests on parts [2i+3, 2i+5); purge 2 bars
    assert [(s.train_start, s.train_end, s.test_start, s.test_end) for s in sp2] == [
        (o, o + 40 * h, o + 42 * h, o + 70 * h), (o, o + 68 * h, o + 70 * h, o + 98 * h)]
    with pytest.raises(MaestroError,
                       match="not enough data for 200 splits in parts mode: 202 parts need at least 202 bars"):
        plan_splits(ts, None, "1h", wf({"mode": "parts", "n_splits": 200}))


# ---------------------------------------------------------------------------------------------------
# volatility-adaptive train windows
# ---------------------------------------------------------------------------------------------------
A = 0.01


def _closes(abs_returns: np.ndarray) -> np.ndarray:
    signs = np.where(np.arange(abs_returns.size) % 2 == 0, 1.0, -1.0)
    return 100.0 * np.exp(np.cumsum(signs * abs_returns))


def test_adaptive_window_holds_the_nominal_variance():
    ts = hourly(START, START + 80 * DAY_MS)
    t_end = START + 40 * DAY_MS  # the split whose test starts at day 40 (train 20d, test 5d: grid 20, 25, ...)
    j = int(np.searchsorted(ts, t_end))
    calm = np.full(ts.size, A)
    nominal = 480  # 20 days of hourly bars
    kw = dict(train="20d", test="5d", scheme="adaptive", n_splits=99)

    def window(closes):
        (s,) = [s for s in plan_splits(ts, closes, "1h", wf({**kw})) if s.test_start == t_end]
        return (s.train_end - s.train_start) // HOUR_MS

    assert window(_closes(calm)) == nominal  # constant variance: the nominal window
    vol = calm.copy()
    vol[j - 40:j] = 2.25 * A  # 40 volatile bars right before train_end: r^2 = 5.0625 a^2 each
    # the 959 returns before train_end average (919 + 202.5) / 959 a^2; target 480 x that = 561.3 a^2
    # = 202.5 a^2 (the 40 volatile bars) + 358.8 a^2 -> 359 calm bars: 399 bars in all
    assert window(_closes(vol)) == 399 < nominal
    wild = calm.copy()
    wild[j - 300:j] = 3 * A  # 9 a^2 each: target 480 x 3659/959 a^2 takes 187 bars, clamped to half the window
    assert window(_closes(wild)) == nominal // 2
    quiet = np.full(ts.size, 2 * A)  # volatile history (4 a^2), calm recently
    quiet[j - 200:j] = A
    # mean (759 x 4 + 200) / 959 a^2; target 480 x that = 1619.7 a^2: 200 calm bars give 200 a^2, the other
    # 1419.7 a^2 take 355 volatile bars
    assert window(_closes(quiet)) == 555 > nominal
    later = START + 60 * DAY_MS  # 1439 returns before it; the last 1200 very calm (a^2 / 16)
    quiet = np.full(ts.size, 2 * A)
    quiet[j + 480 - 1200:j + 480] = A / 4
    # mean (239 x 4 + 1200 / 16) / 1439 a^2; target 343.9 a^2 = 75 a^2 + 68 volatile bars: 1268 > 960 bars
    (s,) = [s for s in plan_splits(ts, _closes(quiet), "1h", wf({**kw})) if s.test_start == later]
    assert s.train_end - s.train_start == 2 * nominal * HOUR_MS  # clamped to twice the nominal window


def test_adaptive_never_reads_at_or_after_train_end():
    rng = np.random.default_rng(5)
    ts = hourly(START, START + 90 * DAY_MS)
    closes = _closes(A * (0.5 + rng.random(ts.size)))
    kw = dict(train="20d", test="5d", scheme="adaptive", embargo="1d", n_splits=99)
    base = plan_splits(ts, closes, "1h", wf({**kw}))
    assert len({s.train_end - s.train_start for s in base}) > 1  # the windows really adapt
    for s in base[:-1]:
        changed = closes.copy()
        after = ts >= s.train_end
        changed[after] *= np.exp(rng.normal(0, 0.2, after.sum()))  # a wild future, including the bar at train_end
        again = {x.test_start: x for x in plan_splits(ts, changed, "1h", wf({**kw}))}
        assert again[s.test_start] == s
    for s in base:
        assert s.train_end - 40 * DAY_MS <= s.train_start <= s.train_end - 10 * DAY_MS and s.train_start >= START


# ---------------------------------------------------------------------------------------------------
# stability as data grows
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("scheme", ["rolling", "anchored", "adaptive"])
def test_appending_a_month_keeps_earlier_splits(scheme):
    rng = np.random.default_rng(9)
    ts = hourly(ms(2024, 1, 1), ms(2025, 1, 1))
    closes = _closes(A * (0.2 + rng.random(ts.size)))
    kw = dict(train="3M", test="1M", embargo="3d", purge="1d", scheme=scheme, n_splits=4)
    short = ts < ms(2024, 12, 1)
    before = plan_splits(ts[short], closes[short], "1h", wf({**kw}))
    grown = plan_splits(ts, closes, "1h", wf({**kw}))
    assert grown[-1].test_start == ms(2024, 12, 1) and grown[-1].test_end == ms(2025, 1, 1)
    strip = lambda sp: [dataclasses.replace(s, index=0) for s in sp]  # noqa: E731 - index is the position
    assert strip(grown[:-1]) == strip(before[1:])
    assert next_test_end_ms(before, "1h", wf(kw)) == grown[-1].test_end


# ---------------------------------------------------------------------------------------------------
# parameters vs windows
# ---------------------------------------------------------------------------------------------------
def test_param_space_must_fit_half_the_train_window():
    assert window_params_over("ema_cross", 400) == {"slow": 240}  # fast 2..60, slow 10..240
    assert window_params_over("ema_cross", 480) == {}
    with pytest.raises(MaestroError, match=r"^strategy ema_cross: slow up to 240 bars .* \(400 bars\); "
                                           r"lower slow's high to 200 or lengthen train to at least 480 bars$"):
        check_window_fits("ema_cross", 400)
    check_window_fits("ema_cross", 480)
    custom = SimpleNamespace(name="custom", space={
        "rsi_window": IntParam(2, 300), "exit_lookback": IntParam(2, 120), "levels": IntParam(1, 900),
        "k": FloatParam(0.1, 900.0), "period": IntParam(5, 50)})
    assert window_params_over(custom, 200) == {"rsi_window": 300, "exit_lookback": 120}


# ---------------------------------------------------------------------------------------------------
# config
# ---------------------------------------------------------------------------------------------------
def test_config_new_fields_and_one_line_errors():
    cfg = parse_config(small_config("lake", walk_forward={
        "scheme": "adaptive", "train": "6M", "test": "1M", "step": "2M", "embargo": "2d", "purge": 12, "n_splits": 3}))
    wf = cfg.walk_forward
    assert (wf.scheme, wf.step, wf.embargo, wf.mode) == ("adaptive", "2M", "2d", "calendar")
    parts = parse_config(small_config("lake", walk_forward={"mode": "parts", "n_splits": 10, "train_parts": 2,
                                                            "test_parts": 1}))
    assert parts.walk_forward.train_parts == 2
    assert WalkForwardConfig().embargo == 0 and WalkForwardConfig().step is None
    for bad, msg in [
        ({"test": "30d", "step": "20d"}, "walk_forward: step 20d is shorter than test 30d"),
        ({"train": "10q"}, "walk_forward.train: cannot read window length '10q': unknown unit 'q'"),
        ({"embargo": "-1d"}, "walk_forward.embargo: cannot read embargo '-1d'"),
        ({"scheme": "expanding"}, "walk_forward.scheme: "),
        ({"mode": "folds"}, "walk_forward.mode: "),
        ({"test_parts": 0}, "walk_forward.test_parts: "),
    ]:
        with pytest.raises(ConfigError) as e:
            parse_config(small_config("lake", walk_forward=bad))
        assert msg in str(e.value) and "\n" not in str(e.value)


def test_make_splits_with_parts_and_month_config():
    ts = hourly(ms(2024, 11, 1), ms(2025, 5, 1))
    bars = pl.DataFrame({"timestamp": ts, "close": _closes(np.full(ts.size, A))})
    splits, table = make_splits(bars, "1h", WalkForwardConfig(train="3M", test="1M", n_splits=3))
    assert table["test_from"].to_list() == ["2025-02-01 00:00", "2025-03-01 00:00", "2025-04-01 00:00"]
    assert table["test_bars"].to_list() == [28 * 24, 31 * 24, 30 * 24]
    _, parts = make_splits(bars, "1h", WalkForwardConfig(mode="parts", n_splits=4, train_parts=2, test_parts=1))
    assert parts.height == 4 and (parts["train_end"] <= parts["test_start"]).all()
