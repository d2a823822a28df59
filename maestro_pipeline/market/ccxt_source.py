"""Candles, funding rates and open interest from any ccxt exchange (source id = the ccxt exchange id).

What this adds on top of ccxt, and why:

* **Checks before downloading.** Markets are loaded once per exchange id + API base URL per process (shared
  between sources with :meth:`ccxt.Exchange.set_markets_from_exchange`); the symbol and timeframe are checked
  against them before the first candle request, so a typo costs one line (with the closest valid symbols or
  the supported timeframes), not a failed backfill.
* **An explicit since/until loop.** ccxt's own ``paginate`` option is anchored to the wall clock and returns
  nothing for old ranges; here each page asks ``since=cursor`` with ``until`` and the cursor moves past the
  newest bar received.
* **Coverage, not hope.** A malformed HTTP 200 (truncated JSON, an HTML error page from a proxy) makes ccxt
  return ``[]`` without raising. An empty page before ``until`` is therefore never taken as the end of the
  data: the source asks the exchange for the first record from the cursor up to now; if one exists before
  ``until``, or nothing comes back although the market is active, it raises :class:`DataError` saying
  coverage is missing. Only a confirmed answer (first record at/after ``until``, or an inactive market)
  ends the range early.
* **Retries with a budget.** ``NetworkError``, ``DDoSProtection`` (what HTTP 429/418 become),
  ``ExchangeNotAvailable`` (5xx), ``RequestTimeout`` and ``OperationFailed`` (an exchange's "internal error,
  try again" codes) are retried with exponential backoff and full jitter,
  bounded by a number of attempts and a total time (:class:`RetryPolicy`); then a one-line ``DataError``.
* **Deadlines on the wall clock.** ccxt's ``timeout`` bounds each socket read, so a dripping reply never trips
  it. Every reply must be complete within ``deadlines[0]`` seconds (a page) and every ``fetch`` within
  ``deadlines[1]`` (all its pages, retries and waits): :mod:`.ccxt_deadline`. A page past its deadline is retried
  like a timeout; a fetch past its deadline fails at once with one line naming the exchange and what it fetched.
* **Only completed bars.** The bar still forming at ``now`` (open + timeframe > now) is never returned.
* **Keys from the environment only.** ``MAESTRO_<EXCHANGE>_API_KEY`` / ``_SECRET`` (/ ``_PASSWORD``) are
  handed to ccxt and nowhere else: not in ``repr``, messages, metadata or the lake (messages are scrubbed).
"""

from __future__ import annotations

import difflib
import logging
import random
import time
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

import polars as pl

from ..durations import iso
from ..errors import DataError, MaestroError
from ..schema import BAR_COLUMNS, empty_bars
from .ccxt_client import (
    FUNDING_COLUMNS,
    FUNDING_GRACE_MS,
    MARKETS,
    MARKETS_LOCK,
    OPEN_INTEREST_COLUMNS,
    RETRYABLE_NAMES,
    RetryPolicy,
    api_credentials,
    finish_table,
    rewrite_urls,
)
from .ccxt_deadline import DeadlineAdapter, DeadlineExceeded
from .source import MarketSource

__all__ = ["CcxtSource"]

log = logging.getLogger(__name__)


