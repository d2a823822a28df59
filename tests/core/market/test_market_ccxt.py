"""Real ``ccxt.binance`` against a local stand-in on 127.0.0.1 (synthetic replay): the asset graph end to end,
every injected fault, the checks before download, incremental refresh, perpetuals, and API-key hygiene.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.request

import polars as pl
import pytest

from maestro_pipeline.errors import DataError, MaestroError
from maestro_pipeline.market import CcxtSource, RetryPolicy, SyntheticMarket, api_credentials
from tests.support.config import NOW_MS, ms, small_config
from tests.support.standin.graph import FAST, StandInGraph, checksum, failure_message, materialization_metadata

HOUR, MINUTE = 3_600_000, 60_000
SPOT_1H = "binance.BTC_USDT.1h"
SPOT_1M = "binance.BTC_USDT.1m"
PERP_1H = "binance.XRP_USDT~USDT.1h"


def cfg(lake: str, *instruments) -> dict:
    return small_config(lake, instruments=list(instruments))


BTC_1H = {"exchange": "binance", "symbol": "BTC/USDT", "timeframe": "1h", "start": "2026-08-01"}
BTC_1M = {"exchange": "binance", "symbol": "BTC/USDT", "timeframe": "1m", "start": "2026-09-01"}
XRP_1H = {"exchange": "binance", "symbol": "XRP/USDT:USDT", "timeframe": "1h", "start": "2026-08-01"}


def reference(symbol: str, tf: str, lo: int, hi: int, now: int = NOW_MS) -> pl.DataFrame:
    """What the stand-in replays: the embedded market with its seed (7)."""
    return SyntheticMarket(seed=7, now_ms=now).fetch(symbol, tf, lo, hi)


def source(si, **over) -> CcxtSource:
    kw = dict(url_override=si.url, now_ms=si.now_ms, rate_limit_ms=0, timeout_ms=FAST["timeout_ms"],
              retry=RetryPolicy(max_attempts=5, base_delay_s=0.01, max_delay_s=0.05, max_total_s=10))
    kw.update(over)
    return CcxtSource("binance", **kw)


#: For the tests that count pages and inject no fault: FAST's 400 ms timeout is shorter than a full garbage
#: collection of the whole suite's process (over a second), and a retried page would be counted twice.
NO_FAULT_TIMEOUT_MS = 10_000


# ------------------------------------------------------------------ end to end through the asset graph


def test_raw_candles_end_to_end_1h_and_1m_many_pages(tmp_path, instance, standin):
    g = StandInGraph(tmp_path, instance, standin, cfg(str(tmp_path / "lake"), BTC_1H, BTC_1M), page_limit=100,
                     timeout_ms=NO_FAULT_TIMEOUT_MS)
    res = g.run(["raw_candles"], "2026-08", SPOT_1H)
    got = g.lake.read_file("raw_candles", g.part(SPOT_1H, "2026-08"))
    want = reference("BTC/USDT", "1h", ms(2026, 8, 1), ms(2026, 9, 1))
    assert got.height == want.height == 744
    assert (got["timestamp"][0], got["timestamp"][-1]) == (ms(2026, 8, 1), ms(2026, 8, 31, 23))
    assert checksum(got) == checksum(want)
    assert set(got["source"]) == {"binance"}
    assert standin.count("/api/v3/klines") == 8          # 744 bars at 100 per page
    md = materialization_metadata(res, "raw_candles")
    assert md["rows"] == 744 and md["source"] == "binance" and md["new_rows"] == 744

    # 1m, the current month: 13,680 completed bars up to the pinned clock, 1,000 per page
    before = standin.count("/api/v3/klines")
    g.market_over["page_limit"] = None   # the exchange's own maximum (ccxt features: 1,000 for spot)
    g.run(["raw_candles"], "2026-09", SPOT_1M)
    got = g.lake.read_file("raw_candles", g.part(SPOT_1M, "2026-09"))
    want = reference("BTC/USDT", "1m", ms(2026, 9, 1), ms(2026, 10, 1))
    assert got.height == want.height == (9 * 24 + 12) * 60
    assert got["timestamp"][-1] == NOW_MS - MINUTE       # the bar forming at "now" is never stored
    assert checksum(got) == checksum(want)
    assert standin.count("/api/v3/klines") - before == 14


def test_standin_serves_the_forming_bar_and_the_source_drops_it(standin):
    url = f"{standin.url}/api/v3/klines?symbol=BTCUSDT&interval=1h&limit=3"
    rows = json.loads(urllib.request.urlopen(url, timeout=5).read())
    assert rows[-1][0] == NOW_MS  # Binance returns the bar still forming
    df = source(standin).fetch("BTC/USDT", "1h", NOW_MS - 5 * HOUR, NOW_MS + HOUR)
    assert df["timestamp"].to_list() == [NOW_MS - k * HOUR for k in range(5, 0, -1)]


def test_incremental_refresh_appends_only_new_bars_and_is_idempotent(tmp_path, instance, standin):
    g = StandInGraph(tmp_path, instance, standin, cfg(str(tmp_path / "lake"), BTC_1H), timeout_ms=NO_FAULT_TIMEOUT_MS)
    part = g.part(SPOT_1H, "2026-09")
    g.run(["raw_candles"], "2026-09", SPOT_1H)
    first = g.lake.read_file("raw_candles", part)
    assert first["timestamp"][-1] == NOW_MS - HOUR

    later = NOW_MS + 5 * HOUR
    standin.now_ms = later
    n0 = len(standin.requests)
    res = g.run(["raw_candles"], "2026-09", SPOT_1H, now_ms=later)
    klines = [q for p, q in standin.requests[n0:] if p.endswith("/klines")]
    # asks from the newest stored bar: it is fetched again, so a bar the exchange revised is revised here too
    assert len(klines) == 1 and int(klines[0]["startTime"]) == NOW_MS - HOUR
    assert materialization_metadata(res, "raw_candles")["new_rows"] == 5
    second = g.lake.read_file("raw_candles", part)
    assert second.height == first.height + 5
    assert second.head(first.height).equals(first)                      # history untouched
    assert checksum(second) == checksum(reference("BTC/USDT", "1h", ms(2026, 9, 1), ms(2026, 10, 1), later))

    mtime = g.lake.path("raw_candles", part).stat().st_mtime_ns
    n1 = standin.count("/klines")
    res = g.run(["raw_candles"], "2026-09", SPOT_1H, now_ms=later)        # same clock: nothing new
    assert materialization_metadata(res, "raw_candles")["new_rows"] == 0
    assert standin.count("/klines") == n1 + 1                           # one page: the newest stored bar again
    assert g.lake.path("raw_candles", part).stat().st_mtime_ns == mtime
    assert g.lake.read_file("raw_candles", part).equals(second)


# ------------------------------------------------------------------ faults

TRANSIENT = ["429", "418", "500", "503", "slow", "drop"]


@pytest.mark.parametrize("fault", TRANSIENT)
def test_transient_faults_are_retried_to_success(standin, fault, caplog):
    standin.slow_s = 3.0  # above the client's 2 s timeout (a loaded CI machine can take 0.4 s for a 1,000-bar page)
    src = source(standin)
    src.load_markets()
    standin.inject(fault, times=2)
    with caplog.at_level(logging.WARNING, logger="maestro_pipeline.market.ccxt_source"):
        df = src.fetch("BTC/USDT", "1h", NOW_MS - 48 * HOUR, NOW_MS)
    assert df.height == 48 and checksum(df) == checksum(reference("BTC/USDT", "1h", NOW_MS - 48 * HOUR, NOW_MS))
    assert src.stats["retries"] == 2
    assert standin.count("/klines") == 3
    assert "retry 2" in caplog.text


def test_transient_fault_through_the_asset(tmp_path, instance, standin):
    g = StandInGraph(tmp_path, instance, standin, cfg(str(tmp_path / "lake"), BTC_1H))
    standin.inject("429", times=3)
    g.run(["raw_candles"], "2026-08", SPOT_1H)
    assert g.lake.read_file("raw_candles", g.part(SPOT_1H, "2026-08")).height == 744


def test_retry_budget_is_bounded(standin):
    src = source(standin, retry=RetryPolicy(max_attempts=3, base_delay_s=0.01, max_delay_s=0.02))
    src.load_markets()
    standin.inject("503", times=10)
    with pytest.raises(DataError, match=r"failed after 3 attempt\(s\).*ExchangeNotAvailable"):
        src.fetch("BTC/USDT", "1h", NOW_MS - 48 * HOUR, NOW_MS)
    assert standin.count("/klines") == 3


def test_a_dripping_reply_outlives_the_socket_timeout_but_not_the_page_deadline(standin):
    """Issue 17: the socket timeout (2 s) is per read, so a reply dripping over 3 s passes it; the 1 s page
    deadline is wall clock: the page is cut, retried and the fetch completes."""
    standin.drip_s = 3.0
    slow = source(standin, timeout_ms=2_000, deadlines=(60.0, 60.0))
    slow.load_markets()
    standin.inject("drip")
    t0 = time.monotonic()
    df = slow.fetch("BTC/USDT", "1h", NOW_MS - 24 * HOUR, NOW_MS)
    assert time.monotonic() - t0 >= 2.9 and df.height == 24 and slow.stats["retries"] == 0   # nothing cut it
    fast = source(standin, timeout_ms=2_000, deadlines=(1.0, 60.0))
    fast.load_markets()
    standin.inject("drip")
    t0 = time.monotonic()
    df = fast.fetch("BTC/USDT", "1h", NOW_MS - 24 * HOUR, NOW_MS)
    assert time.monotonic() - t0 < 2.5 and fast.stats["retries"] == 1
    assert checksum(df) == checksum(reference("BTC/USDT", "1h", NOW_MS - 24 * HOUR, NOW_MS))


def test_the_fetch_deadline_bounds_all_pages_and_retries(standin):
    standin.drip_s = 3.0
    src = source(standin, timeout_ms=2_000, deadlines=(1.0, 2.5),
                 retry=RetryPolicy(max_attempts=50, base_delay_s=0.01, max_delay_s=0.05, max_total_s=120))
    src.load_markets()
    standin.inject("drip", times=20)
    t0 = time.monotonic()
    with pytest.raises(DataError) as e:
        src.fetch("BTC/USDT", "1h", NOW_MS - 24 * HOUR, NOW_MS)
    assert time.monotonic() - t0 < 3.5
    msg = str(e.value)
    assert msg.startswith("binance: BTC/USDT 1h candles ") and "2.5 s fetch deadline" in msg and "\n" not in msg
    standin.clear_faults()
    assert src.fetch("BTC/USDT", "1h", NOW_MS - 24 * HOUR, NOW_MS).height == 24   # the next fetch has its own


def test_conflicting_duplicate_candles_are_kept_for_the_contract_to_refuse(standin, caplog):
    from maestro_pipeline.quality import evaluate

    src = source(standin)
    src.load_markets()
    standin.inject("conflict")
    with caplog.at_level(logging.WARNING, logger="maestro_pipeline.market.ccxt_source"):
        df = src.fetch("BTC/USDT", "1h", NOW_MS - 24 * HOUR, NOW_MS)
    assert df.height == 25 and df["timestamp"].n_unique() == 24 and "1 conflicting duplicate" in caplog.text
    res = evaluate(df, "1h")
    assert res.blocked and not res.outcomes["unique_timestamps"].passed


@pytest.mark.parametrize("fault", ["truncated", "html"])
def test_malformed_200_is_missing_coverage_and_the_lake_is_unchanged(tmp_path, instance, standin, fault):
    g = StandInGraph(tmp_path, instance, standin, cfg(str(tmp_path / "lake"), BTC_1H))
    part = g.part(SPOT_1H, "2026-09")
    g.run(["raw_candles"], "2026-09", SPOT_1H)
    path = g.lake.path("raw_candles", part)
    before = path.read_bytes()
    standin.now_ms = NOW_MS + 30 * HOUR
    standin.inject(fault)
    res = g.run(["raw_candles"], "2026-09", SPOT_1H, now_ms=standin.now_ms, raise_on_error=False)
    assert not res.success
    msg = failure_message(res)
    assert "coverage missing" in msg and "\n" not in msg
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["data.parquet"]   # no temp file left behind


def test_persistently_malformed_replies_are_never_end_of_data(standin):
    src = source(standin)
    src.load_markets()
    standin.inject("truncated", times=50)
    with pytest.raises(DataError, match="coverage missing.*market is active"):
        src.fetch("BTC/USDT", "1h", NOW_MS - 48 * HOUR, NOW_MS)


def test_a_range_before_listing_is_empty_not_an_error(standin):
    src = source(standin)  # the synthetic market opens 2015-01-01
    df = src.fetch("BTC/USDT", "1d", ms(2014, 6, 1), ms(2014, 7, 1))
    assert df.height == 0 and src.stats["probes"] == 1
    df = src.fetch("BTC/USDT", "1d", ms(2014, 12, 1), ms(2015, 1, 11))
    assert df["timestamp"].to_list() == [ms(2015, 1, d) for d in range(1, 11)]


def test_truncated_market_list_is_reloaded_not_trusted(standin):
    standin.inject("truncated", path="/api/v3/exchangeInfo")
    src = source(standin)
    df = src.fetch("BTC/USDT", "1h", NOW_MS - 3 * HOUR, NOW_MS)
    assert df.height == 3
    assert standin.count("/api/v3/exchangeInfo") == 2


# ------------------------------------------------------------------ checks before any download


def test_unknown_symbol_is_one_line_before_any_kline_request(tmp_path, instance, standin):
    bad = {**BTC_1H, "symbol": "BTC/USDX"}
    g = StandInGraph(tmp_path, instance, standin, cfg(str(tmp_path / "lake"), bad))
    res = g.run(["raw_candles"], "2026-08", "binance.BTC_USDX.1h", raise_on_error=False)
    msg = failure_message(res)
    assert not res.success and "\n" not in msg
    assert "unknown symbol 'BTC/USDX'" in msg and "closest: BTC/USDT" in msg
    assert standin.count("/klines") == 0
    assert not g.lake.files("raw_candles")


def test_unsupported_timeframe_lists_the_supported_ones_before_any_request(standin):
    src = source(standin)
    with pytest.raises(MaestroError) as e:
        src.fetch("BTC/USDT", "7h", NOW_MS - 48 * HOUR, NOW_MS)
    assert "timeframe '7h' is not offered; supported: 1s, 1m, 3m" in str(e.value) and "1w" in str(e.value)
    assert standin.count("/klines") == 0


def test_markets_load_once_per_exchange_and_url(standin):
    a, b = source(standin), source(standin)
    a.fetch("BTC/USDT", "1h", NOW_MS - 3 * HOUR, NOW_MS)
    b.fetch("ETH/USDT", "1h", NOW_MS - 3 * HOUR, NOW_MS)
    assert standin.count("/api/v3/exchangeInfo") == 1 and standin.count("/fapi/v1/exchangeInfo") == 1
    assert standin.count("/sapi/") == 0


# ------------------------------------------------------------------ perpetuals


def test_funding_and_open_interest_assets(tmp_path, instance, standin):
    synth = {"exchange": "synthetic", "symbol": "BTC/USDT:USDT", "timeframe": "1h", "start": "2026-08-01"}
    g = StandInGraph(tmp_path, instance, standin, cfg(str(tmp_path / "lake"), XRP_1H, BTC_1H, synth))
    res = g.run(["funding_rates", "open_interest"], "2026-08", PERP_1H)
    fr = g.lake.read_file("funding_rates", g.part(PERP_1H, "2026-08"))
    oi = g.lake.read_file("open_interest", g.part(PERP_1H, "2026-08"))
    assert fr.height == 31 * 3 and (fr["timestamp"].diff().drop_nulls() == 8 * HOUR).all()
    assert fr["timestamp"][0] == ms(2026, 8, 1) and fr["funding_rate"].abs().max() < 0.001
    assert oi.height == 744 and oi["open_interest"].min() > 0 and set(oi["source"]) == {"binance"}
    assert materialization_metadata(res, "open_interest")["period"] == "1h"
    assert g.lake.path("funding_rates", g.part(PERP_1H, "2026-08")).parts[-5:-1] == (
        "exchange=binance", "symbol=XRP_USDT~USDT", "timeframe=1h", "month=2026-08")

    # incremental: the current month twice, the second run adds what the clock reveals
    g.run(["funding_rates"], "2026-09", PERP_1H)
    n = g.lake.read_file("funding_rates", g.part(PERP_1H, "2026-09")).height
    assert n == 9 * 3 + 2  # 2026-09-01 00:00 .. 2026-09-10 08:00
    standin.now_ms = NOW_MS + 8 * HOUR
    res = g.run(["funding_rates"], "2026-09", PERP_1H, now_ms=standin.now_ms)
    assert materialization_metadata(res, "funding_rates")["new_rows"] == 1

    # spot instrument / source without the history: nothing written, and the metadata says why
    res = g.run(["funding_rates", "open_interest"], "2026-08", SPOT_1H)
    assert "not a perpetual" in materialization_metadata(res, "funding_rates")["note"]
    assert not g.lake.exists("funding_rates", g.part(SPOT_1H, "2026-08"))
    res = g.run(["open_interest"], "2026-08", "synthetic.BTC_USDT~USDT.1h")
    assert "offers no open interest history" in materialization_metadata(res, "open_interest")["note"]


def test_derivatives_assets_only_exist_when_a_perpetual_is_configured(tmp_path, instance, standin):
    g = StandInGraph(tmp_path, instance, standin, cfg(str(tmp_path / "lake"), BTC_1H))
    assert "funding_rates" not in g.by_name and "raw_candles" in g.by_name


def test_funding_on_a_spot_symbol_is_a_clear_error(standin):
    with pytest.raises(MaestroError, match="spot market; funding and open interest exist for perpetuals"):
        source(standin).fetch_funding_rates("BTC/USDT", NOW_MS - 48 * HOUR, NOW_MS)


# ------------------------------------------------------------------ keys


def test_api_keys_never_reach_the_lake_metadata_or_logs(tmp_path, instance, standin, monkeypatch, caplog):
    key, secret = "KEYmaestro0123456789abcdef", "SECRETmaestro9876543210fedcba"
    monkeypatch.setenv("MAESTRO_BINANCE_API_KEY", key)
    monkeypatch.setenv("MAESTRO_BINANCE_SECRET", secret)
    assert api_credentials("binance") == {"apiKey": key, "secret": secret}
    g = StandInGraph(tmp_path, instance, standin, cfg(str(tmp_path / "lake"), BTC_1H, XRP_1H))
    standin.inject("429")  # a retry warning gets logged too
    with caplog.at_level(logging.DEBUG):
        r1 = g.run(["raw_candles"], "2026-08", SPOT_1H)
        r2 = g.run(["funding_rates", "open_interest"], "2026-08", PERP_1H)
    src = g.market().source("binance")
    assert src.authenticated and key not in repr(src) and secret not in repr(src)
    blobs = [p.read_bytes() for p in g.lake.root.rglob("*") if p.is_file()]
    assert len(blobs) >= 3
    events = "".join(str(e) for r in (r1, r2) for e in instance.all_logs(r.run_id))
    for s in (key, secret):
        assert not any(s.encode() in b for b in blobs)
        assert s not in events and s not in caplog.text
    assert standin.count("/sapi/") == 0   # keys do not turn on private calls for market data
