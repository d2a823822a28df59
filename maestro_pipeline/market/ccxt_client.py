"""The ccxt plumbing :class:`~maestro_pipeline.market.ccxt_source.CcxtSource` builds on: table schemas, retry policy,
credentials from the environment, the process-wide markets cache and the API-host rewrite the tests use."""

from __future__ import annotations

import os
import random
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import polars as pl

__all__ = [
    "FUNDING_COLUMNS", "FUNDING_GRACE_MS", "OPEN_INTEREST_COLUMNS", "RETRYABLE_NAMES", "RetryPolicy", "api_credentials",
    "clear_market_cache", "finish_table", "rewrite_urls",
]

FUNDING_COLUMNS: dict[str, pl.DataType] = {
    "timestamp": pl.Int64(),
    "datetime": pl.Datetime("ms", "UTC"),
    "funding_rate": pl.Float64(),
    "source": pl.String(),
}
OPEN_INTEREST_COLUMNS: dict[str, pl.DataType] = {
    "timestamp": pl.Int64(),
    "datetime": pl.Datetime("ms", "UTC"),
    "open_interest": pl.Float64(),        # contracts / base units, as the exchange reports
    "open_interest_value": pl.Float64(),  # quote value, when the exchange reports it
    "source": pl.String(),
}

#: Funding is paid every 1 to 8 hours depending on the exchange: no record yet in the last 8 h is not a gap.
FUNDING_GRACE_MS = 8 * 3_600_000

#: Retried: ccxt's transient failures. NetworkError covers DDoSProtection (HTTP 429/418), ExchangeNotAvailable
#: (5xx) and RequestTimeout; OperationFailed (their parent) is what ccxt raises for an exchange's own "internal
#: error, try again" codes (Binance -1000/-1001 with HTTP 500) and for BadResponse/NullResponse.
RETRYABLE_NAMES = ("NetworkError", "DDoSProtection", "ExchangeNotAvailable", "RequestTimeout", "OperationFailed")


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter: attempt ``n`` waits up to ``min(max_delay, base * 2**n)``."""

    max_attempts: int = 6
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    max_total_s: float = 180.0
    jitter: float = 1.0  # fraction of the delay that is random (1.0 = full jitter)

    def delay(self, attempt: int, rng: random.Random) -> float:
        d = min(self.max_delay_s, self.base_delay_s * (2 ** attempt))
        return d * (1.0 - self.jitter) + d * self.jitter * rng.random()


def api_credentials(exchange_id: str, env: dict[str, str] | None = None) -> dict[str, str]:
    """ccxt credentials from ``MAESTRO_<EXCHANGE>_API_KEY`` / ``_SECRET`` / ``_PASSWORD`` (empty when unset)."""
    env = os.environ if env is None else env
    prefix = f"MAESTRO_{exchange_id.upper()}_"
    out = {}
    for var, field in (("API_KEY", "apiKey"), ("SECRET", "secret"), ("PASSWORD", "password")):
        value = env.get(prefix + var)
        if value:
            out[field] = value
    return out


# ------------------------------------------------------------------ process-wide market cache

#: Cache: loaded markets per (exchange id, API base), shared by every source of the process (see clear_market_cache).
MARKETS: dict[tuple[str, str], Any] = {}
MARKETS_LOCK = threading.Lock()


def clear_market_cache() -> None:
    """Forget loaded markets (tests, or a long-lived process that wants fresh listings)."""
    with MARKETS_LOCK:
        MARKETS.clear()


def _rewrite_host(url: str, base: str) -> str:
    """``https://fapi.binance.com/fapi/v1`` + ``http://127.0.0.1:8080`` -> ``http://127.0.0.1:8080/fapi/v1``."""
    b = urlsplit(base)
    u = urlsplit(url)
    return urlunsplit((b.scheme, b.netloc, (b.path.rstrip("/") + u.path) if b.path else u.path, u.query, u.fragment))


def rewrite_urls(api: Any, base: str) -> Any:
    if isinstance(api, str):
        return _rewrite_host(api, base)
    if isinstance(api, dict):
        return {k: rewrite_urls(v, base) for k, v in api.items()}
    return api



def finish_table(df: pl.DataFrame, source: str, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    df = df.unique("timestamp", keep="last").sort("timestamp").with_columns(
        pl.col("timestamp").cast(pl.Datetime("ms")).dt.replace_time_zone("UTC").alias("datetime"),
        pl.lit(source).alias("source"),
    )
    return df.select([pl.col(c).cast(t) for c, t in schema.items()])

