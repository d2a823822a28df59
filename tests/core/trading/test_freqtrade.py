"""The freqtrade export, field by field against freqtrade's documented parameter file layout.

The layout (freqtrade 2026.9, docs/hyperopt.md "Parameter file"; written by
``freqtrade/optimize/hyperopt_tools.py::HyperoptTools.export_params``, read by
``freqtrade/strategy/hyper.py::HyperStrategyMixin``):

    {"strategy_name": "<class>", "params": {"buy": {...}, "sell": {...}, "roi": {"<minutes>": float},
     "stoploss": {"stoploss": -float}, "trailing": {"trailing_stop": bool, "trailing_stop_positive": float|None,
     "trailing_stop_positive_offset": float, "trailing_only_offset_is_reached": bool},
     "max_open_trades": {"max_open_trades": int}}, "ft_stratparam_v": 1, "export_time": "<str(datetime, UTC)>"}

freqtrade reads ``params[space]`` for the spaces its strategy declares, ``params["stoploss"]["stoploss"]``,
``params["trailing"][<the four keys>]``, ``params["roi"]`` as the ``minimal_roi`` table, and refuses the file when
``strategy_name`` is not the class name; other top-level keys are ignored.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from maestro_pipeline.config import LiveConfig
from maestro_pipeline.errors import MaestroError
from maestro_pipeline.trading import freqtrade_class, freqtrade_file

TRAILING_KEYS = {"trailing_stop", "trailing_stop_positive", "trailing_stop_positive_offset",
                 "trailing_only_offset_is_reached"}
#: the spaces freqtrade knows (freqtrade/constants.py HYPEROPT_BUILTIN_SPACES, plus max_open_trades)
SPACES = {"buy", "sell", "enter", "exit", "roi", "stoploss", "trailing", "protection", "trades", "max_open_trades"}


def stop(v, unit="fraction"):
    return {"value": v, "unit": unit}


def doc(**risk):
    base = {"stop_loss": None, "take_profit": None, "trailing_stop": None, "sizing": "fraction", "fraction": 1.0,
            "risk_per_trade": 0.01, "max_leverage": 1.0, "atr_window": 14, "described": "x"}
    return {"instrument": "binance.BTC_USDT.1h", "symbol": "BTC/USDT", "timeframe": "1h", "strategy": "ema_cross",
            "params": {"fast": 12, "slow": 40}, "risk": base | risk, "atr_fraction": 0.01, "tradeable": True,
            "tradeable_reason": "ok", "verdict": "promising", "valid_from": "2026-09-08 00:00",
            "valid_until": "2026-09-28 00:00", "content_version": "abc", "data_version": "dv"}


WHEN = datetime(2026, 9, 10, 12, 30, 5, 123456, tzinfo=UTC)


def test_plain_pick_layout_field_by_field(tmp_path):
    f = freqtrade_file(doc(), LiveConfig(), export_time=WHEN)
    # top level: the four documented keys (plus Maestro's own block, which freqtrade ignores)
    assert set(f) == {"strategy_name", "params", "ft_stratparam_v", "export_time", "maestro"}
    assert f["strategy_name"] == "EmaCross"
    assert f["ft_stratparam_v"] == 1
    assert f["export_time"] == "2026-09-10 12:30:05.123456+00:00" == str(WHEN)
    assert datetime.fromisoformat(f["export_time"]) == WHEN
    # params: only documented spaces; the strategy's parameters under buy; no stop -> no stoploss/trailing/roi
    assert set(f["params"]) <= SPACES
    assert f["params"] == {"buy": {"fast": 12, "slow": 40}, "sell": {}}
    # it is a JSON file freqtrade can parse (plain JSON numbers, no NaN)
    path = tmp_path / f"{f['strategy_name']}.json"
    path.write_text(json.dumps(f, indent=2, allow_nan=False))
    assert json.loads(path.read_text()) == f


def test_stop_loss_and_take_profit():
    f = freqtrade_file(doc(stop_loss=stop(0.04), take_profit=stop(0.1)), LiveConfig(), export_time=WHEN)
    p = f["params"]
    assert p["stoploss"] == {"stoploss": -0.04}
    assert isinstance(p["stoploss"]["stoploss"], float) and p["stoploss"]["stoploss"] < 0
    assert p["roi"] == {"0": 0.1}  # minutes since entry (a string key) -> minimum profit to exit
    assert all(k.isdigit() for k in p["roi"])
    assert "trailing" not in p


def test_trailing_stop_is_freqtrades_trailing_from_the_start():
    f = freqtrade_file(doc(trailing_stop=stop(0.05)), LiveConfig(), export_time=WHEN)
    p = f["params"]
    assert set(p["trailing"]) == TRAILING_KEYS
    assert p["trailing"] == {"trailing_stop": True, "trailing_stop_positive": None,
                             "trailing_stop_positive_offset": 0.0, "trailing_only_offset_is_reached": False}
    assert p["stoploss"] == {"stoploss": -0.05}  # freqtrade trails at the stoploss distance when positive is None


def test_atr_stops_are_converted_at_the_live_windows_atr_and_say_so():
    f = freqtrade_file(doc(stop_loss=stop(2.0, "atr")), LiveConfig(), export_time=WHEN)
    assert f["params"]["stoploss"] == {"stoploss": pytest.approx(-0.02)}
    assert any("2 ATR converted" in n for n in f["maestro"]["notes"])
    d = doc(stop_loss=stop(2.0, "atr")) | {"atr_fraction": None}
    f = freqtrade_file(d, LiveConfig(), export_time=WHEN)
    assert "stoploss" not in f["params"] and any("section left out" in n for n in f["maestro"]["notes"])


def test_sizing_other_than_all_in_is_a_note():
    f = freqtrade_file(doc(sizing="risk", stop_loss=stop(0.03), described="stop_loss 3%, risk 0.01 per trade"),
                       LiveConfig(), export_time=WHEN)
    assert any(n.startswith("sizing:") and "stake_amount" in n for n in f["maestro"]["notes"])
    assert not freqtrade_file(doc(), LiveConfig(), export_time=WHEN)["maestro"]["notes"]


def test_class_name_from_config_or_camel_case():
    assert freqtrade_class("mean_reversion_bands", LiveConfig()) == "MeanReversionBands"
    assert freqtrade_class("ema_cross", LiveConfig(freqtrade_class={"ema_cross": "MyEma"})) == "MyEma"
    f = freqtrade_file(doc(), LiveConfig(freqtrade_class={"ema_cross": "MyEma"}), export_time=WHEN)
    assert f["strategy_name"] == "MyEma"


def test_the_maestro_block_carries_the_tradeable_flag_and_window():
    d = doc() | {"tradeable": False, "tradeable_reason": "verdict 'weak' is below live.tradeable_from 'promising'"}
    m = freqtrade_file(d, LiveConfig(), export_time=WHEN)["maestro"]
    assert m["tradeable"] is False and "below live.tradeable_from" in m["tradeable_reason"]
    assert (m["valid_from"], m["valid_until"], m["content_version"]) == ("2026-09-08 00:00", "2026-09-28 00:00", "abc")


def test_no_pick_cannot_be_exported():
    with pytest.raises(MaestroError, match="no live parameters to export"):
        freqtrade_file(doc() | {"params": None, "tradeable_reason": "no live split"}, LiveConfig())
