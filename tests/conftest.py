"""Shared fixtures: a small configuration on the embedded market with a pinned clock, and a temp lake."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("MPLBACKEND", "Agg")

#: A fixed "now" so every test sees the same market: 2026-09-10 12:00 UTC.
NOW_MS = int(datetime(2026, 9, 10, 12, tzinfo=timezone.utc).timestamp() * 1000)


def small_config(lake_root: str, **over) -> dict:
    cfg = {
        "lake_root": lake_root,
        "instruments": [{"exchange": "synthetic", "symbol": "BTC/USDT", "timeframe": "1h", "start": "2026-04-01"}],
        "strategies": ["ema_cross", "rsi"],
        "walk_forward": {"scheme": "rolling", "train": "40d", "test": "20d", "n_splits": 3},
        "search": {"n_trials": 6, "seed": 3, "objective": "sharpe"},
        "costs": {"default": {"fee": 0.001, "slippage": 0.0005}},
        "synthetic": {"seed": 11},
    }
    cfg.update(over)
    return cfg


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    p = tmp_path / "maestro.yaml"
    p.write_text(yaml.safe_dump(small_config("lake")))
    return p


def pytest_collection_modifyitems(config, items):
    # Real-data tests need MAESTRO_DATASETS; they fail loudly (not skip) when it is missing: see tests/real_data.
    pass