class CcxtSource(MarketSource):
    """One ccxt exchange as a market source: ``fetch`` (OHLCV), ``fetch_funding_rates``, ``fetch_open_interest``.

    ``url_override`` (``http://127.0.0.1:PORT``) rewrites the host of every URL in ``exchange.urls['api']``:
    that is how tests reach the local stand-in. ``now_ms`` pins the clock. ``page_limit`` caps the records
    asked per request (default: the exchange's documented maximum for the market type). ``rate_limit_ms``
    overrides ccxt's per-exchange request spacing (``enableRateLimit`` stays on).
    """

    def __init__(
        self,
        exchange_id: str,
        *,
        url_override: str | None = None,
        now_ms: int | None = None,
        retry: RetryPolicy | None = None,
        timeout_ms: int = 10_000,
        page_limit: int | None = None,
        rate_limit_ms: int | None = None,
        options: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        seed: int | None = None,
        deadlines: tuple[float, float] = (60.0, 900.0),
    ):
        import ccxt  # lazy: ~0.5 s

        if exchange_id not in ccxt.exchanges:
            near = difflib.get_close_matches(exchange_id, ccxt.exchanges, n=3)
            hint = f" (did you mean {', '.join(near)}?)" if near else ""
            raise MaestroError(f"unknown ccxt exchange {exchange_id!r}{hint}")
        self._ccxt = ccxt
        self.exchange_id = exchange_id
        self.SOURCE = exchange_id
        self.url_override = url_override.rstrip("/") if url_override else None
        self.now_ms = now_ms
        self.retry = retry or RetryPolicy()
        self.page_limit = page_limit
        self._sleep = sleep
        self._rng = random.Random(seed)
        creds = api_credentials(exchange_id, env)
        self._secrets = [v for v in creds.values() if v]
        self.authenticated = bool(creds)
        cfg: dict[str, Any] = {"enableRateLimit": True, "timeout": int(timeout_ms), **creds}
        if rate_limit_ms is not None:
            cfg["rateLimit"] = rate_limit_ms
        ex = getattr(ccxt, exchange_id)(cfg)
        # Market data needs neither currencies (a private call on several exchanges once keys are set) nor
        # margin pair lists: keep market loading on the public endpoints.
        ex.has["fetchCurrencies"] = False
        if "fetchMargins" in ex.options:
            ex.options["fetchMargins"] = False
        if options:
            ex.options.update(options)
        if self.url_override:
            ex.urls["api"] = rewrite_urls(ex.urls["api"], self.url_override)
        self.page_deadline_s, self.fetch_deadline_s = (float(x) for x in deadlines)
        self._fetch_deadline: float | None = None   # monotonic; set while a fetch runs
        self._fetching = ""
        adapter = DeadlineAdapter(self._cutoff)
        ex.session.mount("http://", adapter)
        ex.session.mount("https://", adapter)
        self.exchange = ex
        #: Requests made (by kind) and retries, for metadata and benchmarks.
        self.stats: dict[str, int] = {"markets": 0, "ohlcv_pages": 0, "probes": 0, "funding_pages": 0,
                                      "open_interest_pages": 0, "retries": 0}

    def __repr__(self) -> str:  # never shows keys
        where = f", url={self.url_override}" if self.url_override else ""
        return f"CcxtSource({self.exchange_id!r}{where}, authenticated={self.authenticated})"

    # ------------------------------------------------------------------ plumbing
    def _now(self) -> int:
        return self.now_ms if self.now_ms is not None else int(time.time() * 1000)

    def _scrub(self, text: str) -> str:
        for s in self._secrets:
            text = text.replace(s, "***")
        return text

    def _cutoff(self) -> tuple[float, str]:
        """When the reply now being requested must be complete: the page deadline, or the fetch's if sooner."""
        page = time.monotonic() + self.page_deadline_s
        if self._fetch_deadline is not None and self._fetch_deadline <= page:
            return self._fetch_deadline, "fetch"
        return page, "page"

    @contextmanager
    def _fetch_scope(self, what: str):
        """Bound everything done inside (pages, retries, waits) by the fetch deadline."""
        if self._fetch_deadline is not None:  # nested (market loading inside a fetch): the outer deadline holds
            yield
            return
        self._fetch_deadline, self._fetching = time.monotonic() + self.fetch_deadline_s, what
        try:
            yield
        finally:
            self._fetch_deadline, self._fetching = None, ""

    def _past_fetch_deadline(self, what: str, extra_s: float = 0.0) -> None:
        if self._fetch_deadline is not None and time.monotonic() + extra_s > self._fetch_deadline:
            raise DataError(f"{self.exchange_id}: {self._fetching or what}: not done within the "
                            f"{self.fetch_deadline_s:g} s fetch deadline (at {what}); nothing was stored, re-run "
                            "later or raise the deadline")

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call ccxt with retries on transient errors; give up with a one-line ``DataError``."""
        ccxt = self._ccxt
        retryable = tuple(getattr(ccxt, n) for n in RETRYABLE_NAMES)
        started = time.monotonic()
        attempt = 0
        while True:
            self._past_fetch_deadline(what)
            try:
                return fn(*args, **kwargs)
            except retryable as e:
                attempt += 1
                cut = e.__cause__ if isinstance(e.__cause__, DeadlineExceeded) else None
                if cut is not None and cut.which == "fetch":
                    self._past_fetch_deadline(what, extra_s=1e9)
                wait = self.retry.delay(attempt - 1, self._rng)
                spent = time.monotonic() - started
                reason = (f"the reply was not complete within the {self.page_deadline_s:g} s page deadline (a slow "
                          "or dripping reply)" if cut is not None
                          else f"{type(e).__name__}: {self._scrub(str(e))[:300]}")
                self._past_fetch_deadline(what, extra_s=wait)
                if attempt >= self.retry.max_attempts or spent + wait > self.retry.max_total_s:
                    raise DataError(
                        f"{self.exchange_id}: {what} failed after {attempt} attempt(s) in {spent:.1f}s: {reason}"
                    ) from None
                self.stats["retries"] += 1
                log.warning("%s: %s: %s; retry %d in %.2fs", self.exchange_id, what, reason[:200], attempt, wait)
                self._sleep(wait)
            except ccxt.BadSymbol as e:
                raise MaestroError(f"{self.exchange_id}: {what}: {self._scrub(str(e))[:300]}") from None
            except ccxt.AuthenticationError as e:
                raise MaestroError(
                    f"{self.exchange_id}: {what}: authentication failed ({type(e).__name__}); check "
                    f"MAESTRO_{self.exchange_id.upper()}_API_KEY/_SECRET"
                ) from None
            except ccxt.BaseError as e:
                raise DataError(f"{self.exchange_id}: {what}: {type(e).__name__}: "
                                f"{self._scrub(str(e))[:300]}") from None

    def load_markets(self, reload: bool = False) -> dict[str, Any]:
        """Markets of this exchange, loaded once per (exchange id, API base) per process.

        An exchange may build its market list from several replies (Binance: spot, USD-M, COIN-M); a malformed
        one silently drops a whole market type, so an empty result is an error and an unknown symbol triggers
        one fresh reload before it is reported.
        """
        key = (self.exchange_id, self.url_override or "")
        with MARKETS_LOCK:
            cached = None if reload else MARKETS.get(key)
            if cached is None:
                self.stats["markets"] += 1
                markets = self._call("loading markets", self.exchange.load_markets, True)
                if not markets:
                    raise DataError(
                        f"{self.exchange_id}: the exchange returned no markets (malformed reply?); re-run later"
                    )
                MARKETS[key] = self.exchange
                return self.exchange.markets
        if cached is not self.exchange:
            self.exchange.set_markets_from_exchange(cached)
        return self.exchange.markets

    def market(self, symbol: str) -> dict[str, Any]:
        """The ccxt market for ``symbol``, or a one-line error naming the closest valid symbols."""
        markets = self.load_markets()
        if symbol not in markets:
            markets = self.load_markets(reload=True)  # listings change, and a bad reply may have hidden some
        if symbol in markets:
            return markets[symbol]
        symbols = list(markets)
        near = difflib.get_close_matches(symbol, symbols, n=5, cutoff=0.5)
        if not near:
            base = symbol.split("/")[0]
            near = [s for s in symbols if s.split("/")[0] == base][:5]
        hint = f"; closest: {', '.join(near)}" if near else ""
        raise MaestroError(f"{self.exchange_id}: unknown symbol {symbol!r} ({len(symbols)} markets){hint}")

    def check_timeframe(self, timeframe: str) -> None:
        tfs = list((self.exchange.timeframes or {}).keys())
        if not self.exchange.has.get("fetchOHLCV"):
            raise MaestroError(f"{self.exchange_id}: this exchange offers no OHLCV history through ccxt")
        if timeframe not in tfs:
            raise MaestroError(
                f"{self.exchange_id}: timeframe {timeframe!r} is not offered; supported: {', '.join(tfs)}"
            )

    def _limit_for(self, market: dict[str, Any], method: str) -> int | None:
        if self.page_limit:
            return self.page_limit
        feats = getattr(self.exchange, "features", None) or {}
        kind = market.get("type") or "spot"
        node = feats.get(kind) or {}
        if kind in ("swap", "future") and isinstance(node, dict):
            node = node.get("linear" if market.get("linear") else "inverse") or node.get("linear") or {}
        limit = ((node or {}).get(method) or {}).get("limit") if isinstance(node, dict) else None
        return int(limit) if limit else None

    # ------------------------------------------------------------------ generic since/until loop
    def _paginate(
        self,
        what: str,
        market: dict[str, Any],
        page: Callable[[int, int, int | None], list],
        ts_of: Callable[[Any], int | None],
        since_ms: int,
        end_ms: int,
        step_ms: int,
        limit: int | None,
        stat: str,
        grace_ms: int = 0,
    ) -> list:
        """Collect records with ``since_ms <= ts < end_ms`` page by page, checking coverage on empty pages.

        ``page(cursor, until_inclusive, limit)`` returns the exchange's records from ``cursor``. ``grace_ms``: a
        series published every so often (funding every 1-8 h) may legitimately have nothing yet in the last
        ``grace_ms`` before now.
        """
        out: list = []
        cursor = since_ms
        now = self._now()
        while cursor < end_ms:
            self.stats[stat] += 1
            rows = self._call(f"{what} from {iso(cursor)}", page, cursor, end_ms - 1, limit)
            rows = [r for r in (rows or []) if (t := ts_of(r)) is not None and cursor <= t < end_ms]
            if not rows:
                self._confirm_no_data(what, market, page, ts_of, cursor, end_ms, now, grace_ms)
                break
            rows.sort(key=ts_of)
            out.extend(rows)
            last = ts_of(rows[-1])
            cursor = last + step_ms
        return out

    def _confirm_no_data(self, what, market, page, ts_of, cursor: int, end_ms: int, now: int, grace_ms: int) -> None:
        """An empty page before ``end_ms``: accept it only if the exchange confirms there is nothing there."""
        self.stats["probes"] += 1
        probe = self._call(f"{what} coverage probe from {iso(cursor)}", page, cursor, max(now, end_ms), 1)
        stamps = sorted(t for r in (probe or []) if (t := ts_of(r)) is not None and t >= cursor)
        if stamps and stamps[0] >= end_ms:
            return  # nothing in [cursor, end): before the listing, or a gap that reaches past the range
        if stamps:
            raise DataError(
                f"{self.exchange_id} {market['symbol']}: coverage missing for {what} from {iso(cursor)} to "
                f"{iso(end_ms)}: a page came back empty (malformed or truncated reply?) although the exchange "
                f"has data at {iso(stamps[0])}; nothing was stored, re-run later"
            )
        if market.get("active") is False:
            return  # delisted/inactive market: no later data is the true end
        if cursor > now - grace_ms:
            return  # the next record of a sparse series is not due yet
        raise DataError(
            f"{self.exchange_id} {market['symbol']}: coverage missing for {what} from {iso(cursor)} to "
            f"{iso(end_ms)}: the exchange returned no data although the market is active (malformed or "
            f"truncated reply?); nothing was stored. If the market stopped trading, set `end:` in maestro.yaml"
        )

    # ------------------------------------------------------------------ OHLCV
    def fetch(self, symbol: str, timeframe: str, since_ms: int, until_ms: int) -> pl.DataFrame:
        """Completed bars with ``since_ms <= timestamp < until_ms`` in the bar schema, ascending."""
        with self._fetch_scope(f"{symbol} {timeframe} candles {iso(int(since_ms))}..{iso(int(until_ms))}"):
            return self._fetch(symbol, timeframe, since_ms, until_ms)

    def _fetch(self, symbol: str, timeframe: str, since_ms: int, until_ms: int) -> pl.DataFrame:
        market = self.market(symbol)
        self.check_timeframe(timeframe)
        tf = int(self.exchange.parse_timeframe(timeframe) * 1000)
        end = min(int(until_ms), self._now() - tf + 1)  # bars opening after now - tf are still forming
        if end <= since_ms:
            return empty_bars()
        limit = self._limit_for(market, "fetchOHLCV")

        def page(cursor: int, until_incl: int, lim: int | None) -> list:
            return self.exchange.fetch_ohlcv(symbol, timeframe, since=cursor, limit=lim, params={"until": until_incl})

        rows = self._paginate("candles", market, page, lambda r: r[0] if r and isinstance(r, list) else None,
                              int(since_ms), end, tf, limit, "ohlcv_pages")
        if not rows:
            return empty_bars()
        df = pl.DataFrame(
            [r[:6] for r in rows],
            schema={"timestamp": pl.Int64, "open": pl.Float64, "high": pl.Float64, "low": pl.Float64,
                    "close": pl.Float64, "volume": pl.Float64},
            orient="row",
        ).unique(maintain_order=True).sort("timestamp", maintain_order=True)  # page overlaps: identical copies
        conflicts = df.height - df["timestamp"].n_unique()
        if conflicts:
            # two different candles for one timestamp: kept both, as a file's would be, so the contract's
            # unique_timestamps rule blocks the month instead of this code picking one silently
            first = df.filter(pl.col("timestamp").is_duplicated())["timestamp"][0]
            log.warning("%s %s %s: %d conflicting duplicate candle(s), first at %s: kept for the contract to refuse",
                        self.exchange_id, symbol, timeframe, conflicts, iso(int(first)))
        df = df.with_columns(
            pl.col("timestamp").cast(pl.Datetime("ms")).dt.replace_time_zone("UTC").alias("datetime"),
            pl.col("volume").fill_null(0.0),
            pl.lit(self.SOURCE).alias("source"),
        )
        return df.select([pl.col(c).cast(t) for c, t in BAR_COLUMNS.items()])

    # ------------------------------------------------------------------ perpetuals
    def _derivative_market(self, symbol: str, capability: str) -> dict[str, Any]:
        market = self.market(symbol)
        if not self.exchange.has.get(capability):
            raise MaestroError(f"{self.exchange_id}: {capability} is not offered by this exchange through ccxt")
        if not market.get("contract"):
            raise MaestroError(
                f"{self.exchange_id}: {symbol} is a {market.get('type', 'spot')} market; funding and open interest "
                "exist for perpetuals/futures only (write e.g. BTC/USDT:USDT)"
            )
        return market

    def has_funding_rates(self) -> bool:
        return bool(self.exchange.has.get("fetchFundingRateHistory"))

    def has_open_interest(self) -> bool:
        return bool(self.exchange.has.get("fetchOpenInterestHistory"))

    def fetch_funding_rates(self, symbol: str, since_ms: int, until_ms: int) -> pl.DataFrame:
        """Funding-rate history (``fetchFundingRateHistory``) with ``since <= timestamp < until``, up to now."""
        with self._fetch_scope(f"{symbol} funding rates {iso(int(since_ms))}..{iso(int(until_ms))}"):
            return self._fetch_funding(symbol, since_ms, until_ms)

    def _fetch_funding(self, symbol: str, since_ms: int, until_ms: int) -> pl.DataFrame:
        market = self._derivative_market(symbol, "fetchFundingRateHistory")
        end = min(int(until_ms), self._now() + 1)
        if end <= since_ms:
            return pl.DataFrame(schema=FUNDING_COLUMNS)
        limit = self.page_limit or None

        def page(cursor: int, until_incl: int, lim: int | None) -> list:
            return self.exchange.fetch_funding_rate_history(symbol, since=cursor, limit=lim,
                                                            params={"until": until_incl})

        rows = self._paginate("funding rates", market, page,
                              lambda r: r.get("timestamp") if isinstance(r, dict) else None,
                              int(since_ms), end, 1, limit, "funding_pages", grace_ms=FUNDING_GRACE_MS)
        df = pl.DataFrame(
            {"timestamp": [int(r["timestamp"]) for r in rows],
             "funding_rate": [r.get("fundingRate") for r in rows]},
            schema={"timestamp": pl.Int64, "funding_rate": pl.Float64},
        )
        return finish_table(df, self.SOURCE, FUNDING_COLUMNS)

    def fetch_open_interest(self, symbol: str, timeframe: str, since_ms: int, until_ms: int) -> pl.DataFrame:
        """Open-interest history (``fetchOpenInterestHistory``) at ``timeframe`` with ``since <= ts < until``."""
        with self._fetch_scope(f"{symbol} {timeframe} open interest {iso(int(since_ms))}..{iso(int(until_ms))}"):
            return self._fetch_open_interest(symbol, timeframe, since_ms, until_ms)

    def _fetch_open_interest(self, symbol: str, timeframe: str, since_ms: int, until_ms: int) -> pl.DataFrame:
        market = self._derivative_market(symbol, "fetchOpenInterestHistory")
        tf = int(self.exchange.parse_timeframe(timeframe) * 1000)
        end = min(int(until_ms), self._now() + 1)
        if end <= since_ms:
            return pl.DataFrame(schema=OPEN_INTEREST_COLUMNS)
        limit = self.page_limit or self._limit_for(market, "fetchOpenInterestHistory") or 500

        def page(cursor: int, until_incl: int, lim: int | None) -> list:
            return self.exchange.fetch_open_interest_history(symbol, timeframe, since=cursor, limit=lim,
                                                             params={"until": until_incl})

        rows = self._paginate("open interest", market, page,
                              lambda r: r.get("timestamp") if isinstance(r, dict) else None,
                              int(since_ms), end, tf, limit, "open_interest_pages", grace_ms=2 * tf)

        def amount(r: dict) -> float | None:
            v = r.get("openInterestAmount")
            return v if v is not None else r.get("baseVolume")

        def value(r: dict) -> float | None:
            v = r.get("openInterestValue")
            return v if v is not None else r.get("quoteVolume")

        df = pl.DataFrame(
            {"timestamp": [int(r["timestamp"]) for r in rows],
             "open_interest": [amount(r) for r in rows],
             "open_interest_value": [value(r) for r in rows]},
            schema={"timestamp": pl.Int64, "open_interest": pl.Float64, "open_interest_value": pl.Float64},
        )
        return finish_table(df, self.SOURCE, OPEN_INTEREST_COLUMNS)


