"""Running the real asset graph in process (``maestro demo``) against a persistent Dagster instance.

Bars run one month x instrument partition per run (as a backfill would), research one instrument x strategy per
run, so ``make ui`` shows the same runs afterwards. A failed run does not stop the others: its one-line reason is
printed as it happens and collected, the leaderboard of what succeeded is still built, and the command's exit code
says that something failed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import load_config
from ..durations import month_of, months_between

__all__ = ["FULL_REFRESH_RUN_CONFIG", "GraphRun", "QUIET_RUN_CONFIG", "ensure_dagster_home", "run_graph", "run_refresh"]

# Dagster logs each failure with a traceback at ERROR; the demo prints its own one-line reason instead,
# and the full log stays in the instance (open the run in the UI).
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
#: The run config of a full refresh (what the UI's Launchpad takes for the ``refresh_bars`` job).
FULL_REFRESH_RUN_CONFIG = {"ops": {"market_bars": {"config": {"full_refresh": True}}}}


@dataclass
class GraphRun:
    timings: dict[str, float] = field(default_factory=dict)   # wall-clock seconds per stage
    failures: list[str] = field(default_factory=list)         # one line per failed run: what, run id, why

    @property
    def ok(self) -> bool:
        return not self.failures


def ensure_dagster_home(cfg=None) -> Path:
    """A persistent Dagster instance for the demo and ``make ui`` (``$DAGSTER_HOME``, default ``.dagster_home``).

    With a config, its ``concurrency`` section becomes the instance's run queue and pool limits (the file is
    Maestro's: rewritten from maestro.yaml each time)."""
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(Path(".dagster_home").resolve())))
    home.mkdir(parents=True, exist_ok=True)
    path = home / "dagster.yaml"
    if cfg is None and path.exists():
        return home
    text = ("# Maestro's local Dagster instance (SQLite storage in this folder); written from maestro.yaml.\n"
            "telemetry:\n  enabled: false\n")
    if cfg is not None:
        c = cfg.concurrency
        text += (f"concurrency:\n  runs:\n    max_concurrent_runs: {c.max_concurrent_runs}\n"
                 f"  pools:\n    default_limit: {c.research_pool}\n")
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return home


#: The run tags of a partition-range run (what Dagster's single-run backfills and ``--partition-range`` set).
RANGE_START_TAG, RANGE_END_TAG = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def _failure_line(result: Any, label: str) -> str:
    """What failed and why, in one line: the step's own message, or the failed checks' descriptions."""
    failure = next((e for e in result.all_events if e.is_step_failure), None)
    detail = ""
    if failure is not None and failure.step_failure_data.error is not None:
        data = failure.step_failure_data
        user = getattr(data, "user_failure_data", None)
        err = data.error
        while err.cause is not None:  # Dagster wraps the step's exception: the innermost one says what broke
            err = err.cause
        detail = (user.description if user is not None and user.description
                  else err.message.strip().splitlines()[0])
    if not detail or "asset check" in detail.lower():
        checks = [e.event_specific_data for e in result.all_events
                  if e.event_type_value == "ASSET_CHECK_EVALUATION"]
        failed = [c for c in checks if not c.passed and c.blocking]
        if failed:
            detail = "; ".join(f"check {c.check_name} failed: {c.description}" for c in failed)
    return f"{label} failed (run {result.run_id[:8]}): {detail or 'see the run in the UI'}"


def _interrupted(result: Any) -> bool:
    """Whether a run failed because its process was interrupted (Ctrl-C), not because a step failed."""
    for e in result.all_events:
        if e.is_step_failure and e.step_failure_data.error is not None:
            err = e.step_failure_data.error
            if "DagsterExecutionInterruptedError" in f"{err.cls_name} {err.message}":
                return True
    return False


