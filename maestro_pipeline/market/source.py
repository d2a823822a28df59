"""The one interface every market source implements: the embedded market, any ccxt exchange, users' files.

Ingestion (:mod:`.ingest`, :mod:`.derivatives`) talks to this protocol only. A source names itself (``SOURCE``,
written into every row), serves completed bars by range, and says whether it has perpetual-futures history;
the defaults below are what a source without that history answers.
"""

from __future__ import annotations

from typing import Protocol

import polars as pl

from ..errors import MaestroError

__all__ = ["MarketSource"]


class MarketSource(Protocol):
    """Bars (and, where the source has them, funding rates and open interest) for one source."""

    #: The ``source`` column of every row this source produces (an exchange id, ``synthetic``, ``file:<name>``).
    SOURCE: str

    def fetch(self, symbol: str, timeframe: str, since_ms: int, until_ms: int) -> pl.DataFrame:
        """Completed bars with ``since_ms <= timestamp < until_ms`` in the bar schema, ascending."""
        ...

    def data_end_ms(self, symbol: str, timeframe: str) -> int | None:
        """Where the source's data ends for good (a file's last bar close), or None when it keeps growing."""
        return None

    def has_funding_rates(self) -> bool:
        """Whether :meth:`fetch_funding_rates` can return history."""
        return False

    def has_open_interest(self) -> bool:
        """Whether :meth:`fetch_open_interest` can return history."""
        return False

    def fetch_funding_rates(self, symbol: str, since_ms: int, until_ms: int) -> pl.DataFrame:
        """Funding settlements (timestamp, datetime, funding_rate, source) in ``[since_ms, until_ms)``."""
        raise MaestroError(f"source {self.SOURCE} offers no funding-rate history")

    def fetch_open_interest(self, symbol: str, timeframe: str, since_ms: int, until_ms: int) -> pl.DataFrame:
        """Open-interest snapshots at ``timeframe`` in ``[since_ms, until_ms)``."""
        raise MaestroError(f"source {self.SOURCE} offers no open-interest history")
