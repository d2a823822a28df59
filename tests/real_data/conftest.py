"""Real exchange candles from the folder named by MAESTRO_DATASETS (never copied into the project)."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest

from maestro_pipeline.schema import conform


@pytest.fixture(scope="session")
def datasets() -> Path:
    folder = os.environ.get("MAESTRO_DATASETS")
    if not folder:
        pytest.fail("MAESTRO_DATASETS is not set: point it at the real-candles folder, e.g. ../shared/datasets")
    path = Path(folder)
    if not path.is_dir():
        pytest.fail(f"MAESTRO_DATASETS={folder} is not a directory")
    return path


def load(datasets: Path, name: str) -> pl.DataFrame:
    """A MANIFEST-schema Parquet file as Maestro bars (source = the file name)."""
    df = pl.read_parquet(datasets / name)
    return conform(df.select("timestamp", "open", "high", "low", "close", "volume"), f"file:{name}")
