"""Config mistakes the audit found passing ``check-config``: cron, timezone, duplicate YAML keys, unsafe symbols,
and ``n_splits`` beyond what the data holds (a stated clamp)."""

from __future__ import annotations

import subprocess
import sys
from datetime import date

import duckdb
import polars as pl
import pytest

from maestro_pipeline.config import load_config, parse_config
from maestro_pipeline.config.operations import cron_problem
from maestro_pipeline.errors import ConfigError, MaestroError
from maestro_pipeline.instruments import Instrument, key_to_symbol, symbol_to_key
from maestro_pipeline.lake import Lake
from tests.support.config import small_config

# cron strings and whether Dagster's own scheduler (its vendored croniter + rules) accepts them
CRONS = ["30 0 * * *", "@daily", "@hourly", "@weekly", "*/15 * * * *", "0 0 1 jan *", "0 0 * * mon-fri", "0 0 * * 7",
         "0 0 1-15/2 * *", "5-1 * * * *", "0,15,30,45 * * * *", "0 0 L * *", "0 0 * * 5#3", "0 0 ? * *",
         "0 0 29 2 *", "0 0 * JAN-MAR *", "0 0 * * 0-7", "0 0 L 2 *",
         "0 0 30 2 *", "0 0 31 2 *", "60 0 * * *", "0 24 * * *", "0 0 0 * *", "0 0 * 13 *", "0 0 * * 8",
         "* * * *", "* * * * * *", "every night", "", "0 0 * * mun", "*/0 * * * *", "@reboot", "0 0 * * 5#6"]


@pytest.mark.parametrize("cron", CRONS)
def test_cron_check_agrees_with_dagsters_scheduler(cron):
    from dagster._utils.schedules import is_valid_cron_string  # the reference: what Dagster will run

    assert (cron_problem(cron) == "") == is_valid_cron_string(cron), cron_problem(cron)


def _bad(**over) -> str:
    with pytest.raises(ConfigError) as e:
        parse_config(small_config("lake", **over))
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_bad_cron_and_timezone_name_the_key():
    assert _bad(schedule={"nightly_cron": "30 25 * * *"}).startswith(
        "maestro.yaml: schedule.nightly_cron: '30 25 * * *' is not a cron schedule Dagster runs: the hour field")
    msg = _bad(schedule={"timezone": "Europe/Amsterdm"})
    assert msg.startswith("maestro.yaml: schedule.timezone: unknown timezone 'Europe/Amsterdm' (did you mean "
                          "Europe/Amsterdam")
    assert "schedule.timezone: unknown timezone" in _bad(schedule={"timezone": "../../etc/passwd"})
    cfg = parse_config(small_config("lake", schedule={"nightly_cron": "@daily", "timezone": "Asia/Tokyo"}))
    assert cfg.schedule.timezone == "Asia/Tokyo"


