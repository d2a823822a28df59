"""``maestro``: the command-line shell (config check, demo run, leaderboard).

It is the application's edge, not domain core: the ``demo`` command imports Dagster (lazily) to run the real
asset graph in process against a persistent instance, so the UI shows the same runs afterwards.
User mistakes print one line on stderr and exit 2; nothing is half-written.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from .config import config_path, load_config
from .durations import month_of, months_between
from .errors import MaestroError
from .evaluation import build_leaderboard, format_leaderboard
from .lake import Lake

# Dagster logs each failure with a traceback at ERROR; the demo prints its own one-line reason instead,
# and the full log stays in the instance (open the run in the UI).
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


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


def _cmd_check_config(args: argparse.Namespace) -> int:
    path = config_path(args.config)
    cfg = load_config(path)
    print(f"{path}: ok — {len(cfg.instruments)} instrument(s): {', '.join(i.key for i in cfg.instrument_objs)}; "
          f"strategies: {', '.join(cfg.strategies)}; lake: {cfg.lake_path(path.resolve().parent)}")
    return 0


def _cmd_leaderboard(args: argparse.Namespace) -> int:

    path = config_path(args.config)
    cfg = load_config(path)
    lake = Lake(cfg.lake_path(path.resolve().parent))
    keys = [(i.key, s) for i in cfg.instrument_objs for s in cfg.strategies]
    print(format_leaderboard(build_leaderboard(lake, keys)))
    return 0


def run_graph(cfg_path: Path, *, now_ms: int | None = None, instance=None, log=print) -> dict[str, float]:
    """Materialize the whole graph for every configured instrument and strategy, stage by stage.

    Bars run one month x instrument partition per run (as a backfill would), research one instrument x strategy
    per run. Returns wall-clock seconds per stage. Raises ``MaestroError`` naming the first failed run.
    """
    import dagster as dg  # lazily: the other commands need no Dagster (and it costs ~2 s to import)

    from assets import build_definitions
    from assets.partitions import bars_key, research_key

    cfg = load_config(cfg_path)
    defs = build_definitions(cfg, cfg_path.resolve().parent, now_ms=now_ms)
    instance = instance or dg.DagsterInstance.get()
    repo = defs.get_repository_def()
    all_assets = list(repo.assets_defs_by_key.values())
    by_name = {k.path[-1]: a for k, a in repo.assets_defs_by_key.items()}
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    timings: dict[str, float] = {}

    def run(selection: list[str], partition_key, label: str) -> None:
        result = dg.materialize(
            all_assets, selection=[by_name[s] for s in selection], partition_key=partition_key,
            instance=instance, run_config=QUIET_RUN_CONFIG, raise_on_error=False,
            tags={"maestro/trigger": "demo"},
        )
        if not result.success:
            reasons = [e.message for e in result.all_events
                       if e.is_failure or e.event_type_value == "ASSET_CHECK_EVALUATION"
                       and "did not pass" in (e.message or "")]
            failure = next((e for e in result.all_events if e.is_step_failure), None)
            detail = (failure.step_failure_data.error.message.strip().splitlines()[0]
                      if failure and failure.step_failure_data.error else "; ".join(reasons[:2]))
            raise MaestroError(f"{label} failed (run {result.run_id[:8]}): {detail}")

    t0 = time.perf_counter()
    n = 0
    for inst in cfg.instrument_objs:
        for month in months_between(month_of(inst.start_ms), month_of(min(now, inst.end_ms or now) - 1)):
            run(["raw_candles", "validated_bars"], bars_key(month, inst.key), f"bars {inst.key} {month}")
            n += 1
    timings["bars"] = time.perf_counter() - t0
    log(f"  bars: {n} month x instrument partitions fetched and validated in {timings['bars']:.1f} s")

    t0 = time.perf_counter()
    for inst in cfg.instrument_objs:
        run(["walk_forward_splits"], inst.key, f"splits {inst.key}")
    timings["splits"] = time.perf_counter() - t0
    log(f"  splits: {len(cfg.instruments)} instrument(s) in {timings['splits']:.1f} s")

    t0 = time.perf_counter()
    for inst in cfg.instrument_objs:
        for strat in cfg.strategies:
            t1 = time.perf_counter()
            run(["split_optimal_params", "oos_reports"], research_key(inst.key, strat), f"research {inst.key} {strat}")
            log(f"  research {inst.key} x {strat}: {time.perf_counter() - t1:.1f} s")
    timings["research"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    run(["strategy_leaderboard"], None, "leaderboard")
    timings["leaderboard"] = time.perf_counter() - t0
    return timings


def _cmd_demo(args: argparse.Namespace) -> int:

    path = config_path(args.config)
    cfg = load_config(path)
    ensure_dagster_home(cfg)
    print(f"Maestro demo: {len(cfg.instruments)} instrument(s) x {len(cfg.strategies)} strategies, "
          f"{cfg.walk_forward.n_splits} splits x {cfg.search.n_trials} trials, "
          f"lake {cfg.lake_path(path.resolve().parent)}")
    t0 = time.perf_counter()
    timings = run_graph(path)
    total = time.perf_counter() - t0
    lake = Lake(cfg.lake_path(path.resolve().parent))
    keys = [(i.key, s) for i in cfg.instrument_objs for s in cfg.strategies]
    print(f"\nGraph materialized in {total:.1f} s "
          f"(bars {timings['bars']:.1f} s, splits {timings['splits']:.1f} s, research {timings['research']:.1f} s, "
          f"leaderboard {timings['leaderboard']:.1f} s).\n")
    print("Leaderboard (walk-forward, out of sample):")
    print(format_leaderboard(build_leaderboard(lake, keys)))
    print(f"\nTearsheets: {lake.root}/oos_reports/…/tearsheet.html   DuckDB catalog: {lake.catalog_path()}")
    print("Open the UI:  make ui   then browse http://127.0.0.1:3000 (runs above are in its history)")
    return 0


def _cmd_instance(args: argparse.Namespace) -> int:
    cfg = load_config(config_path(args.config))
    home = ensure_dagster_home(cfg)
    print(f"{home / 'dagster.yaml'}: concurrency from maestro.yaml (runs {cfg.concurrency.max_concurrent_runs}, "
          f"research pool {cfg.concurrency.research_pool})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="maestro", description="Walk-forward validation of crypto strategies.")
    parser.add_argument("--config", help="path to maestro.yaml (default: $MAESTRO_CONFIG or ./maestro.yaml)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check-config", help="validate maestro.yaml").set_defaults(fn=_cmd_check_config)
    sub.add_parser("demo", help="materialize the whole graph and print the leaderboard").set_defaults(fn=_cmd_demo)
    sub.add_parser("leaderboard", help="print the leaderboard from the lake").set_defaults(fn=_cmd_leaderboard)
    sub.add_parser("instance", help="write the Dagster instance's dagster.yaml (concurrency limits) from maestro.yaml"
                   ).set_defaults(fn=_cmd_instance)
    args = parser.parse_args(argv)
    try:
        return args.fn(args)
    except MaestroError as e:
        print(f"maestro: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("maestro: interrupted; the lake keeps only completed writes", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
