"""Running the real asset graph in process (``maestro demo``) against a persistent Dagster instance.

Bars run one month x instrument partition per run (as a backfill would), research one instrument x strategy per
run, so ``make ui`` shows the same runs afterwards. A failed run does not stop the others: its one-line reason is
printed as it happens and collected, the leaderboard of what succeeded is still built, and the command's exit code
says that something failed.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import load_config
from ..durations import month_of, months_between
from .team import ensure_dagster_home

__all__ = ["FULL_REFRESH_RUN_CONFIG", "GraphRun", "QUIET_RUN_CONFIG", "RUN_HOST_TAG", "RUN_PID_TAG",
           "ensure_dagster_home", "recover_dead_runs", "run_graph", "run_refresh", "tiny_run_seconds", "wait_for_pool"]

#: Tags of every in-process run: which process on which host runs it, so the next command can tell a dead one.
RUN_HOST_TAG, RUN_PID_TAG, RUN_START_TAG = "maestro/host", "maestro/pid", "maestro/process_start"
#: The pool research steps share (assets.research.RESEARCH_POOL; its limit is concurrency.research_pool).
RESEARCH_POOL = "maestro_research"

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


def _process_start(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, from /proc), or None if there is no such process:
    with the pid it identifies a process even after the pid is reused."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _this_process_tags() -> dict[str, str]:
    pid = os.getpid()
    return {RUN_HOST_TAG: socket.gethostname(), RUN_PID_TAG: str(pid), RUN_START_TAG: _process_start(pid) or ""}


def recover_dead_runs(instance: Any, log: Callable[[str], None] = print) -> list[str]:
    """Mark runs whose in-process executor died (this host, process gone) as failed and free their pool slots;
    free the slots still held by runs that have ended. Returns one line per run it fixed (also logged).

    The daemon's run monitoring does this for launched runs (``instance.run_monitoring``); in-process runs
    (``maestro demo``) have no daemon watching them, so every ``maestro`` command that runs the graph checks first.
    """
    import dagster as dg

    fixed: list[str] = []
    host = socket.gethostname()
    alive_states = [dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.CANCELING]
    for rec in instance.get_run_records(dg.RunsFilter(statuses=alive_states, tags={RUN_HOST_TAG: host})):
        run = rec.dagster_run
        pid, started = int(run.tags.get(RUN_PID_TAG, "0")), run.tags.get(RUN_START_TAG) or None
        now = _process_start(pid) if pid else None
        if now is not None and (started is None or now == started):
            continue  # its process is still running it
        line = (f"run {run.run_id[:8]} ({run.tags.get('maestro/label', run.job_name)}) was left "
                f"{run.status.value} by process {pid}, which is gone: marked failed, its pool slots freed")
        instance.report_run_failed(run, f"maestro: {line}")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        fixed.append(line)
        log(f"maestro: {line}")
    storage = instance.event_log_storage
    if storage.supports_global_concurrency_limits:
        for key in storage.get_concurrency_keys():
            for run_id in {slot.run_id for slot in storage.get_concurrency_info(key).claimed_slots}:
                holder = instance.get_run_by_id(run_id)
                if holder is None or holder.is_finished:
                    storage.free_concurrency_slots_for_run(run_id)
                    line = f"pool {key}: freed the slot of run {run_id[:8]}, which has ended"
                    fixed.append(line)
                    log(f"maestro: {line}")
    return fixed


def wait_for_pool(instance: Any, pool: str, log: Callable[[str], None] = print, poll_seconds: float = 2.0) -> float:
    """Wait, sleeping, until ``pool`` has a free slot; say once why (which runs hold it). A holder that dies
    meanwhile is found by :func:`recover_dead_runs` on the next poll. Returns the seconds waited. SIGTERM and
    SIGINT end the wait at once (KeyboardInterrupt: the command exits 130, nothing half-written)."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return 0.0
    t0, said = time.monotonic(), False
    while True:
        info = storage.get_concurrency_info(pool)
        limit = info.slot_count if info.slot_count else (info.limit or 0)
        if not limit or len(info.claimed_slots) < limit:
            return time.monotonic() - t0
        if not said:
            holders = ", ".join(sorted({f"{s.run_id[:8]} ({s.step_key})" for s in info.claimed_slots}))
            log(f"  waiting for a {pool} pool slot ({len(info.claimed_slots)} of {limit} held by run {holders}); "
                "checking every few seconds, Ctrl-C to stop")
            said = True
        time.sleep(poll_seconds)
        recover_dead_runs(instance, log)


