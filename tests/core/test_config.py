"""maestro.yaml validation: good configs load, every mistake gives one line naming the key and the fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from maestro_pipeline.config import load_config, parse_config
from maestro_pipeline.errors import ConfigError
from tests.support.config import small_config

ROOT = Path(__file__).resolve().parents[2]


def test_project_config_loads():
    cfg = load_config(ROOT / "maestro.yaml")
    assert [i.key for i in cfg.instrument_objs] == ["synthetic.BTC_USDT.1h", "synthetic.ETH_USDT.4h"]
    assert cfg.strategies == ["ema_cross", "rsi", "bollinger"]


def test_small_config_parses_with_defaults():
    cfg = parse_config(small_config("lake"))
    assert cfg.walk_forward.n_splits == 3
    assert cfg.costs_for("binance").fee == 0.001  # falls back to the default costs
    assert cfg.schedule.nightly_cron == "30 0 * * *"


def _inst(**kw):
    base = {"exchange": "synthetic", "symbol": "BTC/USDT", "timeframe": "1h", "start": "2026-04-01"}
    base.update(kw)
    return base


@pytest.mark.parametrize(
    "patch, expected",
    [
        ({"instruments": [_inst(exchange="binanse")]},
         r"instruments\[0\]\.exchange: unknown exchange 'binanse' \(did you mean binance"),
        ({"instruments": [_inst(timeframe="7h")]},
         r"instruments\[0\]\.timeframe: unsupported timeframe '7h'; use one of 1m, 3m"),
        ({"instruments": [_inst(start="2026-05-01", end="2026-04-01")]},
         r"instruments\[0\]: .*end 2026-04-01 must be after start 2026-05-01"),
        ({"instruments": [_inst(start="2999-01-01")]}, r"instruments\[0\]: .*start 2999-01-01 is in the future"),
        ({"instruments": [_inst(symbol="BTCUSDT")]}, r"instruments\[0\]\.symbol: .*write BASE/QUOTE"),
        ({"instruments": []}, r"instruments: list at least one instrument"),
        ({"instruments": [_inst(), _inst()]}, r"instrument listed twice: synthetic.BTC_USDT.1h"),
        ({"strategies": []}, r"strategies: list at least one strategy; available: .*ema_cross"),
        ({"strategies": "al"},
         r"strategies: write a list of strategy names \(e.g. \[ema_cross, rsi\]\) or 'all', not 'al'"),
        ({"strategies": ["ema_cros"]}, r"strategies: unknown strategy 'ema_cros' \(did you mean ema_cross"),
        ({"walk_forward": {"train": "ninety days"}}, r"walk_forward\.train: cannot read window length"),
        ({"walk_forward": {"n_splits": 0}}, r"walk_forward\.n_splits: "),
        ({"search": {"objective": "profit"}}, r"search\.objective: "),
        ({"costs": {"default": {"fee": -0.1}}}, r"costs\.default\.fee: "),
        ({"colour": "blue"}, r"colour: unknown key; remove it or check its spelling"),
        ({"risk": {"default": {"stopp_loss": 0.05}}},
         r"risk\.default\.stopp_loss: unknown key; .*did you mean stop_loss"),
        ({"risk": {"default": {"stop_loss": "lots"}}},
         r"risk\.default\.stop_loss: cannot read 'lots'; write a fraction .* \('2atr'\)"),
        ({"risk": {"default": {"take_profit": 1.5}}}, r"risk\.default\.take_profit: 1\.5 must be above 0 and below 1"),
        ({"risk": {"default": {"stop_loss": 0.05, "trailing_stop": 0.03}}}, r"stop_loss and trailing_stop: pick one"),
        ({"risk": {"default": {"sizing": "risk"}}}, r"sizing: risk sizes each position by its stop distance; set"),
        ({"risk": {"default": {"max_leverage": 3}}}, r"risk\.default\.max_leverage: 3 must be in \(0, 1\]"),
        ({"risk": {"strategies": {"ema_cros": {}}}}, r"risk\.strategies: unknown strategy 'ema_cros' \(did you mean"),
        ({"risk": {"default": {"search": {"stop_loss": [0.01, "3atr"]}}}}, r"search\.stop_loss: both ends in one unit"),
        ({"risk": {"default": {"search": {"fee": [0.01, 0.02]}}}}, r"search\.fee: cannot be searched; searchable: "),
        ({"costs": {"default": {"fee": 0.001, "maintenance_margin": 0.0001}}},
         r"costs\.default: maintenance_margin 0\.0001 is below the fee 0\.001"),
        ({"evaluation": {"min_oos_days": 1}}, r"evaluation\.min_oos_days: "),
        ({"search": {"min_trades": 0}}, r"search\.min_trades: "),
    ],
)
def test_mistakes_give_one_line(patch, expected):
    with pytest.raises(ConfigError, match=expected) as err:
        parse_config(small_config("lake", **patch))
    assert "\n" not in str(err.value)
    assert str(err.value).startswith("maestro.yaml: ")


def test_risk_resolves_per_strategy_over_the_default():
    cfg = parse_config(small_config("lake", strategies=["ema_cross", "rsi", "bollinger"], risk={
        "default": {"stop_loss": "5%", "take_profit": "2atr"},
        "strategies": {"ema_cross": {"trailing_stop": "3atr", "search": {"take_profit": [0.02, 0.2]}},
                       "rsi": {"sizing": "risk", "risk_per_trade": 0.01, "stop_loss": 0.02}}}))
    ema = cfg.risk.for_strategy("ema_cross")
    # its trailing stop replaces the inherited stop loss; its searched take profit replaces the fixed one
    assert ema.stop_loss is None and ema.trailing_stop == (3.0, "atr") and ema.take_profit is None
    assert ema.search == {"take_profit": ((0.02, "fraction"), (0.2, "fraction"))}
    rsi = cfg.risk.for_strategy("rsi")
    assert (rsi.sizing, rsi.stop_loss, rsi.take_profit) == ("risk", (0.02, "fraction"), (2.0, "atr"))
    plain = cfg.risk.for_strategy("bollinger")
    assert (plain.stop_loss, plain.take_profit, plain.search) == ((0.05, "fraction"), (2.0, "atr"), {})
    assert parse_config(small_config("lake")).risk.for_strategy("rsi").stop_loss is None  # no risk: none
    assert (cfg.evaluation.min_oos_days, cfg.evaluation.min_oos_trades, cfg.search.min_trades) == (30, 10, 5)
    assert cfg.costs_for("synthetic").maintenance_margin == 0.005


def test_missing_key_and_not_a_mapping(tmp_path):
    data = small_config("lake")
    del data["instruments"]
    with pytest.raises(ConfigError, match=r"instruments: missing; add it"):
        parse_config(data)
    p = tmp_path / "maestro.yaml"
    p.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(p)


def test_broken_yaml_and_missing_file(tmp_path):
    p = tmp_path / "maestro.yaml"
    p.write_text("instruments: [\n  {exchange: synthetic\n")
    with pytest.raises(ConfigError, match=r"not valid YAML at line \d+"):
        load_config(p)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_cli_prints_one_line_and_exits_2(tmp_path):
    p = tmp_path / "maestro.yaml"
    p.write_text(yaml.safe_dump(small_config("lake", instruments=[_inst(timeframe="7h")])))
    out = subprocess.run([sys.executable, "-m", "maestro_pipeline.cli", "--config", str(p), "check-config"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "unsupported timeframe '7h'" in lines[0]
    assert "Traceback" not in out.stderr


def test_all_strategies_means_the_whole_catalog():
    from maestro_pipeline.strategies import available_strategies

    cfg = parse_config(small_config("lake", strategies="all"))
    assert cfg.strategies == available_strategies() and len(cfg.strategies) == 22


def test_concurrency_config_becomes_the_dagster_instance_limits(tmp_path, monkeypatch):
    """maestro.yaml's concurrency section is written into DAGSTER_HOME/dagster.yaml, and Dagster reads it back."""
    import dagster as dg

    from maestro_pipeline.cli import ensure_dagster_home

    cfg = parse_config({
        "instruments": [{"exchange": "synthetic", "symbol": "BTC/USDT", "timeframe": "1h", "start": "2025-01-01"}],
        "strategies": ["ema_cross"], "concurrency": {"max_concurrent_runs": 3, "research_pool": 2}})
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    home = ensure_dagster_home(cfg)
    c = dg.DagsterInstance.from_config(str(home)).get_concurrency_config()
    assert (c.run_queue_config.max_concurrent_runs, c.pool_config.default_pool_limit) == (3, 2)
    with pytest.raises(ConfigError, match="research_pool"):
        parse_config({**cfg.model_dump(mode="json"), "concurrency": {"research_pool": 0}})


