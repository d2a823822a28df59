"""``maestro export``: round trips through the lake's records, freqtrade files only for tradeable records, one-line
errors for mistakes."""

from __future__ import annotations

import json

import pytest
import yaml

from maestro_pipeline.cli import main
from maestro_pipeline.config import LiveConfig, RiskSettings, parse_config
from maestro_pipeline.lake import Lake
from maestro_pipeline.trading import live_record, read_live, write_live
from tests.core.trading.test_record_store import T0, tables
from tests.support.config import small_config


@pytest.fixture
def project(tmp_path):
    """A maestro.yaml whose lake holds two live records: ema_cross (promising: tradeable), rsi (weak: not)."""
    cfg_dict = small_config(str(tmp_path / "lake"))
    (tmp_path / "maestro.yaml").write_text(yaml.safe_dump(cfg_dict))
    cfg = parse_config(cfg_dict)
    inst = cfg.instrument_objs[0]
    lake = Lake(tmp_path / "lake")
    for strategy, verdict, params in (("ema_cross", "promising", '{"fast": 12, "slow": 40}'),
                                      ("rsi", "weak", '{"window": 14, "lower": 30, "upper": 70}')):
        p, splits, report, bars = tables(params)
        report["verdict"] = verdict
        risk = RiskSettings(stop_loss=(0.04, "fraction"))
        write_live(lake, live_record(inst, strategy, p, report, splits, bars, risk, LiveConfig(), generated_at_ms=T0))
    return tmp_path, lake, inst


def run(tmp_path, *args):
    return main(["--config", str(tmp_path / "maestro.yaml"), "export", *args])


def test_json_round_trip_to_stdout_and_files(project, capsys):
    tmp_path, lake, inst = project
    assert run(tmp_path, "--strategy", "ema_cross") == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == read_live(lake, inst.key, "ema_cross")
    assert run(tmp_path, "--out", str(tmp_path / "out")) == 0
    for strategy in ("ema_cross", "rsi"):
        written = json.loads((tmp_path / "out" / inst.key / f"{strategy}.json").read_text())
        assert written == read_live(lake, inst.key, strategy)
    assert not list((tmp_path / "out").rglob("*.tmp"))


def test_freqtrade_writes_tradeable_records_only(project, capsys):
    tmp_path, lake, inst = project
    out = tmp_path / "strategies"
    assert run(tmp_path, "--format", "freqtrade", "--out", str(out)) == 0
    err = capsys.readouterr().err
    assert "rsi: not tradeable, skipped (verdict 'weak' is below live.tradeable_from 'promising'" in err
    assert sorted(p.name for p in out.iterdir()) == ["EmaCross.json"]
    f = json.loads((out / "EmaCross.json").read_text())
    doc = read_live(lake, inst.key, "ema_cross")
    assert f["strategy_name"] == "EmaCross" and f["params"]["buy"] == doc["params"]
    assert f["params"]["stoploss"] == {"stoploss": -0.04} and f["ft_stratparam_v"] == 1
    assert f["maestro"]["content_version"] == doc["content_version"] and f["maestro"]["tradeable"] is True
    assert run(tmp_path, "--format", "freqtrade", "--out", str(out), "--include-untradeable") == 0
    rsi = json.loads((out / "Rsi.json").read_text())
    assert rsi["maestro"]["tradeable"] is False and rsi["params"]["buy"] == read_live(lake, inst.key, "rsi")["params"]


def test_nothing_tradeable_exits_1(project, capsys):
    tmp_path, _, _ = project
    assert run(tmp_path, "--format", "freqtrade", "--out", str(tmp_path / "s"), "--strategy", "rsi") == 1


@pytest.mark.parametrize(("args", "msg"), [
    (("--format", "freqtrade"), "--format freqtrade needs --out"),
    (("--instrument", "binance.BTC_USDT.1h"), "instrument 'binance.BTC_USDT.1h' is not in maestro.yaml"),
    (("--strategy", "macd"), "--strategy 'macd' is not in maestro.yaml's strategies"),
])
def test_mistakes_are_one_line_and_exit_2(project, capsys, args, msg):
    tmp_path, _, _ = project
    assert run(tmp_path, *args) == 2
    err = capsys.readouterr().err.strip()
    assert msg in err and "\n" not in err and "Traceback" not in err


def test_an_empty_lake_says_what_to_materialize(tmp_path, capsys):
    (tmp_path / "maestro.yaml").write_text(yaml.safe_dump(small_config(str(tmp_path / "lake"))))
    assert run(tmp_path) == 2
    assert "materialize live_parameters first" in capsys.readouterr().err
