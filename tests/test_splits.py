"""Walk-forward splits: disjoint, ordered, on a stable grid, and a clear error when data is too short."""

from __future__ import annotations

import pytest

from maestro_pipeline.errors import MaestroError
from maestro_pipeline.splits import next_split_ready_ms, walk_forward_splits
from maestro_pipeline.timeframes import DAY_MS, HOUR_MS

START = 1_735_689_600_000  # 2025-01-01 00:00 UTC


def _splits(days: float, **kw):
    args = dict(train_ms=40 * DAY_MS, test_ms=10 * DAY_MS, n_splits=4, timeframe_ms=HOUR_MS)
    args.update(kw)
    return walk_forward_splits(START, START + int(days * DAY_MS), **args)


def test_disjoint_ordered_and_tiling():
    sp = _splits(200)
    assert len(sp) == 4
    for s in sp:
        assert s.train_start < s.train_end <= s.test_start < s.test_end
        assert s.train_end - s.train_start == 40 * DAY_MS and s.test_end - s.test_start == 10 * DAY_MS
    for a, b in zip(sp, sp[1:]):
        assert a.test_end == b.test_start  # test windows tile the OOS period, no overlap, no hole
    assert sp[-1].test_end <= START + 200 * DAY_MS
    assert [s.index for s in sp] == [0, 1, 2, 3]


def test_grid_is_stable_as_data_grows():
    before = _splits(200)
    after = _splits(200 + 9.9)   # not a whole new test window yet: identical splits
    assert after == before
    grown = _splits(210)         # one whole test window more: one new split, older ones keep boundaries
    assert grown[-1].test_start == before[-1].test_end
    assert [(s.train_start, s.test_start) for s in grown[:-1]] == [(s.train_start, s.test_start) for s in before[1:]]
    assert next_split_ready_ms(before, 10 * DAY_MS) == grown[-1].test_end


def test_anchored_and_purge():
    sp = _splits(200, scheme="anchored", purge_ms=2 * DAY_MS)
    assert len({s.train_start for s in sp}) == 1  # expanding: same start
    for s in sp:
        assert s.test_start - s.train_end == 2 * DAY_MS


def test_first_day_is_whole():
    sp = walk_forward_splits(START + 5 * HOUR_MS, START + 100 * DAY_MS, train_ms=40 * DAY_MS, test_ms=10 * DAY_MS,
                             n_splits=50, timeframe_ms=HOUR_MS)
    assert sp[0].train_start == START + DAY_MS


def test_too_little_data_is_a_clear_error():
    with pytest.raises(MaestroError, match=r"not enough data for one walk-forward split: need about 51 days"):
        _splits(45)
