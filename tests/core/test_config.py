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
