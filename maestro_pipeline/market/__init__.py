"""Market data sources: each returns bars in the one schema of :mod:`maestro_pipeline.schema`."""

from .synthetic import SyntheticMarket

__all__ = ["SyntheticMarket"]
