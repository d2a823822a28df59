"""Partitions built from ``maestro.yaml`` at load: months x instruments for bars, instruments x strategies for
research."""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg

from maestro_pipeline.config import MaestroConfig


@dataclass(frozen=True)
class Partitions:
    instruments: dg.StaticPartitionsDefinition
    strategies: dg.StaticPartitionsDefinition
    months: dg.MonthlyPartitionsDefinition
    bars: dg.MultiPartitionsDefinition       # month x instrument
    research: dg.MultiPartitionsDefinition   # instrument x strategy


def build_partitions(cfg: MaestroConfig) -> Partitions:
    instruments = dg.StaticPartitionsDefinition([i.key for i in cfg.instrument_objs])
    strategies = dg.StaticPartitionsDefinition(list(cfg.strategies))
    first = min(i.start for i in cfg.instruments)
    # end_offset=1 makes the current (still growing) month a partition too; the nightly job refreshes it.
    months = dg.MonthlyPartitionsDefinition(start_date=f"{first:%Y-%m}", fmt="%Y-%m", end_offset=1)
    return Partitions(
        instruments=instruments,
        strategies=strategies,
        months=months,
        bars=dg.MultiPartitionsDefinition({"month": months, "instrument": instruments}),
        research=dg.MultiPartitionsDefinition({"instrument": instruments, "strategy": strategies}),
    )


def bars_key(month: str, instrument: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"month": month, "instrument": instrument})


def research_key(instrument: str, strategy: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"instrument": instrument, "strategy": strategy})
