"""``make bench``: Maestro's speed beside references measured in the same run, on the same data.

Data: one year of 1h bars (8,760) from the embedded market. References (DESIGN §8): a hand-written numba loop
(EMA cross, next-bar-open fills, all-in long/short, fees + slippage — the same execution model as the engine)
and, for the walk-forward, Optuna's in-memory TPE driving that loop. A year of 1m bars (525,600) goes through the
walk_forward_splits step with regimes on, beside the same step with regimes off, each in a fresh subprocess (time
and peak memory). Figures are printed, never asserted.

``engine`` holds the engine and walk-forward rows (and ``run``, the whole table), ``stats`` PBO, the bootstrap,
the report charts and the bar contract beside one split's search, ``backfill`` the bar backfill through Dagster's
own paths, ``data`` the file import and the regimes' memory, ``team`` study persistence and the PostgreSQL
instance, ``catalog`` every strategy x the embedded instruments through the demo graph beside its pure search;
``common`` the row type and the timing rule.
"""

from __future__ import annotations

import argparse

from .backfill import backfill_figures, backfill_rows
from .catalog import catalog_figures, catalog_rows
from .common import Row, best_of, year_of_bars
from .data import file_ingest_rows, regime_memory_rows
from .engine import ema_cross_loop, run
from .stats import stats_rows
from .team import team_rows

__all__ = ["Row", "backfill_figures", "backfill_rows", "best_of", "catalog_figures", "catalog_rows", "ema_cross_loop",
           "file_ingest_rows", "main", "regime_memory_rows", "run", "stats_rows", "team_rows", "year_of_bars"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-demo", action="store_true", help="skip timing the whole demo graph (~2-3 min)")
    parser.add_argument("--no-backfill", action="store_true", help="skip the 48-partition bar backfill (~2 min)")
    parser.add_argument("--no-catalog", action="store_true",
                        help="skip the whole catalog (every strategy x 2 instruments x 7 splits; ~15 min on 2 cores)")
    parser.add_argument("--trials", type=int, default=100, help="trials per split of the walk-forward (default 100)")
    args = parser.parse_args()
    rows = run(demo=not args.no_demo, trials=args.trials, backfill=not args.no_backfill,
               catalog=not args.no_catalog)
    print("| measurement | Maestro | reference | ratio | note |\n|---|---|---|---|---|")
    for r in rows:
        print(r.line())
