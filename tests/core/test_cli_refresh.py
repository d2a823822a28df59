"""``maestro refresh``: a corrected candle file is read again (ingestion alone only appends after the newest bar)."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import numpy as np
import pytest
import yaml

from maestro_pipeline.cli.graph import FULL_REFRESH_RUN_CONFIG, run_refresh
from maestro_pipeline.cli.refresh import refresh_plan
from maestro_pipeline.config import load_config
from maestro_pipeline.errors import MaestroError
from maestro_pipeline.lake import Lake

H = 3_600_000
T0 = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1000)
NOW = int(datetime(2024, 3, 1, tzinfo=UTC).timestamp() * 1000)
KEY = "file_mine.BTC_EUR.1h"


def _csv(path, bump_row: int | None = None) -> None:
    rng = np.random.default_rng(5)
    close = 40_000 * np.exp(np.cumsum(rng.normal(0, 0.004, 31 * 24)))
    if bump_row is not None:
        close[bump_row] *= 1.001    # the exchange corrected one close
    open_ = np.r_[close[0], close[:-1]]
    hi, lo = np.maximum(open_, close) * 1.002, np.minimum(open_, close) * 0.998
    rows = [f"{T0 + i * H},{open_[i]},{hi[i]},{lo[i]},{close[i]},{1 + i % 7}" for i in range(close.size)]
    path.write_text("timestamp,open,high,low,close,volume\n" + "\n".join(rows) + "\n")


@pytest.fixture
def project(tmp_path):
    _csv(tmp_path / "mine.csv")
    cfg = {"lake_root": "lake", "strategies": ["ema_cross"],
           "instruments": [{"exchange": "file", "symbol": "BTC/EUR", "timeframe": "1h", "start": "2024-01-01",
                            "end": "2024-02-01", "path": "mine.csv", "name": "mine"}]}
    (tmp_path / "maestro.yaml").write_text(yaml.safe_dump(cfg))
    return tmp_path


def test_refresh_plan_checks_months_against_each_instruments_span(project):
    cfg = load_config(project / "maestro.yaml")
    assert [(i.key, m) for i, m in refresh_plan(cfg, ["2024-01"], None, NOW)] == [(KEY, "2024-01")]
    with pytest.raises(MaestroError, match=r"has no month 2023-12, 2024-02 \(its span is 2024-01 .. 2024-01\)"):
        refresh_plan(cfg, ["2023-12..2024-02"], None, NOW)
    with pytest.raises(MaestroError, match="month '2024-1' is not YYYY-MM"):
        refresh_plan(cfg, ["2024-1"], None, NOW)
    with pytest.raises(MaestroError, match="runs backwards"):
        refresh_plan(cfg, ["2024-02..2024-01"], None, NOW)
    with pytest.raises(MaestroError, match="'binance.BTC_USDT.1h' is not in maestro.yaml"):
        refresh_plan(cfg, ["2024-01"], ["binance.BTC_USDT.1h"], NOW)


def test_refresh_reads_a_corrected_file_that_an_ordinary_run_ignores(project):
    cfg_path = project / "maestro.yaml"
    cfg = load_config(cfg_path)
    lake = Lake(project / "lake")
    part = Lake.month_partition(cfg.instrument(KEY), "2024-01")
    plan = refresh_plan(cfg, ["2024-01"], None, NOW)
    with dg.instance_for_test() as instance:
        assert run_refresh(cfg_path, plan, now_ms=NOW, instance=instance, log=lambda _: None) == []
        before = lake.read_file("raw_candles", part)["close"].to_list()
        assert len(before) == 744 and lake.read_file("validated_bars", part).height == 744

        _csv(project / "mine.csv", bump_row=100)
        # an ordinary materialization appends after the newest stored bar: the corrected close is not read
        from assets import build_definitions
        from assets.partitions import bars_key

        defs = build_definitions(cfg, project, now_ms=NOW)
        job = defs.get_repository_def().assets_defs_by_key
        assets = list(job.values())
        raw = next(a for k, a in job.items() if k.path[-1] == "raw_candles")
        assert dg.materialize(assets, selection=[raw], partition_key=bars_key("2024-01", KEY),
                              instance=instance).success
        assert lake.read_file("raw_candles", part)["close"].to_list() == before

        runs_before = len(instance.get_runs())
        assert run_refresh(cfg_path, plan, now_ms=NOW, instance=instance, log=lambda _: None) == []
        after = lake.read_file("raw_candles", part)["close"].to_list()
        assert after[100] == pytest.approx(before[100] * 1.001) and after[:100] == before[:100]
        assert lake.read_file("validated_bars", part)["close"][100] == pytest.approx(before[100] * 1.001)
        run = instance.get_runs(limit=1)[0]
        assert len(instance.get_runs()) == runs_before + 1 and run.tags["maestro/trigger"] == "refresh"
        assert run.run_config["ops"] == FULL_REFRESH_RUN_CONFIG["ops"]
