"""A local Binance stand-in: a real HTTP server on 127.0.0.1 speaking the REST format ``ccxt.binance`` uses.

Endpoints (the ones ``ccxt.binance`` touches for market data, read from ccxt's ``binance.py``):

* ``load_markets`` -> ``fetch_markets`` with the default ``options['fetchMarkets']['types']`` = spot, linear,
  inverse: ``GET /api/v3/exchangeInfo``, ``GET /fapi/v1/exchangeInfo``, ``GET /dapi/v1/exchangeInfo`` (served,
  with no coin-margined symbols). ``fetchCurrencies`` and the margin pair lists (``/sapi/...``) are only called
  with API keys; ``CcxtSource`` switches both off, and the stand-in answers ``/sapi/`` with 404 to prove it.
* ``fetch_ohlcv``: ``GET /api/v3/klines`` (spot, limit default 500, max 1000) and ``GET /fapi/v1/klines``
  (USD-M perpetuals, default 500, max 1500) with Binance's ``startTime``/``endTime``/``limit`` rules: with
  ``startTime`` the first ``limit`` bars opening at or after it (and at or before ``endTime``); with only
  ``endTime`` the last ``limit`` bars up to it; with neither the latest ``limit``. The bar still forming at the
  stand-in's clock is included, as Binance does.
* ``fetch_funding_rate_history``: ``GET /fapi/v1/fundingRate`` (default 100, max 1000; every 8 h).
* ``fetch_open_interest_history``: ``GET /futures/data/openInterestHist`` (default 30, max 500). Real Binance
  keeps only the last 30 days here; the stand-in serves any range.
* ``GET /api/v3/time``, ``/api/v3/ping``, ``/fapi/v1/time``, ``/fapi/v1/ping`` for completeness.

Data: a listing replays a bar table (real candles from ``MAESTRO_DATASETS``, aggregated to coarser intervals
on request) or the embedded ``SyntheticMarket`` for its unified symbol. Faults are queued per path and
consumed by the next matching requests: ``429``, ``418``, ``500``, ``503``, ``slow`` (a reply slower than the
client's timeout), ``truncated`` (HTTP 200 with half a JSON body), ``html`` (HTTP 200 with an HTML page) and
``drop`` (the connection is closed without a reply). Every request is recorded.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import numpy as np
import polars as pl

from maestro_pipeline.market import ORIGIN_MS, SyntheticMarket

INTERVAL_MS = {
    "1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000, "1h": 3_600_000,
    "2h": 7_200_000, "4h": 14_400_000, "6h": 21_600_000, "8h": 28_800_000, "12h": 43_200_000,
    "1d": 86_400_000, "3d": 259_200_000, "1w": 604_800_000,
}
OI_PERIODS = ("5m", "15m", "30m", "1h", "2h", "4h", "6h", "12h", "1d")
FUNDING_MS = 8 * 3_600_000
FAULTS = ("429", "418", "500", "503", "slow", "truncated", "html", "drop", "drip", "conflict")


@dataclass
class Listing:
    """One market on the stand-in: ``BTC/USDT`` (spot) or ``XRP/USDT:USDT`` (USD-M perpetual)."""

    symbol: str                         # unified ccxt symbol
    bars: pl.DataFrame | None = None    # replayed bars (timestamp, open, high, low, close, volume); None = synthetic
    seed: int = 7
    status: str = "TRADING"

    @property
    def base(self) -> str:
        return self.symbol.split("/")[0]

    @property
    def quote(self) -> str:
        return self.symbol.split("/")[1].split(":")[0]

    @property
    def perpetual(self) -> bool:
        return ":" in self.symbol

    @property
    def market_id(self) -> str:
        return self.base + self.quote

    @property
    def first_ms(self) -> int:
        return int(self.bars["timestamp"][0]) if self.bars is not None and self.bars.height else ORIGIN_MS

    @property
    def native_ms(self) -> int | None:
        if self.bars is None or self.bars.height < 2:
            return None
        d = self.bars["timestamp"].diff().drop_nulls()
        return int(d.filter(d > 0).min())


class StandIn:
    """The server, its clock (``now_ms``), its listings, its fault queue and its request log."""

    def __init__(self, listings: list[Listing], now_ms: int, slow_s: float = 3.0, drip_s: float = 4.0):
        self.listings = {(lst.market_id, lst.perpetual): lst for lst in listings}
        self.now_ms = now_ms
        self.slow_s = slow_s
        self.drip_s = drip_s   # "drip": the reply's body trickles out over this many seconds, a piece at a time
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.headers_seen: list[dict[str, str]] = []
        self._faults: deque[tuple[str, str]] = deque()
        self._lock = threading.Lock()
        self._agg_cache: dict[tuple[str, bool, int], np.ndarray] = {}
        handler = type("Handler", (_Handler,), {"standin": self})
        self.httpd = _QuietServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="standin", daemon=True)
        self._thread.start()

    # ---- control ---------------------------------------------------------------------------------
    def inject(self, fault: str, times: int = 1, path: str = "klines") -> None:
        """Make the next ``times`` requests whose path contains ``path`` fail with ``fault``."""
        assert fault in FAULTS, fault
        with self._lock:
            self._faults.extend([(path, fault)] * times)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def count(self, contains: str) -> int:
        return sum(1 for p, _ in self.requests if contains in p)

    def counts(self) -> Counter:
        return Counter(p for p, _ in self.requests)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _take_fault(self, path: str) -> str | None:
        with self._lock:
            for i, (where, fault) in enumerate(self._faults):
                if where in path:
                    del self._faults[i]
                    return fault
        return None

    # ---- data ------------------------------------------------------------------------------------
    def _rows(self, lst: Listing, interval: str, lo: int, hi: int) -> np.ndarray:
        """Bars (ts, o, h, l, c, v) opening in [lo, hi], including the one forming at ``now``."""
        step = INTERVAL_MS[interval]
        hi = min(hi, self.now_ms)
        if hi < lo:
            return np.empty((0, 6))
        if lst.bars is None:
            market = SyntheticMarket(seed=lst.seed, now_ms=self.now_ms + step)  # + step: the forming bar too
            df = market.fetch(lst.symbol, interval, max(lo, ORIGIN_MS), hi + 1)
            df = df.filter((pl.col("timestamp") >= lo) & (pl.col("timestamp") <= hi))
            return df.select("timestamp", "open", "high", "low", "close", "volume").to_numpy()
        arr = self._aggregated(lst, step)
        ts = arr[:, 0]
        i, j = np.searchsorted(ts, lo, "left"), np.searchsorted(ts, hi, "right")
        return arr[i:j]

    def _aggregated(self, lst: Listing, step: int) -> np.ndarray:
        key = (lst.market_id, lst.perpetual, step)
        if key not in self._agg_cache:
            df = lst.bars.select("timestamp", "open", "high", "low", "close", "volume").sort("timestamp")
            native = lst.native_ms or step
            if step != native:
                if step % native:
                    raise ValueError(f"cannot serve {step} ms bars from {native} ms data")
                df = (
                    df.with_columns((pl.col("timestamp") - pl.col("timestamp") % step).alias("bucket"))
                    .group_by("bucket", maintain_order=True)
                    .agg(pl.col("open").first(), pl.col("high").max(), pl.col("low").min(), pl.col("close").last(),
                         pl.col("volume").sum())
                    .rename({"bucket": "timestamp"})
                )
            self._agg_cache[key] = df.to_numpy().astype(np.float64)
        return self._agg_cache[key]

    def _window(self, rows_fn, step: int, q: dict, default: int, maximum: int):
        limit = int(q.get("limit", default))
        if not 1 <= limit <= maximum:
            return None, limit
        start, end = q.get("startTime"), q.get("endTime")
        if start is not None:
            s = int(start)
            e = int(end) if end is not None else s + limit * step
            rows = rows_fn(s, e)
            return rows[:limit], limit
        e = int(end) if end is not None else self.now_ms
        rows = rows_fn(e - limit * step, e)
        return rows[-limit:], limit


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:  # clients that hang up are part of the faults
        pass


def _f(x: float) -> str:
    return repr(float(x))


def _unit_hash(*parts) -> float:
    d = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(d, "little") / 2**64


class _Handler(BaseHTTPRequestHandler):
    standin: StandIn
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: without this, 40 ms per reply (delayed ACK)

    def log_message(self, *args) -> None:  # quiet
        pass

    # ---- replies ---------------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, ctype: str = "application/json", extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout fault): fine
            self.close_connection = True

    def _json(self, obj, status: int = 200) -> None:
        self._send(status, json.dumps(obj).encode())

    def _error(self, status: int, code: int, msg: str) -> None:
        self._json({"code": code, "msg": msg}, status)

    def do_GET(self) -> None:  # noqa: N802
        si = self.standin
        parts = urlsplit(self.path)
        path = parts.path
        q = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        with si._lock:
            si.requests.append((path, q))
            si.headers_seen.append(dict(self.headers))
        fault = si._take_fault(path)
        if fault == "drop":
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if fault == "429":
            return self._send(429, b'{"code":-1003,"msg":"Too many requests; current limit is 6000 request weight '
                                   b'per 1 MINUTE."}', extra={"Retry-After": "1"})
        if fault == "418":
            return self._send(418, b'{"code":-1003,"msg":"Way too many requests; IP banned until 1700000000000."}',
                              extra={"Retry-After": "1"})
        if fault == "500":
            return self._error(500, -1000, "An unknown error occured while processing the request.")
        if fault == "503":
            return self._send(503, b"<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>",
                              "text/html")
        if fault == "html":
            return self._send(200, b"<!DOCTYPE html><html><head><title>Just a moment...</title></head>"
                                   b"<body>checking your browser</body></html>", "text/html; charset=UTF-8")
        if fault == "slow":
            time.sleep(si.slow_s)
        try:
            status, obj = self._route(path, q)
        except (ValueError, KeyError) as e:
            status, obj = 400, {"code": -1100, "msg": f"Illegal characters found in a parameter. ({e})"}
        if fault == "conflict" and isinstance(obj, list) and obj:
            # a second, different candle with the first row's timestamp (close moved by 1%)
            other = list(obj[0])
            other[4] = _f(float(other[4]) * 1.01)
            obj = [obj[0], other, *obj[1:]]
        body = json.dumps(obj).encode()
        if fault == "truncated":
            body = body[: max(1, len(body) // 2)]
        if fault == "drip":
            return self._drip(status, body)
        self._send(status, body)

    def _drip(self, status: int, body: bytes) -> None:
        """Headers at once, then the body in 40 pieces over ``drip_s``: every socket read of the client gets data
        well within its timeout, so only a wall-clock deadline can stop the reply."""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        n = 40
        size = max(1, -(-len(body) // n))
        try:
            for i in range(0, len(body), size):
                self.wfile.write(body[i:i + size])
                self.wfile.flush()
                time.sleep(self.standin.drip_s / n)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up at its deadline: fine
            self.close_connection = True

    # ---- routes ----------------------------------------------------------------------------------
    def _route(self, path: str, q: dict):
        si = self.standin
        if path in ("/api/v3/ping", "/fapi/v1/ping"):
            return 200, {}
        if path in ("/api/v3/time", "/fapi/v1/time"):
            return 200, {"serverTime": si.now_ms}
        if path == "/api/v3/exchangeInfo":
            return 200, self._exchange_info(perpetual=False)
        if path == "/fapi/v1/exchangeInfo":
            return 200, self._exchange_info(perpetual=True)
        if path == "/dapi/v1/exchangeInfo":
            return 200, {"timezone": "UTC", "serverTime": si.now_ms, "rateLimits": [], "exchangeFilters": [],
                         "symbols": []}
        if path in ("/api/v3/klines", "/fapi/v1/klines"):
            return self._klines(q, perpetual=path.startswith("/fapi"))
        if path == "/fapi/v1/fundingRate":
            return self._funding(q)
        if path == "/futures/data/openInterestHist":
            return self._open_interest(q)
        return 404, {"code": -1, "msg": f"stand-in: no route {path}"}

    def _listing(self, q: dict, perpetual: bool) -> Listing | None:
        return self.standin.listings.get((q.get("symbol", ""), perpetual))

    def _exchange_info(self, perpetual: bool) -> dict:
        si = self.standin
        symbols = []
        for lst in si.listings.values():
            if lst.perpetual != perpetual:
                continue
            filters = [
                {"filterType": "PRICE_FILTER", "minPrice": "0.00000001", "maxPrice": "1000000",
                 "tickSize": "0.00000001"},
                {"filterType": "LOT_SIZE", "minQty": "0.00001", "maxQty": "9000000", "stepSize": "0.00001"},
            ]
            if perpetual:
                symbols.append({
                    "symbol": lst.market_id, "pair": lst.market_id, "contractType": "PERPETUAL",
                    "deliveryDate": 4133404800000, "onboardDate": lst.first_ms, "status": lst.status,
                    "maintMarginPercent": "2.5000", "requiredMarginPercent": "5.0000", "baseAsset": lst.base,
                    "quoteAsset": lst.quote, "marginAsset": lst.quote, "pricePrecision": 4, "quantityPrecision": 1,
                    "baseAssetPrecision": 8, "quotePrecision": 8, "underlyingType": "COIN", "underlyingSubType": [],
                    "settlePlan": 0, "triggerProtect": "0.0500", "liquidationFee": "0.012500",
                    "marketTakeBound": "0.05", "filters": filters, "orderTypes": ["LIMIT", "MARKET"],
                    "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
                })
            else:
                symbols.append({
                    "symbol": lst.market_id, "status": lst.status, "baseAsset": lst.base, "baseAssetPrecision": 8,
                    "quoteAsset": lst.quote, "quotePrecision": 8, "quoteAssetPrecision": 8,
                    "baseCommissionPrecision": 8, "quoteCommissionPrecision": 8,
                    "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"], "icebergAllowed": True, "ocoAllowed": True,
                    "quoteOrderQtyMarketAllowed": True, "allowTrailingStop": False, "cancelReplaceAllowed": True,
                    "isSpotTradingAllowed": True, "isMarginTradingAllowed": False, "filters": filters,
                    "permissions": [], "permissionSets": [["SPOT"]], "defaultSelfTradePreventionMode": "NONE",
                    "allowedSelfTradePreventionModes": ["NONE"],
                })
        return {"timezone": "UTC", "serverTime": si.now_ms, "rateLimits": [], "exchangeFilters": [], "symbols": symbols}

    def _klines(self, q: dict, perpetual: bool):
        si = self.standin
        lst = self._listing(q, perpetual)
        if lst is None:
            return 400, {"code": -1121, "msg": "Invalid symbol."}
        interval = q.get("interval", "")
        if interval not in INTERVAL_MS:
            return 400, {"code": -1120, "msg": "Invalid interval."}
        step = INTERVAL_MS[interval]
        rows, limit = si._window(lambda a, b: si._rows(lst, interval, a, b), step, q, 500, 1500 if perpetual else 1000)
        if rows is None:
            return 400, {"code": -1130, "msg": f"Data sent for parameter 'limit' is not valid. ({limit})"}
        out = []
        for ts, o, h, low, c, v in rows.tolist():
            t = int(ts)
            out.append([t, _f(o), _f(h), _f(low), _f(c), _f(v), t + step - 1, _f(v * c), 100, _f(v / 2),
                        _f(v * c / 2), "0"])
        return 200, out

    def _funding_rows(self, lst: Listing, lo: int, hi: int) -> list[tuple[int, float]]:
        first = max(lo, lst.first_ms)
        t = first + (-first) % FUNDING_MS
        out = []
        while t <= min(hi, self.standin.now_ms):
            out.append((t, round((_unit_hash("funding", lst.symbol, t) - 0.35) * 0.0004, 8)))
            t += FUNDING_MS
        return out

    def _funding(self, q: dict):
        si = self.standin
        lst = self._listing(q, True)
        if lst is None:
            return 400, {"code": -1121, "msg": "Invalid symbol."}
        rows, limit = si._window(lambda a, b: self._funding_rows(lst, a, b), FUNDING_MS, q, 100, 1000)
        if rows is None:
            return 400, {"code": -1130, "msg": f"Data sent for parameter 'limit' is not valid. ({limit})"}
        return 200, [{"symbol": lst.market_id, "fundingTime": t, "fundingRate": f"{r:.8f}", "markPrice": "1.0"}
                     for t, r in rows]

    def _open_interest(self, q: dict):
        si = self.standin
        lst = self._listing(q, True)
        if lst is None:
            return 400, {"code": -1121, "msg": "Invalid symbol."}
        period = q.get("period", "")
        if period not in OI_PERIODS:
            return 400, {"code": -1120, "msg": "Invalid period."}
        step = INTERVAL_MS[period]

        def rows_fn(lo: int, hi: int):
            first = max(lo, lst.first_ms)
            t = first + (-first) % step
            out = []
            while t <= min(hi, si.now_ms):
                oi = 1e6 * (1.0 + 0.5 * _unit_hash("oi", lst.symbol, t // (6 * 3_600_000))
                            + 0.01 * _unit_hash("oi2", lst.symbol, t))
                out.append((t, oi))
                t += step
            return out

        rows, limit = si._window(rows_fn, step, q, 30, 500)
        if rows is None:
            return 400, {"code": -1130, "msg": f"Data sent for parameter 'limit' is not valid. ({limit})"}
        return 200, [{"symbol": lst.market_id, "sumOpenInterest": f"{oi:.8f}",
                      "sumOpenInterestValue": f"{oi * 1.5:.8f}", "timestamp": t} for t, oi in rows]
