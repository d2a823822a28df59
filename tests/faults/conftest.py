"""The fault tier: real ``maestro`` processes killed, interrupted or fed crafted bad input (``make test-faults``)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def fault_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a ``maestro`` child: this checkout first on the path, its own Dagster home."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DAGSTER_HOME": str(home), "MPLBACKEND": "Agg",
           "PYTHONWARNINGS": "ignore"}
    env.update(extra)
    return env


def maestro(*args: str) -> list[str]:
    return [sys.executable, "-m", "maestro_pipeline.cli", *args]


def small_project(path: Path) -> Path:
    """A small demo project: one synthetic instrument over four whole past months (an ``end`` so the data cannot
    grow between two runs), one strategy, few trials; returns its maestro.yaml."""
    today = datetime.now(UTC).date()
    end = date(today.year, today.month, 1)
    start = date(end.year - (end.month <= 4), (end.month - 5) % 12 + 1, 1)
    cfg = {"lake_root": "lake", "strategies": ["ema_cross"],
           "instruments": [{"exchange": "synthetic", "symbol": "BTC/USDT", "timeframe": "1h",
                            "start": start.isoformat(), "end": end.isoformat()}],
           "walk_forward": {"train": "40d", "test": "20d", "n_splits": 3},
           "search": {"n_trials": 4, "seed": 3, "workers": 1}}
    path.mkdir(parents=True, exist_ok=True)
    (path / "maestro.yaml").write_text(yaml.safe_dump(cfg))
    return path / "maestro.yaml"


def run_demo(cfg: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(maestro("--config", str(cfg), "demo"), cwd=cfg.parent, env=fault_env(cfg.parent / "home"),
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def clean_run(tmp_path_factory) -> Path:
    """A demo run nothing interrupted: the reference every re-run after a fault must equal."""
    cfg = small_project(tmp_path_factory.mktemp("clean"))
    out = run_demo(cfg)
    assert out.returncode == 0, out.stderr[-2000:]
    return cfg
