"""The whole-catalog bench: every strategy x the embedded instruments through the demo graph, beside its pure search.

The demo graph (``run_graph``: bars, splits, research, live, leaderboard) runs on a fresh lake and Dagster
instance with ``maestro.yaml``'s instruments and every registered strategy, 7 splits x 100 trials, the studies
persisted to the default SQLite storage. The reference, measured in the same run on the same lake: the search
alone — ``optimize_splits`` of every instrument x strategy on the same bars and splits, in memory (no storage), with
the same number of worker processes. What the graph costs beyond the reference is Dagster, persistence, the OOS
runs, the report card and the lake writes.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import yaml

from ..config import MaestroConfig, load_config
from ..engine import Costs
from ..lake import Lake
from ..search import optimize_splits
from ..strategies import available_strategies
from ..walkforward import research_bars, splits_from_table
from .common import Row, timed_graph

__all__ = ["catalog_figures", "catalog_rows"]


def _config(tmp: Path, strategies: list[str] | None, n_splits: int, trials: int) -> Path:
    cfg = yaml.safe_load(Path("maestro.yaml").read_text())
    cfg["lake_root"] = str(tmp / "lake")
    cfg["strategies"] = strategies or available_strategies()
    cfg["walk_forward"]["n_splits"] = n_splits
    cfg["search"]["n_trials"] = trials
    path = tmp / "maestro.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _pure_search(cfg: MaestroConfig) -> tuple[float, int]:
    """Seconds of ``optimize_splits`` alone (in memory) over every instrument x strategy of the graph's lake."""
    lake = Lake(cfg.lake_root)
    search = cfg.search.model_copy(update={"storage": "none"})
    total, trials = 0.0, 0
    for inst in cfg.instrument_objs:
        bars = research_bars(lake, inst, span=cfg.research.span)
        splits = splits_from_table(lake.read_file("walk_forward_splits", inst.hive))
        costs = Costs.of(cfg.costs_for(inst.exchange))
        for strategy in cfg.strategies:
            t = time.perf_counter()
            out = optimize_splits(bars, splits, strategy, search, costs, inst.timeframe,
                                  risk=cfg.risk.for_strategy(strategy))
            total += time.perf_counter() - t
            trials += out.ledger.height
    return total, trials


def catalog_figures(strategies: list[str] | None = None, n_splits: int = 7, trials: int = 100) -> dict[str, float]:
    """Seconds: ``graph`` (end to end), ``stage_*`` (its stages), ``search`` (the pure search); and the counts."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg_path = _config(Path(tmp), strategies, n_splits, trials)
        cfg = load_config(cfg_path)
        graph, result = timed_graph(cfg_path, Path(tmp) / "home")
        if result.failures:
            raise RuntimeError("the catalog graph failed: " + "; ".join(result.failures))
        search, n_trials = _pure_search(cfg)
    return {"graph": graph, "search": search, "trials": n_trials,
            **{f"stage_{k}": v for k, v in result.timings.items()},
            "partitions": len(cfg.instruments) * len(cfg.strategies), "strategies": len(cfg.strategies),
            "instruments": len(cfg.instruments)}


def catalog_rows(trials: int = 100) -> list[Row]:
    f = catalog_figures(trials=trials)
    what = (f"whole catalog: {int(f['strategies'])} strategies x {int(f['instruments'])} instruments x 7 splits "
            f"(+ the live split) x {trials} trials ({int(f['trials']):,} trials)")
    stages = ", ".join(f"{k[6:]} {v:.0f} s" for k, v in f.items() if k.startswith("stage_"))
    per = (f["stage_research"] - f["search"]) / f["partitions"]
    return [
        Row(f"{what}, the demo graph end to end", f["graph"], f["search"], "s",
            f"reference: the same searches alone, in memory (goal <= 2x); stages: {stages}"),
        Row(f"{what}, research stage only", f["stage_research"], f["search"], "s",
            f"{per:.2f} s per instrument x strategy partition beyond the search (Dagster run, study persistence, "
            "OOS runs, report card, lake writes)"),
    ]
