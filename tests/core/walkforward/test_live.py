"""The live split (next grid window, what to trade now) and its early re-optimization on a regime shift."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from maestro_pipeline.config import RegimesConfig, WalkForwardConfig
from maestro_pipeline.timeframes import DAY_MS
from maestro_pipeline.walkforward import live_split, make_splits, plan_research
from tests.support.bars import regime_bars

START = 1_735_689_600_000  # 2025-01-01 00:00 UTC


WF = WalkForwardConfig(train="60d", test="30d", n_splits=3)


def test_live_split_is_the_next_grid_window():
    bars = regime_bars(205)
    splits, _ = make_splits(bars, "1h", WF)
    plan = live_split(bars, splits, "1h", WF, None)
    last = splits[-1]
    assert plan.reason == "grid"
    assert (plan.split.test_start, plan.split.train_end) == (last.test_end, last.test_end)
    assert plan.split.test_end - plan.split.test_start == 30 * DAY_MS
    assert plan.split.train_end - plan.split.train_start == 60 * DAY_MS
    # a month later the live split is a complete split with the same windows
    later, _ = make_splits(regime_bars(235), "1h", WF)
    assert later[-1].as_dict() | {"index": 0} == plan.split.as_dict() | {"index": 0}


def test_live_split_in_calendar_months_and_anchored():
    bars = regime_bars(200)
    wf = WalkForwardConfig(train="2M", test="1M", n_splits=2, scheme="anchored")
    splits, _ = make_splits(bars, "1h", wf)
    plan = live_split(bars, splits, "1h", wf, None)
    assert plan.split.train_start == splits[0].train_start  # anchored: from the first day
    assert plan.split.test_start == splits[-1].test_end
    start = datetime.fromtimestamp(plan.split.test_start / 1000, tz=UTC)
    end = datetime.fromtimestamp(plan.split.test_end / 1000, tz=UTC)
    assert (start.day, start.hour, end.day) == (1, 0, 1) and (end.month - start.month) % 12 == 1


def test_a_confirmed_regime_shift_moves_the_live_split_once():
    regimes = RegimesConfig(min_days=3)
    calm = regime_bars(205)
    splits, _ = make_splits(calm, "1h", WF)
    grid_end = splits[-1].test_end
    switch = (grid_end - START) // DAY_MS + 6          # volatility jumps 6 days after the live train window ends
    assert live_split(calm, splits, "1h", WF, regimes).reason == "grid"
    shifted = regime_bars(205, switch_day=switch)
    assert shifted.filter(pl.col("timestamp") < grid_end).equals(calm.filter(pl.col("timestamp") < grid_end))
    plan = live_split(shifted, splits, "1h", WF, regimes)
    assert plan.reason.startswith("re-optimized early: regime 0 -> 1"), plan.reason
    confirmed = plan.split.train_end
    assert START + switch * DAY_MS < confirmed <= START + (switch + 6) * DAY_MS  # a few days after the switch
    assert plan.split.test_start == confirmed and plan.split.train_end - plan.split.train_start == 60 * DAY_MS
    # more days of the new regime do not move it again: the sensor fires once
    longer = regime_bars(208, switch_day=switch)
    assert live_split(longer, splits, "1h", WF, regimes).split.train_end == confirmed
    # and no future bar was read to decide it: cutting the data right after confirmation gives the same answer
    cut = shifted.filter(pl.col("timestamp") < confirmed)
    assert live_split(cut, splits, "1h", WF, regimes).split.train_end == confirmed


def test_plan_research_table_has_the_live_row_and_regimes():
    bars = regime_bars(205, switch_day=150)
    splits, table, plan = plan_research(bars, "1h", WF, max_gap="6h", regimes=RegimesConfig())
    assert table.height == len(splits) == 4 and table["live"].to_list() == [False, False, False, True]
    # each split's regimes come from a model fitted before its own train end: the calm test window is regime 0,
    # the one inside the late volatile stretch regime 1
    done = table.filter(~pl.col("live")).sort("split")
    first_test = (done["test_start"][0] - START) // DAY_MS
    assert first_test < 150 and done["test_regime"][0] == 0
    assert (done["test_start"][-1] - START) // DAY_MS >= 150 and done["test_regime"][-1] == 1
    assert table["test_bars"][-1] < table["test_bars"][0]  # the live test window is still filling


def test_too_little_history_for_regimes_is_said_not_raised():
    bars = regime_bars(100)
    wf = WalkForwardConfig(train="20d", test="10d", n_splits=2)
    splits, table, plan = plan_research(bars, "1h", wf, max_gap="6h", regimes=RegimesConfig(min_fit_days=200))
    assert plan.reason == "grid" and "need" in plan.regime["regime_note"]
    assert table["train_regime"].null_count() == table.height and table["regime_note"].str.len_chars().min() > 0


@pytest.mark.parametrize("mode", ["parts"])
def test_parts_mode_has_no_live_split(mode):
    bars = regime_bars(120)
    wf = WalkForwardConfig(mode=mode, n_splits=3, train_parts=2, test_parts=1)
    splits, _ = make_splits(bars, "1h", wf)
    assert live_split(bars, splits, "1h", wf, None).split is None
