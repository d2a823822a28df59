"""``maestro``: the command-line shell (config check, demo run, leaderboard, instance, worker, strategy check,
backtest, refresh, export of the live parameters, serve).

It is the application's edge, not domain core: ``demo`` imports Dagster (lazily) to run the real asset graph in
process against a persistent instance, so the UI shows the same runs afterwards. User mistakes print one line on
stderr and exit 2; a demo whose runs partly failed prints each failure in one line and exits 1; nothing is
half-written.
"""

from __future__ import annotations

import argparse
import sys
import time

from ..config import config_path, load_config
from ..errors import MaestroError
from ..evaluation import build_leaderboard, format_leaderboard
from ..lake import Lake
from ..walkforward import splits_clamp_note
from .check import add_check_command
from .export import add_export_command
from .graph import QUIET_RUN_CONFIG, GraphRun, ensure_dagster_home, run_graph, tiny_run_seconds
from .refresh import add_refresh_command
from .research import add_research_commands
from .serve import add_serve_command
from .session import in_session, run_in_own_session
from .team import add_team_commands

__all__ = ["QUIET_RUN_CONFIG", "GraphRun", "ensure_dagster_home", "main", "run_graph", "tiny_run_seconds"]


def _cmd_leaderboard(args: argparse.Namespace) -> int:
    path = config_path(args.config)
    cfg = load_config(path)
    lake = Lake(cfg.lake_path(path.resolve().parent))
    keys = [(i.key, s) for i in cfg.instrument_objs for s in cfg.strategies]
    print(format_leaderboard(build_leaderboard(lake, keys)))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    path = config_path(args.config)
    cfg = load_config(path)
    if not in_session():
        return run_in_own_session(args.argv)
    ensure_dagster_home(cfg)
    print(f"Maestro demo: {len(cfg.instruments)} instrument(s) x {len(cfg.strategies)} strategies, "
          f"up to {cfg.walk_forward.n_splits} splits x {cfg.search.n_trials} trials, "
          f"lake {cfg.lake_path(path.resolve().parent)}", flush=True)
    t0 = time.perf_counter()
    run = run_graph(path, log=lambda line: print(line, flush=True))
    total = time.perf_counter() - t0
    t = run.timings
    lake = Lake(cfg.lake_path(path.resolve().parent))
    keys = [(i.key, s) for i in cfg.instrument_objs for s in cfg.strategies]
    print(f"\nGraph materialized in {total:.1f} s (bars {t['bars']:.1f} s, splits {t['splits']:.1f} s, "
          f"research {t['research']:.1f} s, leaderboard {t['leaderboard']:.1f} s).\n")
    for note in _splits_clamp_notes(lake, cfg):
        print(f"Note: {note}")
    print("Leaderboard (walk-forward, out of sample):")
    print(format_leaderboard(build_leaderboard(lake, keys)))
    print(f"\nTearsheets: `maestro serve`, then {cfg.files_url}/oos_reports/…/tearsheet.html (drawn on first open; "
          f"the UI links each)   DuckDB catalog: {lake.catalog_path()}")
    print("Open the UI:  make ui   then browse http://127.0.0.1:3000 (runs above are in its history)")
    if not run.ok:
        print(f"maestro: {len(run.failures)} run(s) failed; the others completed:", file=sys.stderr)
        for line in run.failures:
            print(f"maestro: {line}", file=sys.stderr)
        return 1
    return 0


def _splits_clamp_notes(lake: Lake, cfg) -> list[str]:
    """Instruments whose data held fewer complete splits than ``walk_forward.n_splits`` (the stated clamp)."""
    notes = []
    for inst in cfg.instrument_objs:
        if lake.exists("walk_forward_splits", inst.hive):
            table = lake.read_file("walk_forward_splits", inst.hive)
            complete = table.height - (int(table["live"].sum()) if "live" in table.columns else 0)
            if complete < cfg.walk_forward.n_splits:
                notes.append(splits_clamp_note(inst.key, cfg.walk_forward.n_splits, complete))
    return notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="maestro", description="Walk-forward validation of crypto strategies.")
    parser.add_argument("--config", help="path to maestro.yaml (default: $MAESTRO_CONFIG or ./maestro.yaml)")
    sub = parser.add_subparsers(dest="command", required=True)
    add_check_command(sub)
    sub.add_parser("demo", help="materialize the whole graph and print the leaderboard").set_defaults(fn=_cmd_demo)
    sub.add_parser("leaderboard", help="print the leaderboard from the lake").set_defaults(fn=_cmd_leaderboard)
    add_research_commands(sub)
    add_serve_command(sub)
    add_export_command(sub)
    add_refresh_command(sub)
    add_team_commands(sub)
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return args.fn(args)
    except MaestroError as e:
        print(f"maestro: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if not in_session():   # in a graph command's child the parent prints the line
            print("maestro: interrupted; the lake keeps only completed writes", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
