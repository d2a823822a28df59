"""live_parameters -> live_performance (+ the live_drift check) and the drift sensor, on the real asset graph over
a crafted market read from a file: stable first (no alarm), then the market flips after the live window began
(the check warns with the figures; with ``live.reoptimize_on_drift`` the sensor requests one re-optimization)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl

from assets import build_definitions
from assets.partitions import bars_key, research_key
from maestro_pipeline.config import parse_config
from maestro_pipeline.lake import Lake
from maestro_pipeline.timeframes import HOUR_MS
from maestro_pipeline.trading import history, read_live
from tests.support.config import small_config

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
def _ms(*ymd: int) -> int:
    return int(datetime(*ymd, tzinfo=UTC).timestamp() * 1000)


START = _ms(2026, 4, 1)
END = _ms(2026, 9, 27)
#: The grid (40-day train, 20-day test from 2026-04-01) puts the live window at 2026-09-08 .. 2026-09-28.
LIVE_FROM = _ms(2026, 9, 8)
#: The crafted market flips here, 8 days into the live window; the first clock stops here, the second 9 days later.
FLIP = _ms(2026, 9, 16)
LATER = _ms(2026, 9, 25)
MONTHS = ["2026-04", "2026-05", "2026-06", "2026-07", "2026-08", "2026-09"]


def write_market(path: Path, flip_from_ms: int | None, seed: int = 3) -> None:
    """Hourly bars: 20-day swings plus noise; from ``flip_from_ms`` on, 30-bar whipsaws (an EMA cross that followed
    the swings now reverses late on every one)."""
    ts = np.arange(START, END, HOUR_MS, dtype=np.int64)
    n, t = len(ts), np.arange(len(ts))
    rng = np.random.default_rng(seed)
    logp = 0.06 * np.sin(2 * np.pi * t / 480) + np.cumsum(rng.normal(0, 0.004, n))
    if flip_from_ms is not None:
        k = int(np.searchsorted(ts, flip_from_ms))
        logp[k:] = logp[k] + 0.04 * np.sin(2 * np.pi * (t[k:] - k) / 30) + np.cumsum(rng.normal(0, 0.002, n - k))
    close = 100 * np.exp(logp)
    open_ = np.r_[close[0], close[:-1]]
    pl.DataFrame({"timestamp": ts, "open": open_, "high": np.maximum(open_, close) * 1.001,
                  "low": np.minimum(open_, close) * 0.999, "close": close, "volume": np.full(n, 5.0)}
                 ).write_parquet(path)


class LiveGraph:
    def __init__(self, tmp_path: Path, instance: dg.DagsterInstance, now_ms: int = FLIP, **live):
        self.file = tmp_path / "crafted.parquet"
        self.cfg = parse_config(small_config(
            str(tmp_path / "lake"), strategies=["ema_cross"], live=live,
            instruments=[{"exchange": "file", "path": str(self.file), "name": "crafted", "symbol": "BTC/USDT",
                          "timeframe": "1h", "start": "2026-04-01"}]))
        self.inst = self.cfg.instrument_objs[0]
        self.key = research_key(self.inst.key, "ema_cross")
        self.part = {**self.inst.hive, "strategy": "ema_cross"}
        self.lake, self.instance = Lake(tmp_path / "lake"), instance
        self.set_clock(now_ms)

    def set_clock(self, now_ms: int) -> None:
        self.defs = build_definitions(self.cfg, now_ms=now_ms)
        repo = self.defs.get_repository_def()
        self.assets = list(repo.assets_defs_by_key.values())
        self.by_name = {k.path[-1]: a for k, a in repo.assets_defs_by_key.items()}

    def run(self, names, key, tags=None):
        return dg.materialize(self.assets, selection=[self.by_name[n] for n in names], partition_key=key,
                              instance=self.instance, run_config=QUIET, tags=tags)

    def bars(self, months=MONTHS):
        for m in months:
            self.run(["raw_candles", "validated_bars"], bars_key(m, self.inst.key))

    def drift_check(self, result) -> dg.AssetCheckEvaluation:
        (ev,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "live_drift"]
        return ev

    def sensor(self):
        sensor = self.defs.get_sensor_def("reoptimize_on_drift")
        with dg.build_sensor_context(instance=self.instance, resources=self.defs.resources,
                                     definitions=self.defs) as ctx:
            return sensor(ctx)


def test_stable_market_then_a_flip_after_the_live_window_starts(tmp_path, instance):
    g = LiveGraph(tmp_path, instance, reoptimize_on_drift=True, tradeable_from="weak")
    write_market(g.file, FLIP)  # the file holds the future too; the pinned clock shows only bars before FLIP
    g.bars()
    g.run(["walk_forward_splits"], g.inst.key)
    res = g.run(["split_optimal_params", "oos_reports", "live_parameters", "live_performance"], g.key)

    # the export: the live split's pick at the documented path, with its window and versions
    path = tmp_path / "lake" / "live_parameters" / "exchange=file_crafted" / "symbol=BTC_USDT" / "timeframe=1h" \
        / "strategy=ema_cross" / "live_parameters.json"
    doc = json.loads(path.read_text())
    params = g.lake.read_file("split_optimal_params", g.part)
    live_row = params.filter(pl.col("live")).row(0, named=True)
    assert doc["params"] == json.loads(live_row["params"])
    assert (doc["valid_from_ms"], doc["valid_until_ms"]) == (live_row["test_start"], live_row["test_end"])
    assert doc["valid_from_ms"] == LIVE_FROM and doc["data_end_ms"] == FLIP
    report = g.lake.read_file("oos_reports", g.part).row(0, named=True)
    assert doc["verdict"] == report["verdict"] and doc["data_version"] == report["bars_data_version"]
    assert doc["tradeable"] is (report["verdict"] in ("robust", "promising", "weak"))
    assert len(history(g.lake, g.inst.key, "ema_cross")) == 1

    # stable so far: the live result is inside the band, the check passes
    perf = g.lake.read_file("live_performance", g.part).row(0, named=True)
    assert perf["status"] == "within band", perf["description"]
    assert perf["live_bars"] == 8 * 24 and perf["band_low"] <= perf["live_return"] <= perf["band_high"]
    assert g.drift_check(res).passed
    skip = g.sensor()
    assert isinstance(skip, dg.SkipReason) and "within band" in skip.skip_message

    # nine days later the nightly refresh has appended the bars since: the market flipped after the live window
    # began; no new test window is complete, so the splits and the pick stay; live_performance follows the bars
    g.set_clock(LATER)
    g.bars(MONTHS[-1:])
    res = g.run(["live_performance"], g.key)
    perf = g.lake.read_file("live_performance", g.part).row(0, named=True)
    assert perf["status"] == "below band" and perf["drift_alarm"], perf["description"]
    assert perf["live_bars"] == 17 * 24 and perf["evaluated_to_ms"] == LATER
    ev = g.drift_check(res)
    assert not ev.passed and ev.severity == dg.AssetCheckSeverity.WARN
    assert ev.metadata["live_return"].value < ev.metadata["band_low"].value
    assert "below the band" in ev.description
    assert ev.metadata["action"].value.startswith("re-optimization requested")
    # the report card's live section and the leaderboard show the pick, the tradeable flag and the drift status
    (mat,) = res.asset_materializations_for_node("live_performance")
    card = mat.metadata["report_card"].value
    assert "below band" in card and json.dumps(doc["params"], sort_keys=True) in card
    assert f"tradeable | {'yes' if doc['tradeable'] else 'no'}" in card
    g.run(["strategy_leaderboard"], None)
    board = g.lake.read_file("strategy_leaderboard").row(0, named=True)
    assert (board["drift_status"], board["tradeable"]) == ("below band", doc["tradeable"])
    assert json.loads(board["live_params"]) == doc["params"]

    # the sensor asks for one re-optimization of that pair, keyed by the alarm
    result = g.sensor()
    (req,) = result.run_requests
    assert req.partition_key == g.key and req.tags["maestro/trigger"] == "live_drift"
    assert req.run_key == f"{g.inst.key}|ema_cross|drift@{perf['evaluated_to_ms']}"
    g.run(["live_parameters", "live_performance"], g.key, tags=req.tags)
    new = read_live(g.lake, g.inst.key, "ema_cross")
    assert new["reoptimized_on_drift"]["evaluated_to_ms"] == perf["evaluated_to_ms"]
    assert new["train_end_ms"] == new["valid_from_ms"] == perf["evaluated_to_ms"]
    assert new["train_end_ms"] - new["train_start_ms"] == doc["train_end_ms"] - doc["train_start_ms"]
    assert new["valid_until_ms"] == doc["valid_until_ms"]
    assert new["live_reason"].startswith("re-optimized on live drift")
    assert len(history(g.lake, g.inst.key, "ema_cross")) == 2
    # the new pick starts its own window: nothing to judge yet, so no alarm and no new request
    perf = g.lake.read_file("live_performance", g.part).row(0, named=True)
    assert perf["status"] == "too early" and not perf["drift_alarm"]
    assert isinstance(g.sensor(), dg.SkipReason)


def test_drift_only_warns_unless_configured(tmp_path, instance):
    g = LiveGraph(tmp_path, instance)
    skip = g.sensor()
    assert isinstance(skip, dg.SkipReason) and "reoptimize_on_drift is false" in skip.skip_message
