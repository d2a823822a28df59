"""The real asset graph of :func:`tests.support.config.small_config`, materialized in process with a pinned clock."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from assets import build_definitions
from assets.partitions import bars_key
from maestro_pipeline.config import parse_config
from maestro_pipeline.lake import Lake

from .config import NOW_MS, small_config

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
MONTHS = ["2026-04", "2026-05", "2026-06", "2026-07", "2026-08", "2026-09"]
INST = "synthetic.BTC_USDT.1h"


class Graph:
    def __init__(self, tmp_path: Path, instance: dg.DagsterInstance, now_ms: int = NOW_MS, **cfg_over):
        self.cfg = parse_config(small_config(str(tmp_path / "lake"), **cfg_over))
        self.lake = Lake(tmp_path / "lake")
        self.instance = instance
        self.set_clock(now_ms)

    def set_clock(self, now_ms: int) -> None:
        self.defs = build_definitions(self.cfg, now_ms=now_ms)
        repo = self.defs.get_repository_def()
        self.assets = list(repo.assets_defs_by_key.values())
        self.by_name = {k.path[-1]: a for k, a in repo.assets_defs_by_key.items()}

    def run(self, names, key, raise_on_error=True):
        return dg.materialize(self.assets, selection=dg.AssetSelection.assets(*names).required_multi_asset_neighbors(),
                              partition_key=key,
                              instance=self.instance, run_config=QUIET,
                              raise_on_error=raise_on_error)

    def bars(self, months=MONTHS):
        for m in months:
            self.run(["raw_candles", "validated_bars", "quarantine"], bars_key(m, INST))


def reoptimize_sensor(g: Graph):
    """One evaluation of the ``reoptimize_on_new_data`` sensor on the graph's instance."""
    sensor = g.defs.get_sensor_def("reoptimize_on_new_data")
    with dg.build_sensor_context(instance=g.instance, resources=g.defs.resources, definitions=g.defs) as ctx:
        return sensor(ctx)
