"""What every asset module shares: user errors as readable failures, and the partition an asset runs for."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import dagster as dg

from maestro_pipeline.config import MaestroConfig
from maestro_pipeline.engine import Costs
from maestro_pipeline.errors import MaestroError
from maestro_pipeline.instruments import Instrument
from maestro_pipeline.lake import Lake
from maestro_pipeline.walkforward import research_bars
from resources import LakeResource


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn a ``MaestroError`` into a Dagster ``Failure`` whose description is the one-line message."""
    try:
        yield
    except MaestroError as e:
        raise dg.Failure(description=str(e), allow_retries=False) from None


def partition_dims(context: dg.AssetExecutionContext) -> dict[str, str]:
    key = context.partition_key
    if isinstance(key, dg.MultiPartitionKey):
        return dict(key.keys_by_dimension)
    return {"instrument": key}


@dataclass(frozen=True)
class Target:
    """The partition an asset materializes, resolved: the instrument (and month or strategy), its lake and costs."""

    inst: Instrument
    lake: Lake
    month: str | None = None
    strategy: str | None = None

    @property
    def month_partition(self) -> dict[str, str]:
        """The lake partition of a month x instrument asset."""
        assert self.month is not None
        return Lake.month_partition(self.inst, self.month)

    @property
    def research_partition(self) -> dict[str, str]:
        """The lake partition of an instrument x strategy asset."""
        assert self.strategy is not None
        return {**self.inst.hive, "strategy": self.strategy}


def resolve(context: dg.AssetExecutionContext, cfg: MaestroConfig, lake: LakeResource) -> Target:
    """The partition preamble of every asset: which instrument (month, strategy) this run is for."""
    dims = partition_dims(context)
    return Target(cfg.instrument(dims["instrument"]), lake.lake(), dims.get("month"), dims.get("strategy"))


def bars_for(cfg: MaestroConfig, t: Target, *, with_derivatives: bool = True):
    """The bars every research and live asset reads: the instrument's validated bars in ``research.span`` (so the
    splits, the search, the report and the live record see the same bars and the same data version)."""
    return research_bars(t.lake, t.inst, with_derivatives=with_derivatives, span=cfg.research.span)


def lake_url(cfg: MaestroConfig, lake: Lake, path: str | Path) -> str:
    """The URL of a file of the lake under ``files_url`` (what ``maestro serve`` publishes)."""
    rel = Path(path).resolve().relative_to(lake.root.resolve())
    return f"{cfg.files_url}/{quote(rel.as_posix())}"


def costs_for(cfg: MaestroConfig, inst: Instrument) -> Costs:
    return Costs.of(cfg.costs_for(inst.exchange))
