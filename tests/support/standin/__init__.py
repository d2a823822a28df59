"""A local Binance stand-in for tests: the real ``ccxt.binance`` client, a real HTTP server on 127.0.0.1.

Use the ``standin`` fixture (tests/conftest.py) or :func:`start` for scripts. See
:mod:`tests.support.standin.server` for the endpoints and the faults it can inject.
"""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from tests.support.config import NOW_MS

from .server import FAULTS, Listing, StandIn

__all__ = ["FAULTS", "Listing", "StandIn", "real_listing", "start", "synthetic_listings"]


def synthetic_listings(seed: int = 7) -> list[Listing]:
    """Spot BTC/USDT and ETH/USDT and the XRP/USDT:USDT perpetual, from the embedded market."""
    return [Listing("BTC/USDT", seed=seed), Listing("ETH/USDT", seed=seed), Listing("XRP/USDT:USDT", seed=seed)]


def real_listing(symbol: str, parquet: str | Path, datasets: str | Path | None = None) -> Listing:
    """A listing that replays a MAESTRO_DATASETS Parquet file (timestamp, open, high, low, close, volume)."""
    folder = Path(datasets or os.environ["MAESTRO_DATASETS"])
    df = pl.read_parquet(folder / parquet).select("timestamp", "open", "high", "low", "close", "volume")
    return Listing(symbol, bars=df)


def start(listings: list[Listing] | None = None, now_ms: int | None = None, slow_s: float = 3.0) -> StandIn:
    """Start a stand-in (synthetic listings by default); call ``.close()`` when done."""
    return StandIn(listings or synthetic_listings(), now_ms if now_ms is not None else NOW_MS, slow_s=slow_s)

