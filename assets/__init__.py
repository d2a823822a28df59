"""Dagster assets, checks, jobs, schedules and sensors, built from ``maestro.yaml`` (one module per stage)."""

from __future__ import annotations

import warnings
from pathlib import Path

import dagster as dg

# Two deliberate uses of non-GA Dagster APIs, reviewed for dagster 1.13: partitioned asset checks (so a failed
# check is recorded per month x instrument, which the re-optimization sensor reads) and the multi-to-single
# dimension mapping (research reads every month of one instrument). Their warnings would print on every load.
warnings.filterwarnings("ignore", category=dg.PreviewWarning, message=".*partitions_def on an AssetCheckSpec.*")
warnings.filterwarnings("ignore", category=dg.BetaWarning, message=".*MultiToSingleDimensionPartitionMapping.*")

from maestro_pipeline.config import MaestroConfig
from resources import LakeResource, MarketDataResource

from .automation import build_automation
from .derivatives import build_derivatives_assets
from .leaderboard import build_leaderboard_assets
from .market_data import build_market_data_assets
from .partitions import build_partitions
from .research import build_research_assets


def build_definitions(cfg: MaestroConfig, base_dir: Path | None = None, *, now_ms: int | None = None) -> dg.Definitions:
    """The whole graph for one configuration. ``now_ms`` pins the market clock (tests)."""
    parts = build_partitions(cfg)
    raw_candles, validated_bars = build_market_data_assets(cfg, parts)
    splits, params, reports = build_research_assets(cfg, parts, validated_bars)
    (leaderboard,) = build_leaderboard_assets(cfg, reports)
    assets = {a.key.path[-1]: a for a in (raw_candles, validated_bars, splits, params, reports, leaderboard)}
    jobs, schedules, sensors = build_automation(cfg, parts, assets)
    # funding_rates / open_interest only when some instrument is a perpetual (BTC/USDT:USDT): spot-only graphs stay lean
    derivatives = build_derivatives_assets(cfg, parts) if any(":" in i.symbol for i in cfg.instruments) else []
    return dg.Definitions(
        assets=[*assets.values(), *derivatives],
        jobs=jobs,
        schedules=schedules,
        sensors=sensors,
        resources={
            "lake": LakeResource(root=str(cfg.lake_path(base_dir))),
            "market": MarketDataResource(
                synthetic_seed=cfg.synthetic.seed, now_ms=now_ms,
                files={i.source_id: str(i.file_path(base_dir)) for i in cfg.instruments if i.exchange == "file"},
            ),
        },
    )
