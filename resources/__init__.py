"""Dagster resources: thin, configurable handles on the core's lake and market sources."""

from .lake import LakeResource
from .market import MarketDataResource

__all__ = ["LakeResource", "MarketDataResource"]
