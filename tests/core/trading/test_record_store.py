"""The live parameters record and its stable lake path: built from the walk-forward's tables, tradeable only above
the configured bar, written atomically with history, read back exactly."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import polars as pl
import pytest

from maestro_pipeline.config import LiveConfig, RiskSettings
from maestro_pipeline.errors import MaestroError
from maestro_pipeline.instruments import Instrument
from maestro_pipeline.lake import Lake
from maestro_pipeline.timeframes import DAY_MS, HOUR_MS
from maestro_pipeline.trading import history, live_record, read_live, spec_from_record, write_live
from tests.support.bars import clean_bars

T0 = 1_735_689_600_000  # 2025-01-01
INST = Instrument("synthetic", "BTC/USDT", "1h", date(2025, 1, 1))


def tables(live_params: str = '{"fast": 12, "slow": 40}', *, live: bool = True):
    rows = []
    for i in range(3 + live):
        ts = T0 + i * 20 * DAY_MS
        rows.append({"split": i, "train_start": ts, "train_end": ts + 40 * DAY_MS, "test_start": ts + 40 * DAY_MS,
                     "test_end": ts + 60 * DAY_MS, "params": live_params if i == 3 else '{"fast": 8, "slow": 30}',
                     "pick_note": "", "objective": "sharpe", "best_value": 1.2, "train_sharpe": 1.2,
                     "train_total_return": 0.05, "train_max_drawdown": -0.04, "train_trades": 14, "n_trials": 6,
                     "seed": 100 + i, "sampler_settings": json.dumps({"sampler": "tpe"}), "fingerprint": f"fp{i}",
                     "live": i == 3})
    params = pl.DataFrame(rows)
    splits = params.select("split", "train_start", "train_end", "test_start", "test_end", "live").with_columns(
        pl.lit("grid").alias("live_reason"))
    report = {"verdict": "promising", "verdict_reason": "r", "thresholds": "t", "oos_sharpe": 0.8,
              "oos_total_return": 0.04, "oos_max_drawdown": -0.1, "oos_trades": 20, "n_splits": 3,
              "first_test": "2025-02-10 00:00", "last_test_end": "2025-04-11 00:00", "bars_data_version": "dv1"}
    bars = clean_bars(int(70 * 24), T0 + 40 * DAY_MS, seed=2)  # data reaches 10 days into the live window
    return params, splits, report, bars


def build(live: LiveConfig | None = None, risk: RiskSettings | None = None, **kw):
    live, risk = live or LiveConfig(), risk or RiskSettings()
    params, splits, report, bars = tables(**{k: v for k, v in kw.items() if k in ("live_params",)})
    report.update(kw.get("report", {}))
    return live_record(INST, "ema_cross", params, report, splits, bars, risk, live, generated_at_ms=T0, run_id="r1")


def test_the_record_states_the_live_pick_its_window_and_versions():
    doc = build()
    assert doc["params"] == {"fast": 12, "slow": 40}
    assert doc["split"] == 3
    assert doc["valid_from_ms"] == T0 + 100 * DAY_MS and doc["valid_until_ms"] == T0 + 120 * DAY_MS
    assert doc["valid_from"] == "2025-04-11 00:00" and doc["valid_until"] == "2025-05-01 00:00"
    assert doc["train_start_ms"] == T0 + 60 * DAY_MS and doc["train_end_ms"] == T0 + 100 * DAY_MS
    assert doc["oos_end_ms"] == T0 + 100 * DAY_MS  # the complete splits end where the live window begins
    assert doc["verdict"] == "promising" and doc["data_version"] == "dv1"
    assert doc["search"]["seed"] == 103 and doc["search"]["fingerprint"] == "fp3"
    assert set(doc["code_version"]) == {"strategy", "engine"} and all(doc["code_version"].values())
    assert doc["risk"]["described"] == "all in" and doc["risk"]["stop_loss"] is None
    assert doc["tradeable"] is True and "clears live.tradeable_from 'promising'" in doc["tradeable_reason"]


@pytest.mark.parametrize(("verdict", "bar", "ok"), [
    ("robust", "robust", True), ("promising", "robust", False), ("promising", "promising", True),
    ("weak", "promising", False), ("weak", "weak", True), ("overfit", "weak", False),
    ("insufficient data", "weak", False),
])
def test_tradeable_only_when_the_verdict_clears_the_bar(verdict, bar, ok):
    doc = build(LiveConfig(tradeable_from=bar), report={"verdict": verdict})
    assert doc["tradeable"] is ok
    assert (f"verdict {verdict!r}" in doc["tradeable_reason"]) and (f"{bar!r}" in doc["tradeable_reason"])


def test_no_pick_or_an_ended_window_is_not_tradeable():
    doc = build(live_params="")
    assert doc["tradeable"] is False and "no live pick" in doc["tradeable_reason"] and doc["params"] is None
    params, splits, report, bars = tables()
    later = clean_bars(int(90 * 24), T0 + 40 * DAY_MS, seed=2)  # data past the live window's end
    doc = live_record(INST, "ema_cross", params, report, splits, later, RiskSettings(), LiveConfig(),
                      generated_at_ms=T0)
    assert doc["tradeable"] is False and "a new split is due" in doc["tradeable_reason"]


def test_stops_are_recorded_and_read_back_as_the_engines_risk_controls():
    risk = RiskSettings(stop_loss=(2.0, "atr"), take_profit=(0.06, "fraction"))
    doc = build(risk=risk)
    assert doc["risk"]["stop_loss"] == {"value": 2.0, "unit": "atr"}
    assert doc["risk"]["take_profit"] == {"value": 0.06, "unit": "fraction"}
    spec = spec_from_record(doc)
    assert spec.stop_loss.unit == "atr" and spec.stop_loss.value == 2.0 and spec.take_profit.value == 0.06
    # the ATR at the live window's start, as a fraction of the close: by hand, the mean of the last 14 true ranges
    # before that bar (vectorbt's ATR, the engine's) over the last close before it
    bars = tables()[3]
    j = int(np.searchsorted(bars["timestamp"].to_numpy(), doc["valid_from_ms"]))
    h, lo, c = (bars[k].to_numpy()[:j] for k in ("high", "low", "close"))
    tr = np.maximum(h[1:] - lo[1:], np.maximum(abs(h[1:] - c[:-1]), abs(lo[1:] - c[:-1])))
    tr = np.r_[h[0] - lo[0], tr]
    assert doc["atr_fraction"] is not None and 0 < doc["atr_fraction"] < 0.1
    assert doc["atr_fraction"] == pytest.approx(tr[-14:].mean() / c[-1], rel=1e-9)


def test_content_version_ignores_the_time_of_writing_but_not_the_pick():
    a = build()
    params, splits, report, bars = tables()
    b = live_record(INST, "ema_cross", params, report, splits, bars, RiskSettings(), LiveConfig(),
                    generated_at_ms=T0 + HOUR_MS, run_id="another")
    assert a["content_version"] == b["content_version"]
    assert build(live_params='{"fast": 13, "slow": 40}')["content_version"] != a["content_version"]


def test_written_at_a_stable_path_with_history_only_when_content_changes(tmp_path):
    lake = Lake(tmp_path)
    doc = build()
    s1 = write_live(lake, doc)
    assert s1.path == (tmp_path / "live_parameters" / "exchange=synthetic" / "symbol=BTC_USDT" / "timeframe=1h"
                       / "strategy=ema_cross" / "live_parameters.json")
    assert read_live(lake, INST.key, "ema_cross") == json.loads(json.dumps(doc))
    assert s1.changed and s1.history_path is not None and s1.history_path.parent.name == "history"
    again = dict(doc, generated_at_ms=T0 + DAY_MS, generated_at="2025-01-02 00:00")
    s2 = write_live(lake, again)
    assert not s2.changed and s2.history_path is None and len(history(lake, INST.key, "ema_cross")) == 1
    new = build(live_params='{"fast": 13, "slow": 40}') | {"generated_at_ms": T0 + 2 * DAY_MS}
    write_live(lake, new)
    hist = history(lake, INST.key, "ema_cross")
    assert len(hist) == 2 and json.loads(hist[0].read_text())["params"] == {"fast": 12, "slow": 40}
    assert read_live(lake, INST.key, "ema_cross")["params"] == {"fast": 13, "slow": 40}
    row = lake.read_file("live_parameters", {**INST.hive, "strategy": "ema_cross"}).row(0, named=True)
    assert row["tradeable"] is True and json.loads(row["live_params"]) == {"fast": 13, "slow": 40}


def test_a_failed_write_leaves_the_previous_record(tmp_path):
    lake = Lake(tmp_path)
    write_live(lake, build())
    before = read_live(lake, INST.key, "ema_cross")
    bad = build(live_params='{"fast": 13, "slow": 40}')
    bad["verdict_reason"] = float("nan")  # not valid JSON: the write fails before anything is renamed
    with pytest.raises(ValueError):
        write_live(lake, bad)
    assert read_live(lake, INST.key, "ema_cross") == before
    assert len(history(lake, INST.key, "ema_cross")) == 1
    assert not list(tmp_path.rglob("*.tmp"))


def test_a_corrupt_file_is_one_clear_error(tmp_path):
    lake = Lake(tmp_path)
    s = write_live(lake, build())
    s.path.write_text("{not json")
    with pytest.raises(MaestroError, match="not a valid live parameters file"):
        read_live(lake, INST.key, "ema_cross")


def test_non_finite_figures_become_null_so_the_record_is_strict_json():
    params, splits, report, bars = tables()
    settings = json.dumps({"sampler": "tpe", "gamma": float("nan")})  # Python's json writes NaN unless told not to
    params = params.with_columns(pl.lit(float("nan")).alias("train_sharpe"), pl.lit(settings).alias("sampler_settings"))
    doc = live_record(INST, "ema_cross", params, report, splits, bars, RiskSettings(), LiveConfig(), generated_at_ms=T0)
    assert doc["train"]["sharpe"] is None and doc["search"]["sampler_settings"] == {"sampler": "tpe", "gamma": None}
    json.dumps(doc, allow_nan=False)