# ------------------------------------------------------------------ issue 14: contract targets, check-config


def _file_inst(path: str, name: str, **over) -> dict:
    return {"exchange": "file", "symbol": "BTC/USD", "timeframe": "1d", "start": "2024-01-01", "path": path,
            "name": name, **over}


def test_contract_thresholds_per_source_and_per_instrument():
    insts = [_file_inst("a.csv", "coinbase"), _file_inst("b.csv", "kraken"),
             {"exchange": "synthetic", "symbol": "BTC/USDT", "timeframe": "1h", "start": "2026-04-01"}]
    cfg = parse_config(small_config("lake", instruments=insts, data_contract={
        "exchanges": {"file_coinbase": {"max_gap": "3d"}},
        "instruments": {"file_kraken.BTC_USD.1d": {"max_gap": "5d", "max_jump": 50}}}))
    dc = cfg.data_contract
    assert dc.policy_for("file_coinbase", "file_coinbase.BTC_USD.1d").max_gap == "3d"
    kraken = dc.policy_for("file_kraken", "file_kraken.BTC_USD.1d")
    assert (kraken.max_gap, kraken.max_jump) == ("5d", 50)
    assert dc.policy_for("synthetic", "synthetic.BTC_USDT.1h").max_gap == "6h"       # untouched
    for bad, msg in [
        ({"exchanges": {"file": {"max_gap": "3d"}}},
         "'file' names no source: a file instrument's source is file_<name>"),
        ({"exchanges": {"file_coinbsae": {}}}, "no file instrument has source 'file_coinbsae' (did you mean "
                                                "file_coinbase"),
        ({"instruments": {"file_kraken.BTC_USD.1h": {}}}, "'file_kraken.BTC_USD.1h' is not an instrument (did you "
                                                          "mean file_kraken.BTC_USD.1d"),
    ]:
        with pytest.raises(ConfigError) as e:
            parse_config(small_config("lake", instruments=insts, data_contract=bad))
        assert msg in str(e.value) and "\n" not in str(e.value) and "coinbase?" not in str(e.value).split("(")[0]