def test_check_config_refuses_a_bad_timezone_in_one_line(tmp_path):
    p = tmp_path / "maestro.yaml"
    p.write_text("instruments:\n  - {exchange: synthetic, symbol: BTC/USDT, timeframe: 1h, start: 2026-04-01}\n"
                 "strategies: [ema_cross]\nschedule: {timezone: Mars/Olympus}\n")
    out = subprocess.run([sys.executable, "-m", "maestro_pipeline.cli", "--config", str(p), "check-config"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        f"maestro: {p}: schedule.timezone: unknown timezone 'Mars/Olympus'; use an IANA name such as UTC or "
        "Europe/Amsterdam"]


def test_duplicate_yaml_keys_are_refused_with_both_lines(tmp_path):
    p = tmp_path / "maestro.yaml"
    p.write_text("instruments:\n  - {exchange: synthetic, symbol: BTC/USDT, timeframe: 1h, start: 2026-04-01}\n"
                 "strategies: [ema_cross]\nsearch:\n  n_trials: 10\nwalk_forward: {n_splits: 3}\nsearch:\n  seed: 1\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert str(e.value) == (f"{p}: not valid YAML at line 7: key 'search' given twice (first at line 4); keep one "
                            "'search' and merge the two")
    p.write_text("instruments:\n  - {exchange: synthetic, symbol: BTC/USDT, timeframe: 1h, start: 2026-04-01,\n"
                 "     timeframe: 4h}\nstrategies: [ema_cross]\n")
    with pytest.raises(ConfigError, match=r"line 3: key 'timeframe' given twice \(first at line 2\)"):
        load_config(p)


def test_yaml_merge_keys_may_still_override(tmp_path):
    p = tmp_path / "maestro.yaml"
    p.write_text("instruments:\n  - {exchange: synthetic, symbol: BTC/USDT, timeframe: 1h, start: 2026-04-01}\n"
                 "strategies: [ema_cross]\ncosts:\n  default: &c {fee: 0.002, slippage: 0.001}\n"
                 "  exchanges:\n    binance:\n      <<: *c\n      fee: 0.003\n")
    cfg = load_config(p)
    assert (cfg.costs_for("binance").fee, cfg.costs_for("binance").slippage) == (0.003, 0.001)


@pytest.mark.parametrize("symbol, why", [
    ("BTC=X/USDT", "contains '='"), ("BTC/USDT\n", "not a ccxt symbol"), ("BTC/US\nDT", "contains '\\n'"),
    ("BTC /USDT", "contains ' '"), ("BTC/USDT'", "contains \"'\""), ("BTC/USDT*", "contains '*'"),
    ("É/USDT", "contains 'É'"), ("BTC//USDT", "empty part"), ("BTC/USDT:", "empty part"),
    ("BTC/USDT\\x", "contains '\\\\'"), ("BTC/USDT%", "contains '%'"),
])
def test_symbols_that_break_the_lake_catalog_or_partition_keys_are_refused_at_load(symbol, why):
    msg = _bad(instruments=[{"exchange": "synthetic", "symbol": symbol, "timeframe": "1h", "start": "2026-04-01"}])
    assert msg.startswith("maestro.yaml: instruments[0].symbol: symbol ") and why in msg
    with pytest.raises(MaestroError):
        Instrument("binance", symbol, "1h", date(2026, 1, 1))


@pytest.mark.parametrize("symbol", ["BTC/USDT", "BTC/USDT:USDT", "1000PEPE/USDT", "BTC/USD:BTC-240628-60000-C"])
def test_accepted_symbols_survive_the_lake_the_catalog_and_dagster_partitions(tmp_path, symbol):
    import dagster as dg

    inst = Instrument("binance", symbol, "1h", date(2026, 1, 1))
    assert key_to_symbol(symbol_to_key(symbol)) == symbol
    lake = Lake(tmp_path)
    lake.write_table(pl.DataFrame({"timestamp": [1, 2]}), "raw_candles", Lake.month_partition(inst, "2026-01"))
    with duckdb.connect(str(lake.build_catalog()), read_only=True) as con:
        assert con.sql("SELECT DISTINCT symbol FROM candles").fetchall() == [(inst.symbol_key,)]
    parts = dg.MultiPartitionsDefinition({"month": dg.StaticPartitionsDefinition(["2026-01"]),
                                          "instrument": dg.StaticPartitionsDefinition([inst.key])})
    assert parts.get_partition_keys() and inst.key in str(parts.get_partition_keys()[0])


def test_n_splits_beyond_the_data_is_a_stated_clamp(tmp_path):
    from maestro_pipeline.cli import _splits_clamp_notes

    cfg = parse_config(small_config(str(tmp_path), walk_forward={"train": "40d", "test": "20d", "n_splits": 400}))
    inst = cfg.instrument_objs[0]
    lake = Lake(tmp_path)
    assert _splits_clamp_notes(lake, cfg) == []
    lake.write_table(pl.DataFrame({"split": [0, 1, 2], "live": [False, False, True]}), "walk_forward_splits",
                     inst.hive)
    assert _splits_clamp_notes(lake, cfg) == [
        "synthetic.BTC_USDT.1h: walk_forward.n_splits is 400 but the data holds 2 complete split(s); researching 2 "
        "(lower n_splits, or shorten train/test, to make this note go away)"]
    cfg3 = parse_config(small_config(str(tmp_path), walk_forward={"train": "40d", "test": "20d", "n_splits": 2}))
    assert _splits_clamp_notes(lake, cfg3) == []
