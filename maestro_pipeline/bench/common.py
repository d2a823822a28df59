"""What every bench module shares: a row of the printed table, the timing rule, and the year of bars."""

from __future__ import annotations

import contextlib
import gc
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from ..cli import ensure_dagster_home, run_graph
from ..config import load_config
from ..market import SyntheticMarket
from ..timeframes import HOUR_MS

__all__ = ["YEAR_START", "Row", "best_of", "dagster_home", "timed_graph", "year_of_bars"]

YEAR_START = datetime(2025, 1, 1, tzinfo=UTC)


@dataclass
class Row:
    what: str
    ours: float
    reference: float | None  # None: nothing comparable was measured
    unit: str
    note: str = ""

    def line(self) -> str:
        if self.reference is None:
            return f"| {self.what} | {self.ours:,.3f} {self.unit} | — | — | {self.note} |"
        ratio = self.ours / self.reference if self.reference else float("nan")
        return (f"| {self.what} | {self.ours:,.3f} {self.unit} | {self.reference:,.3f} {self.unit} | {ratio:,.2f}x "
                f"| {self.note} |")


def best_of(fn, repeat: int = 5) -> float:
    """The fastest of ``repeat`` calls, with the garbage collector paused as ``timeit`` does (a collection of the
    bench's own objects is not the code under test)."""
    best = float("inf")
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeat):
            t = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t)
    finally:
        if was_enabled:
            gc.enable()
    return best


def year_of_bars() -> pl.DataFrame:
    since = int(YEAR_START.timestamp() * 1000)
    m = SyntheticMarket(seed=7, now_ms=since + 400 * 24 * HOUR_MS)
    return m.fetch("BTC/USDT", "1h", since, since + 365 * 24 * HOUR_MS)






@contextlib.contextmanager
def dagster_home(path: str | Path) -> Iterator[None]:
    """``DAGSTER_HOME`` set to ``path`` for the block, then as it was (unset if it was unset)."""
    old = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(path)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = old


def timed_graph(cfg_path: Path, home: Path) -> tuple[float, Any]:
    """The demo graph (``run_graph``) of ``cfg_path`` on a fresh Dagster instance in ``home``: seconds and its run."""
    with dagster_home(home):
        ensure_dagster_home(load_config(cfg_path))
        t0 = time.perf_counter()
        result = run_graph(cfg_path, log=lambda *_: None)
        return time.perf_counter() - t0, result
