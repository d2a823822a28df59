"""Market data sources by exchange id: the embedded synthetic market, any ccxt exchange, users' files."""

from __future__ import annotations

import time
from typing import Any

import dagster as dg

from maestro_pipeline.market import MarketSource, RetryPolicy, make_source


class MarketDataResource(dg.ConfigurableResource):
    """Hands out the source for an instrument's exchange.

    ``now_ms`` pins the clock (tests, reproducible demos); unset means the wall clock. ``synthetic`` is the
    embedded market; ``file_<name>`` is a file instrument (``files`` maps it to its path, filled from
    ``maestro.yaml``; ``file_options`` says how to read it: ``columns``, ``day_first``); anything else is a ccxt
    exchange id. ``exchange_urls`` points an exchange at another API base (``{"binance":
    "http://127.0.0.1:PORT"}``: the tests' stand-in); the retry, timeout, rate-limit and page settings tune the
    ccxt client (tests use tiny delays). API keys come only from the environment (``MAESTRO_<EXCHANGE>_API_KEY`` /
    ``_SECRET``), never from this config.
    """

    synthetic_seed: int = 7
    now_ms: int | None = None
    files: dict[str, str] = {}
    file_options: dict[str, dict[str, Any]] = {}
    exchange_urls: dict[str, str] = {}
    retry_max_attempts: int = 6
    retry_base_delay_s: float = 0.5
    retry_max_delay_s: float = 30.0
    retry_max_total_s: float = 180.0
    timeout_ms: int = 10_000
    rate_limit_ms: int | None = None
    page_limit: int | None = None
    page_deadline_s: float = 60.0     # wall clock for one reply (ccxt's timeout is per socket read)
    fetch_deadline_s: float = 900.0   # wall clock for one fetch: all its pages, retries and waits

    def now(self) -> int:
        """The clock in Unix ms: pinned when ``now_ms`` is set, else the wall clock."""
        return self.now_ms if self.now_ms is not None else int(time.time() * 1000)

    def source(self, exchange: str) -> MarketSource:
        """The source for an instrument's exchange part (``inst.exchange``)."""
        return make_source(
            exchange, synthetic_seed=self.synthetic_seed, now_ms=self.now_ms, files=self.files,
            file_options=self.file_options,
            exchange_urls=self.exchange_urls,
            retry=RetryPolicy(max_attempts=self.retry_max_attempts, base_delay_s=self.retry_base_delay_s,
                              max_delay_s=self.retry_max_delay_s, max_total_s=self.retry_max_total_s),
            timeout_ms=self.timeout_ms, rate_limit_ms=self.rate_limit_ms, page_limit=self.page_limit,
            deadlines=(self.page_deadline_s, self.fetch_deadline_s),
        )