def tiny_run_seconds(home: str, runs: int = 10) -> float:
    """Mean wall time of one run of a one-asset job on the Dagster instance in ``home`` (``make bench``: what a run
    costs on each instance storage, apart from its work)."""
    import dagster as dg

    @dg.asset
    def ping() -> int:
        return 1

    with dg.DagsterInstance.from_config(home) as inst:
        dg.materialize([ping], instance=inst, run_config=QUIET_RUN_CONFIG)  # warm: schema, imports
        t0 = time.perf_counter()
        for _ in range(runs):
            dg.materialize([ping], instance=inst, run_config=QUIET_RUN_CONFIG)
        return (time.perf_counter() - t0) / runs


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


#: The signal a graph command's parent sends with its Ctrl-C (cli/session.py). Dagster captures SIGINT inside a run
#: and drops one that lands between its steps' interruptible sections, so the stop is also asked for on a signal
#: Dagster does not touch, and checked before and after every run.
STOP_SIGNAL = signal.SIGUSR1


def _stop_requests() -> threading.Event:
    """An event set when :data:`STOP_SIGNAL` arrives (handler installed from the main thread only)."""
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(STOP_SIGNAL, lambda signum, frame: stop.set())
    return stop


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


#: How Dagster says a run ended because its process was interrupted: inside a step (the step's error), or between
#: steps (the run failure's own message, with no step failure at all).
_INTERRUPT_MARKS = ("DagsterExecutionInterruptedError", "KeyboardInterrupt", "Execution was interrupted")


def _interrupted(result: Any) -> bool:
    """Whether a run failed because its process was interrupted (Ctrl-C, SIGTERM), not because a step failed."""
    for e in result.all_events:
        texts = [e.message or ""] if e.event_type_value in ("RUN_FAILURE", "PIPELINE_FAILURE") else []
        err = getattr(e.event_specific_data, "error", None) if e.event_specific_data is not None else None
        while err is not None:
            texts.append(f"{err.cls_name} {err.message}")
            err = err.cause
        if any(mark in t for t in texts for mark in _INTERRUPT_MARKS):
            return True
    return False


def run_graph(cfg_path: Path, *, now_ms: int | None = None, instance: Any = None,
              log: Callable[[str], None] = print) -> GraphRun:
    """Materialize the whole graph for every configured instrument and strategy, stage by stage."""
    import dagster as dg  # lazily: the other commands need no Dagster (and it costs ~2 s to import)

    from assets import build_definitions
    from assets.partitions import bars_key, research_key

    cfg = load_config(cfg_path)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)  # `timeout`/`kill` end the command like Ctrl-C (exit 130)
    stop = _stop_requests()
    defs = build_definitions(cfg, cfg_path.resolve().parent, now_ms=now_ms)
    instance = instance or dg.DagsterInstance.get()
    repo = defs.get_repository_def()
    all_assets = list(repo.assets_defs_by_key.values())
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    out = GraphRun()
    recover_dead_runs(instance, log)
    tags = {"maestro/trigger": "demo", **_this_process_tags()}

    def run(selection: list[str], partition_key: Any, label: str, extra_tags: dict[str, str] | None = None) -> bool:
        if stop.is_set():
            raise KeyboardInterrupt
        if "split_optimal_params" in selection:
            wait_for_pool(instance, RESEARCH_POOL, log)
        result = dg.materialize(
            all_assets, selection=dg.AssetSelection.assets(*selection).required_multi_asset_neighbors(),
            partition_key=partition_key,
            instance=instance, run_config=QUIET_RUN_CONFIG, raise_on_error=False,
            tags={**tags, "maestro/label": label, **(extra_tags or {})},
        )
        if stop.is_set() or _interrupted(result):  # interrupted inside or around the run: stop, do not go on
            raise KeyboardInterrupt
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
            extra_tags={RANGE_START_TAG: str(bars_key(months[0], inst.key)),
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
    stop = _stop_requests()
    for inst, month in plan:
        if stop.is_set():
            raise KeyboardInterrupt
        result = dg.materialize(
            all_assets, selection=["raw_candles", "validated_bars", "quarantine"],
            partition_key=bars_key(month, inst.key), instance=instance,
            run_config={**QUIET_RUN_CONFIG, **FULL_REFRESH_RUN_CONFIG}, raise_on_error=False,
            tags={"maestro/trigger": "refresh", **_this_process_tags()},
        )
        if result.success:
            mat = [e.event_specific_data.materialization for e in result.all_events
                   if e.event_type_value == "ASSET_MATERIALIZATION" and e.asset_key.path[-1] == "raw_candles"]
            rows = mat[0].metadata["rows"].value if mat and "rows" in mat[0].metadata else 0
            log(f"  refreshed {inst.key} {month}: {rows} bars fetched anew and validated")
            continue
        if stop.is_set() or _interrupted(result):
            raise KeyboardInterrupt
        line = _failure_line(result, f"refresh {inst.key} {month}")
        failures.append(line)
        log(f"  FAILED {line}")
    return failures
