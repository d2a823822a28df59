"""Real exchange candles from the folder named by MAESTRO_DATASETS (the ``datasets`` fixture of tests/real_data)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from maestro_pipeline.schema import conform


def load(datasets: Path, name: str) -> pl.DataFrame:
    """A MANIFEST-schema Parquet file as Maestro bars (source = the file name)."""
    df = pl.read_parquet(datasets / name)
    return conform(df.select("timestamp", "open", "high", "low", "close", "volume"), f"file:{name}")