def test_file_reading_settings_only_for_file_instruments():
    with pytest.raises(ConfigError, match="columns and day_first are only for exchange: file"):
        parse_config(small_config("lake", instruments=[
            {"exchange": "synthetic", "symbol": "BTC/USDT", "timeframe": "1h", "start": "2026-04-01",
             "columns": "BTC"}]))


def _daily_csv(path: Path, days: int, start: str = "2024-01-01", step: str = "1D") -> None:
    import pandas as pd

    idx = pd.date_range(start, periods=days, freq=step, tz="UTC")
    path.write_text("date,open,high,low,close,volume\n" + "".join(f"{t:%Y-%m-%d},1,2,0.5,1.5,3\n" for t in idx))


def test_check_config_opens_every_file_instrument(tmp_path, capsys):
    from maestro_pipeline.cli import main

    _daily_csv(tmp_path / "good.csv", 40)
    _daily_csv(tmp_path / "monthly.csv", 12, step="MS")
    (tmp_path / "wide.csv").write_text("date,BTC:open,BTC:high,BTC:low,BTC:close,ETH:open,ETH:high,ETH:low,ETH:close\n"
                                       "2024-01-01,1,2,0.5,1.5,1,2,0.5,1.5\n2024-01-02,1,2,0.5,1.5,1,2,0.5,1.5\n")
    insts = [_file_inst("good.csv", "good"), _file_inst("missing.csv", "missing"), _file_inst("wide.csv", "wide"),
             _file_inst("monthly.csv", "monthly"), _file_inst("wide.csv", "wide_eth", columns="ETH"),
             {"exchange": "binance", "symbol": "BTC/USDT", "timeframe": "1h", "start": "2024-01-01"}]
    p = tmp_path / "maestro.yaml"
    p.write_text(yaml.safe_dump(small_config("lake", instruments=insts)))
    assert main(["--config", str(p), "check-config"]) == 2
    out, err = capsys.readouterr()
    lines = {ln.split(":")[0]: ln for ln in out.splitlines() if not ln.startswith(" ")}
    good = lines["file_good.BTC_USD.1d"]
    assert "40 rows" in good and "2024-01-01 00:00 .. 2024-02-09 00:00" in good
    assert "1 day apart = 1d" in good and "end: defaults to it" in good
    assert "missing.csv: file not found" in lines["file_missing.BTC_USD.1d"]
    assert "pick one with `columns: BTC`" in lines["file_wide.BTC_USD.1d"]
    assert "about 1 month" in lines["file_monthly.BTC_USD.1d"] and "not a supported timeframe" in \
        lines["file_monthly.BTC_USD.1d"]
    assert "ok — wide.csv: 2 rows" in lines["file_wide_eth.BTC_USD.1d"]
    assert "offline; --online checks" in lines["binance.BTC_USDT.1h"]
    assert err.strip() == ("maestro: 3 of 6 instrument(s) cannot be ingested: file_missing.BTC_USD.1d, "
                           "file_wide.BTC_USD.1d, file_monthly.BTC_USD.1d (each said why above)")
