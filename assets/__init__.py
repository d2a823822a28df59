"""Dagster assets, checks, jobs, schedules and sensors, built from ``maestro.yaml`` (one module per stage).

Each stage contributes its own ``Definitions``; :func:`build_definitions` merges them and sets what is shared once
(the resources).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import dagster as dg

# Two deliberate uses of non-GA Dagster APIs, reviewed for dagster 1.13: partitioned asset checks (so a failed
# check is recorded per month x instrument) and the multi-to-single dimension mapping (research reads every month
# of one instrument). Their warnings would print on every load.
warnings.filterwarnings("ignore", category=dg.PreviewWarning, message=".*partitions_def on an AssetCheckSpec.*")
warnings.filterwarnings("ignore", category=dg.BetaWarning, message=".*MultiToSingleDimensionPartitionMapping.*")
warnings.filterwarnings("ignore", category=dg.BetaWarning, message=".*MultiPartitionMapping.*")  # live_performance

from maestro_pipeline.config import MaestroConfig  # noqa: E402  (after the warning filters)
from resources import LakeResource, MarketDataResource  # noqa: E402

from .automation import build_automation_definitions  # noqa: E402
from .derivatives import build_derivatives_definitions  # noqa: E402
from .leaderboard import build_leaderboard_definitions  # noqa: E402
from .live import build_live_definitions  # noqa: E402
from .market_data import build_market_data_definitions  # noqa: E402
from .partitions import build_partitions  # noqa: E402
from .research import build_research_definitions  # noqa: E402


def build_definitions(cfg: MaestroConfig, base_dir: Path | None = None, *, now_ms: int | None = None) -> dg.Definitions:
    """The whole graph for one configuration. ``now_ms`` pins the market clock (tests)."""
    parts = build_partitions(cfg)
    return dg.Definitions.merge(
        build_market_data_definitions(cfg, parts),
        build_derivatives_definitions(cfg, parts),
        build_research_definitions(cfg, parts),
        build_leaderboard_definitions(cfg),
        build_live_definitions(cfg, parts),
        build_automation_definitions(cfg, parts),
        # every step of a run in the run's own process: Maestro's steps are light (a month of bars) or parallel
        # inside (the search's process pool), so a process per step would only add ~10 s of imports each
        dg.Definitions(executor=dg.in_process_executor, resources={
            "lake": LakeResource(root=str(cfg.lake_path(base_dir))),
            "market": MarketDataResource(
                synthetic_seed=cfg.synthetic.seed, now_ms=now_ms,
                files={i.source_id: str(i.file_path(base_dir)) for i in cfg.instruments if i.exchange == "file"},
                file_options={i.source_id: i.file_options() for i in cfg.instruments
                              if i.exchange == "file" and i.file_options()},
            ),
        }),
    )
