"""Walk-forward splits on a fixed calendar grid.

Windows are placed on a grid anchored at the instrument's first day (not at the newest bar), so when new data
arrives the existing splits keep their exact boundaries and only a new split appears once a whole new test
window is available. That is what lets the re-optimization sensor fire only when it matters and lets finished
splits be reused. Train and test are half-open ``[start, end)`` millisecond ranges that never overlap; an
optional purge drops bars between train end and test start, an embargo adds a gap after each test window
before the next split's train data may begin (anchored scheme) — both only ever shrink train data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from .errors import MaestroError
from .timeframes import DAY_MS

Scheme = Literal["rolling", "anchored"]


@dataclass(frozen=True)
class Split:
    index: int
    train_start: int
    train_end: int
    test_start: int
    test_end: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def walk_forward_splits(
    data_start_ms: int,
    data_end_ms: int,
    *,
    train_ms: int,
    test_ms: int,
    n_splits: int,
    scheme: Scheme = "rolling",
    purge_ms: int = 0,
    timeframe_ms: int,
) -> list[Split]:
    """The ``n_splits`` most recent complete splits in ``[data_start_ms, data_end_ms)``.

    ``data_end_ms`` is exclusive (last bar's open + one bar). Test windows step by ``test_ms`` so test windows
    tile the out-of-sample period without overlap; each train window ends ``purge_ms`` before its test window.
    Raises a one-line ``MaestroError`` when the data cannot hold even one split.
    """
    if n_splits < 1:
        raise MaestroError("n_splits must be at least 1")
    if train_ms < timeframe_ms or test_ms < timeframe_ms:
        raise MaestroError("train and test windows must each hold at least one bar")
    if purge_ms < 0:
        raise MaestroError("purge must not be negative")
    origin = data_start_ms - data_start_ms % DAY_MS
    if origin < data_start_ms:
        origin += DAY_MS  # first whole UTC day with data, so the first train window is full
    first_test = origin + train_ms + purge_ms
    if first_test + test_ms > data_end_ms:
        have_days = (data_end_ms - data_start_ms) / DAY_MS
        need_days = (train_ms + purge_ms + test_ms) / DAY_MS + 1
        raise MaestroError(
            f"not enough data for one walk-forward split: need about {need_days:.0f} days "
            f"(train + purge + test), have {have_days:.1f}; shorten train/test or backfill earlier months"
        )
    n_complete = (data_end_ms - first_test) // test_ms
    first_k = max(0, n_complete - n_splits)
    out: list[Split] = []
    for i, k in enumerate(range(first_k, n_complete)):
        test_start = first_test + k * test_ms
        train_end = test_start - purge_ms
        train_start = origin if scheme == "anchored" else train_end - train_ms
        out.append(Split(i, train_start, train_end, test_start, test_start + test_ms))
    return out


def next_split_ready_ms(splits: list[Split], test_ms: int) -> int:
    """Data must reach (exclusive end) this instant before a new complete split exists."""
    if not splits:
        raise MaestroError("no splits yet")
    return splits[-1].test_end + test_ms
