"""Materialize the real asset graph with ``binance`` pointed at a stand-in (the tests' MarketDataResource override)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl

from assets import build_definitions
from assets.partitions import bars_key
from maestro_pipeline.config import parse_config
from maestro_pipeline.lake import Lake
from resources import LakeResource, MarketDataResource

from .server import StandIn

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}

#: Tiny retry delays so fault tests stay fast; timeout below the stand-in's slow reply (see StandIn.slow_s).
FAST = dict(retry_max_attempts=5, retry_base_delay_s=0.01, retry_max_delay_s=0.05, retry_max_total_s=10.0,
            timeout_ms=2000, rate_limit_ms=0)


def checksum(df: pl.DataFrame) -> str:
    """Hash of timestamps and OHLCV values (not the source label)."""
    h = hashlib.sha256()
    h.update(df["timestamp"].cast(pl.Int64).to_numpy().tobytes())
    for c in ("open", "high", "low", "close", "volume"):
        h.update(np.ascontiguousarray(df[c].cast(pl.Float64).to_numpy()).tobytes())
    return h.hexdigest()


class StandInGraph:
    """The asset graph of one config, run in process against ``standin`` with a pinned clock."""

    def __init__(self, tmp_path: Path, instance: dg.DagsterInstance, standin: StandIn, cfg: dict, **market_over):
        self.cfg = parse_config(cfg)
        self.lake = Lake(tmp_path / "lake")
        self.instance = instance
        self.standin = standin
        self.market_over = {**FAST, **market_over}
        self.defs = build_definitions(self.cfg, tmp_path)
        self.assets = list(self.defs.assets)
        self.by_name = {k.path[-1]: a for a in self.assets for k in a.keys}
        self.files = {i.source_id: str(i.file_path(tmp_path)) for i in self.cfg.instruments if i.exchange == "file"}

    def market(self, now_ms: int | None = None) -> MarketDataResource:
        return MarketDataResource(
            synthetic_seed=self.cfg.synthetic.seed,
            now_ms=now_ms if now_ms is not None else self.standin.now_ms,
            files=self.files,
            exchange_urls={"binance": self.standin.url},
            **self.market_over,
        )

    def run(self, names, month: str, instrument: str, now_ms: int | None = None, raise_on_error: bool = True,
            run_config: dict | None = None):
        return dg.materialize(
            self.assets,
            selection=dg.AssetSelection.assets(*names).required_multi_asset_neighbors(),
            partition_key=bars_key(month, instrument),
            instance=self.instance,
            resources={"lake": LakeResource(root=str(self.lake.root)), "market": self.market(now_ms)},
            run_config={**QUIET, **(run_config or {})},
            raise_on_error=raise_on_error,
        )

    def part(self, instrument: str, month: str) -> dict[str, str]:
        return Lake.month_partition(self.cfg.instrument(instrument), month)


def failure_message(result) -> str:
    ev = next(e for e in result.all_events if e.is_step_failure)
    data = ev.step_failure_data
    if data.user_failure_data is not None and data.user_failure_data.description:
        return data.user_failure_data.description
    return data.error.message if data.error else str(ev)


def materialization_metadata(result, asset: str) -> dict:
    mats = [e.event_specific_data.materialization for e in result.all_events
            if e.event_type_value == "ASSET_MATERIALIZATION" and e.asset_key.path[-1] == asset]
    return {k: v.value for k, v in mats[-1].metadata.items()}
