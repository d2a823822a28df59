"""``kill -9`` of a real ``maestro demo`` while it writes raw candles, while it validates, and while research
persists its Optuna studies; then a plain re-run. Nothing half-written is ever visible, the re-run finishes (no
hang on a lock or a stale file) with the leaderboard of a run nothing interrupted, and no temp file or catalog
build of the killed writers is left in the lake."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from maestro_pipeline.config import load_config
from maestro_pipeline.evaluation import build_leaderboard
from maestro_pipeline.lake import Lake

from .conftest import fault_env, maestro, run_demo, small_project

pytestmark = pytest.mark.faults

#: The moment to kill at: the lake file whose appearance shows the demo is in that stage.
MOMENTS = {
    "raw_write": "raw_candles/**/data.parquet",
    "validation": "validated_bars/**/data.parquet",
    "optuna_persistence": "optuna/studies.db",
}


def _kill_when(cfg: Path, pattern: str, timeout: float = 600) -> float:
    """Start the demo (its graph process directly, in a session of its own) and ``kill -9`` the whole session as
    soon as ``pattern`` exists in the lake; the seconds it ran."""
    lake = cfg.parent / "lake"
    p = subprocess.Popen(maestro("--config", str(cfg), "demo"), cwd=cfg.parent, start_new_session=True,
                         env=fault_env(cfg.parent / "home", MAESTRO_IN_SESSION="1"),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.monotonic()
    try:
        while not any(lake.glob(pattern)):
            assert p.poll() is None, f"the demo ended (rc {p.returncode}) before {pattern} appeared"
            assert time.monotonic() - t0 < timeout, f"{pattern} never appeared"
            time.sleep(0.02)
    finally:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(timeout=60)
    return time.monotonic() - t0


def _rows(cfg: Path) -> list[dict]:
    c = load_config(cfg)
    return build_leaderboard(Lake(c.lake_path(cfg.parent)), [(i.key, s) for i in c.instrument_objs
                                                             for s in c.strategies]).to_dicts()


def _diffs(rows: list[dict], expected: list[dict]) -> list[str]:
    """Cells that differ (NaN equals NaN: a figure too small a sample carries is NaN in both)."""
    def same(a, b) -> bool:
        return (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)) or a == b

    assert len(rows) == len(expected)
    return [f"{k}: {e[k]!r} -> {r.get(k)!r}" for r, e in zip(rows, expected, strict=True) for k in e
            if not same(r.get(k), e[k])]


def _litter(lake: Path) -> list[str]:
    return sorted(str(f.relative_to(lake)) for f in lake.rglob(".*") if f.is_file())


@pytest.mark.parametrize("moment", list(MOMENTS))
def test_kill_9_then_rerun_equals_a_clean_run(tmp_path, clean_run, moment):
    cfg = small_project(tmp_path)
    _kill_when(cfg, MOMENTS[moment])
    lake = tmp_path / "lake"
    for f in lake.rglob("*.parquet"):     # atomic writes: every visible file is whole
        pq.read_metadata(f)
    t0 = time.monotonic()
    out = run_demo(cfg, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    assert time.monotonic() - t0 < 900
    assert _litter(lake) == []
    expected = _rows(clean_run)
    assert len(expected) == 1 and _diffs(_rows(cfg), expected) == []
