"""The bar backfill bench: 48 month x instrument partitions through Dagster's own paths, beside the demo's.

Three ways to materialize ``raw_candles`` + ``validated_bars`` for 2 instruments x 24 months of 1h bars on the
embedded market, each on a fresh lake and Dagster instance:

* ``demo``: ``maestro demo``'s bar stage — one in-process run per instrument over its month range;
* ``range_cli``: ``dagster asset materialize --partition-range first...last`` in a fresh process (the run a UI
  backfill launches under the bar assets' single-run BackfillPolicy: one run, one step, every partition);
* ``per_partition_cli``: one ``dagster asset materialize --partition`` process per partition (what a backfill
  without a BackfillPolicy costs), measured on a few partitions and reported per partition.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from ..cli.graph import QUIET_RUN_CONFIG, RANGE_END_TAG, RANGE_START_TAG
from ..config import load_config
from .common import Row, dagster_home

__all__ = ["backfill_figures", "backfill_rows"]

SYMBOLS = ("BTC/USDT", "ETH/USDT")
START, END = "2025-01-01", "2027-01-01"   # 24 months each


def _setup(tmp: Path) -> tuple[Path, dict[str, str]]:
    cfg = {"lake_root": "lake", "strategies": ["ema_cross"],
           "instruments": [{"exchange": "synthetic", "symbol": s, "timeframe": "1h", "start": START, "end": END}
                           for s in SYMBOLS]}
    (tmp / "maestro.yaml").write_text(yaml.safe_dump(cfg))
    (tmp / "home").mkdir()
    (tmp / "home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "MAESTRO_CONFIG": str(tmp / "maestro.yaml"), "DAGSTER_HOME": str(tmp / "home"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    return tmp / "maestro.yaml", env


def _keys() -> tuple[list[str], list[str]]:
    insts = [f"synthetic.{s.replace('/', '_')}.1h" for s in SYMBOLS]
    months = [f"{y}-{m:02d}" for y in (2025, 2026) for m in range(1, 13)]
    return insts, months


def _cli(env: dict[str, str], *partition_args: str) -> float:
    dagster = str(Path(sys.executable).parent / "dagster")
    t = time.perf_counter()
    out = subprocess.run([dagster, "asset", "materialize", "-m", "maestro_pipeline.definitions",
                          "--select", "raw_candles,validated_bars,quarantine", *partition_args],
                         env=env, capture_output=True, text=True, timeout=1800)
    took = time.perf_counter() - t
    if out.returncode != 0:
        raise RuntimeError(f"dagster asset materialize failed:\n{out.stderr[-2000:]}")
    return took


def _demo_stage(cfg_path: Path, env: dict[str, str]) -> float:
    import dagster as dg

    from assets import build_definitions

    cfg = load_config(cfg_path)
    defs = build_definitions(cfg, cfg_path.parent)
    assets = list(defs.get_repository_def().assets_defs_by_key.values())
    insts, months = _keys()
    with dagster_home(env["DAGSTER_HOME"]):
        instance = dg.DagsterInstance.get()
        t = time.perf_counter()
        for inst in insts:
            r = dg.materialize(assets, selection=["raw_candles", "validated_bars", "quarantine"], instance=instance,
                               run_config=QUIET_RUN_CONFIG, raise_on_error=True,
                               tags={RANGE_START_TAG: f"{inst}|{months[0]}", RANGE_END_TAG: f"{inst}|{months[-1]}"})
            assert r.success
        return time.perf_counter() - t


def backfill_figures(per_partition_sample: int = 2) -> dict[str, float]:
    """Seconds for the 48 partitions: ``demo``, ``range_cli``; ``per_partition_cli`` is seconds per partition."""
    insts, months = _keys()
    out: dict[str, float] = {"partitions": len(insts) * len(months)}
    with tempfile.TemporaryDirectory() as tmp:
        cfg_path, env = _setup(Path(tmp))
        out["demo"] = _demo_stage(cfg_path, env)
    with tempfile.TemporaryDirectory() as tmp:
        _, env = _setup(Path(tmp))
        out["range_cli"] = _cli(env, "--partition-range", f"{insts[0]}|{months[0]}...{insts[-1]}|{months[-1]}")
    with tempfile.TemporaryDirectory() as tmp:
        _, env = _setup(Path(tmp))
        took = [_cli(env, "--partition", f"{insts[0]}|{m}") for m in months[:per_partition_sample]]
        out["per_partition_cli"] = sum(took) / len(took)
    return out


def backfill_rows() -> list[Row]:
    """48 bar partitions through Dagster's own paths against the demo's bar stage (see the module docstring)."""
    f = backfill_figures()
    n = int(f["partitions"])
    return [
        Row(f"bar backfill, {n} month x instrument partitions: dagster asset materialize --partition-range "
            "(one run, fresh process)", f["range_cli"], f["demo"], "s",
            "reference: maestro demo's bar stage on the same partitions, in process (one run per instrument)"),
        Row(f"bar backfill without a BackfillPolicy: one dagster process per partition (x{n}, from a sample)",
            f["per_partition_cli"] * n, f["demo"], "s",
            f"{f['per_partition_cli']:.1f} s per partition; reference as above"),
    ]


