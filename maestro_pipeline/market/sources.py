"""The source for an instrument: the embedded market, a file instrument's file, or a ccxt exchange."""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import MaestroError
from .ccxt_client import RetryPolicy
from .ccxt_source import CcxtSource
from .files import FileSource
from .source import MarketSource
from .synthetic import SyntheticMarket

__all__ = ["make_source"]


def make_source(exchange: str, *, synthetic_seed: int = 7, now_ms: int | None = None,
                files: Mapping[str, str] | None = None, exchange_urls: Mapping[str, str] | None = None,
                retry: RetryPolicy | None = None, timeout_ms: int = 10_000, rate_limit_ms: int | None = None,
                page_limit: int | None = None, file_options: Mapping[str, Mapping] | None = None,
                deadlines: tuple[float, float] | None = None) -> MarketSource:
    """``synthetic`` -> the embedded market; ``file_<name>`` -> that file (``files`` maps it to its path); anything
    else -> a ccxt exchange (``exchange_urls`` points one at another API base: the tests' stand-in).

    ``file_options`` maps a file instrument's exchange part to its reading options (``columns``, ``day_first``);
    ``deadlines`` is (seconds per page, seconds per fetch) for ccxt: wall-clock bounds, whatever the socket does."""
    if exchange == "synthetic":
        return SyntheticMarket(seed=synthetic_seed, now_ms=now_ms)
    if exchange.startswith("file_"):
        if not files or exchange not in files:
            raise MaestroError(f"{exchange}: no file configured for this instrument (path: in maestro.yaml)")
        opts = dict((file_options or {}).get(exchange) or {})
        return FileSource(files[exchange], name=exchange.removeprefix("file_"), now_ms=now_ms,
                          columns=opts.get("columns"), day_first=opts.get("day_first"))
    return CcxtSource(exchange, url_override=(exchange_urls or {}).get(exchange), now_ms=now_ms,
                      retry=retry or RetryPolicy(), timeout_ms=timeout_ms, rate_limit_ms=rate_limit_ms,
                      page_limit=page_limit, **({"deadlines": deadlines} if deadlines else {}))
