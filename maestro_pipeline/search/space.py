"""The search space a split may search: window-like parameters cut to fit the split's train window.

An indicator longer than half the train window leaves too few bars with a valid signal to judge the parameter
on, so those values are not searched (the cut is recorded with the split); a space whose LOW end is already too
long is refused with the fix. :func:`max_warmup` is how much history before a window the space can need.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from ..errors import MaestroError
from ..strategies import Categorical, FloatParam, IntParam, Strategy, get_strategy
from ..walkforward import Split

__all__ = [
    "WINDOW_WORDS", "check_window_fits", "fitted_space", "is_window_param", "max_warmup", "shortest_train_bars",
    "window_params_over",
]

#: An integer parameter is a look-back window when its name is or ends with one of these words
#: (``slow``, ``exit_lookback``, ``bb_window``, ``premium_span``; Ichimoku's periods by name).
WINDOW_WORDS: tuple[str, ...] = (
    "period", "window", "length", "lookback", "span", "slow", "fast", "memory", "tenkan", "kijun", "senkou",
)


def is_window_param(name: str) -> bool:
    return name.lower().endswith(WINDOW_WORDS)


def window_params_over(strategy: Strategy | str, train_bars: int) -> dict[str, int]:
    """Window-like integer parameters of ``strategy``'s search space (a ``Strategy`` or its name) whose upper
    bound is longer than half of ``train_bars``: ``{name: high}``. An indicator that long leaves the train
    window too few bars with a valid signal to judge the parameter on."""
    strat = get_strategy(strategy) if isinstance(strategy, str) else strategy
    limit = int(train_bars) // 2
    return {name: int(p.high) for name, p in strat.space.items()
            if isinstance(p, IntParam) and is_window_param(name) and p.high > limit}


def check_window_fits(strategy: Strategy | str, train_bars: int) -> None:
    """Refuse (one-line ``MaestroError``) a search space that does not fit the shortest train window."""
    over = window_params_over(strategy, train_bars)
    if over:
        name = strategy if isinstance(strategy, str) else strategy.name
        limit = int(train_bars) // 2
        worst = max(over.values())
        what = ", ".join(f"{p} up to {hi}" for p, hi in over.items())
        fix = " and ".join(f"lower {p}'s high to {limit}" for p in over)
        raise MaestroError(
            f"strategy {name}: {what} bars is longer than half the shortest train window ({train_bars} bars); "
            f"{fix} or lengthen train to at least {2 * worst} bars"
        )


def shortest_train_bars(splits: list[Split], ts: np.ndarray) -> int:
    """Fewest bars any split trains on (bars in embargo zones do not count)."""
    ts = np.asarray(ts, dtype=np.int64)

    def count(a: int, b: int) -> int:
        i, j = np.searchsorted(ts, [a, b], side="left")
        return int(j - i)

    return min(count(s.train_start, s.train_end) - sum(count(a, b) for a, b in s.exclude) for s in splits)


def max_warmup(strategy: Strategy) -> int:
    """Warm-up for the most demanding point of the space: how much history before a window matters."""
    hi: dict[str, Any] = {}
    for name, p in strategy.space.items():
        if isinstance(p, (IntParam, FloatParam)):
            hi[name] = p.high
        elif isinstance(p, Categorical):
            hi[name] = p.choices[-1]
    try:
        return int(strategy.warmup({**strategy.defaults, **hi}))
    except Exception:  # a strategy whose warm-up needs a valid combination: fall back to its defaults
        return int(strategy.warmup(dict(strategy.defaults)))



def fitted_space(strategy: Strategy, train_bars: int) -> tuple[Strategy, dict[str, list[int]]]:
    """The strategy with every window-like parameter's upper bound cut to half the train window.

    An indicator longer than half the window leaves too few bars with a valid signal to judge it on, so those
    values are not searched (the cut is recorded with the split). A space whose LOW end is already too long
    cannot be searched at all and is refused with the fix (``splits.check_window_fits``).
    """
    over = window_params_over(strategy, train_bars)
    if not over:
        return strategy, {}
    limit = int(train_bars) // 2
    if any(strategy.space[p].low > limit for p in over):
        check_window_fits(strategy, train_bars)
    space = dict(strategy.space)
    cut = {}
    for name in over:
        p = space[name]
        space[name] = IntParam(p.low, limit, p.step)
        cut[name] = [int(p.high), limit]
    clone = copy.copy(strategy)
    clone.space = space
    return clone, cut

