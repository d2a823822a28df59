"""Market data sources by exchange id: the embedded synthetic market today, ccxt exchanges next."""

from __future__ import annotations

import time

import dagster as dg

from maestro_pipeline.errors import MaestroError
from maestro_pipeline.market import SyntheticMarket


class MarketDataResource(dg.ConfigurableResource):
    """Hands out the source for an instrument's exchange.

    ``now_ms`` pins the clock (tests, reproducible demos); unset means the wall clock.
    """

    synthetic_seed: int = 7
    now_ms: int | None = None

    def now(self) -> int:
        """The clock in Unix ms: pinned when ``now_ms`` is set, else the wall clock."""
        return self.now_ms if self.now_ms is not None else int(time.time() * 1000)

    def source(self, exchange: str):
        if exchange == "synthetic":
            return SyntheticMarket(seed=self.synthetic_seed, now_ms=self.now_ms)
        raise MaestroError(
            f"exchange {exchange!r}: downloading from ccxt exchanges is not available in this build; "
            "use exchange: synthetic (see README, 'Adding an exchange')"
        )
