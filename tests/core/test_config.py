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
    ],
)
def test_mistakes_give_one_line(patch, expected):
    with pytest.raises(ConfigError, match=expected) as err:
        parse_config(small_config("lake", **patch))
    assert "\n" not in str(err.value)
    assert str(err.value).startswith("maestro.yaml: ")


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