def run_graph(cfg_path: Path, *, now_ms: int | None = None, instance: Any = None,
              log: Callable[[str], None] = print) -> GraphRun:
    """Materialize the whole graph for every configured instrument and strategy, stage by stage."""
    import dagster as dg  # lazily: the other commands need no Dagster (and it costs ~2 s to import)

    from assets import build_definitions
    from assets.partitions import bars_key, research_key

    cfg = load_config(cfg_path)
    defs = build_definitions(cfg, cfg_path.resolve().parent, now_ms=now_ms)
    instance = instance or dg.DagsterInstance.get()
    repo = defs.get_repository_def()
    all_assets = list(repo.assets_defs_by_key.values())
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    out = GraphRun()

    def run(selection: list[str], partition_key: Any, label: str, tags: dict[str, str] | None = None) -> bool:
        result = dg.materialize(
            all_assets, selection=dg.AssetSelection.assets(*selection).required_multi_asset_neighbors(),
            partition_key=partition_key,
            instance=instance, run_config=QUIET_RUN_CONFIG, raise_on_error=False,
            tags={"maestro/trigger": "demo", **(tags or {})},
        )
        if not result.success:
            if _interrupted(result):
                raise KeyboardInterrupt   # Ctrl-C: stop here, not at the next stage (Dagster failed the run)
            line = _failure_line(result, label)
            out.failures.append(line)
            log(f"  FAILED {line}")
        return bool(result.success)

    t0 = time.perf_counter()
    n = 0
    for inst in cfg.instrument_objs:
        months = months_between(month_of(inst.start_ms), month_of(min(now, inst.end_ms or now) - 1))
        t1 = time.perf_counter()
        # one run for the instrument's whole span, as a UI backfill of the bar assets runs (their BackfillPolicy)
        run(["raw_candles", "validated_bars", "quarantine"], None, f"bars {inst.key} {months[0]}..{months[-1]}",
            tags={RANGE_START_TAG: str(bars_key(months[0], inst.key)),
                  RANGE_END_TAG: str(bars_key(months[-1], inst.key))})
        n += len(months)
        log(f"  bars {inst.key}: {len(months)} months fetched and validated in {time.perf_counter() - t1:.1f} s")
    out.timings["bars"] = time.perf_counter() - t0
    log(f"  bars: {n} month x instrument partitions fetched and validated in {out.timings['bars']:.1f} s")

    t0 = time.perf_counter()
    split_ok = {inst.key: run(["walk_forward_splits"], inst.key, f"splits {inst.key}") for inst in cfg.instrument_objs}
    out.timings["splits"] = time.perf_counter() - t0
    log(f"  splits: {len(cfg.instruments)} instrument(s) in {out.timings['splits']:.1f} s")

    t0 = time.perf_counter()
    for inst in cfg.instrument_objs:
        if not split_ok[inst.key]:
            log(f"  research {inst.key}: skipped (no splits)")
            continue
        for strat in cfg.strategies:
            t1 = time.perf_counter()
            if run(["split_optimal_params", "oos_reports", "live_parameters", "live_performance"],
                   research_key(inst.key, strat),
                   f"research {inst.key} {strat}"):
                log(f"  research {inst.key} x {strat}: {time.perf_counter() - t1:.1f} s")
    out.timings["research"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    run(["strategy_leaderboard"], None, "leaderboard")
    out.timings["leaderboard"] = time.perf_counter() - t0
    return out


def run_refresh(cfg_path: Path, plan: list[tuple[Any, str]], *, now_ms: int | None = None,
                instance: Any = None, log=print) -> list[str]:
    """``maestro refresh``: materialize ``raw_candles`` with a full refresh, then ``validated_bars``, for each
    (instrument, month) pair; returns the failure lines (an interrupted run raises ``KeyboardInterrupt``)."""
    import dagster as dg  # lazily, as in run_graph

    from assets import build_definitions
    from assets.partitions import bars_key

    cfg = load_config(cfg_path)
    defs = build_definitions(cfg, cfg_path.resolve().parent, now_ms=now_ms)
    instance = instance or dg.DagsterInstance.get()
    repo = defs.get_repository_def()
    all_assets = list(repo.assets_defs_by_key.values())
    failures = []
    for inst, month in plan:
        result = dg.materialize(
            all_assets, selection=["raw_candles", "validated_bars", "quarantine"],
            partition_key=bars_key(month, inst.key), instance=instance,
            run_config={**QUIET_RUN_CONFIG, **FULL_REFRESH_RUN_CONFIG}, raise_on_error=False,
            tags={"maestro/trigger": "refresh"},
        )
        if result.success:
            mat = [e.event_specific_data.materialization for e in result.all_events
                   if e.event_type_value == "ASSET_MATERIALIZATION" and e.asset_key.path[-1] == "raw_candles"]
            rows = mat[0].metadata["rows"].value if mat and "rows" in mat[0].metadata else 0
            log(f"  refreshed {inst.key} {month}: {rows} bars fetched anew and validated")
            continue
        if _interrupted(result):
            raise KeyboardInterrupt
        line = _failure_line(result, f"refresh {inst.key} {month}")
        failures.append(line)
        log(f"  FAILED {line}")
    return failures
