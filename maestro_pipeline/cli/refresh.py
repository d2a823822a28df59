"""``maestro refresh``: re-download and re-validate chosen months of raw candles from scratch.

Ingestion normally appends only the bars after the newest stored one, so a corrected exchange history or an
edited candle file would never be read again. ``refresh`` runs ``raw_candles`` with ``full_refresh: true`` (the
whole month fetched anew and the stored file replaced atomically) and then ``validated_bars`` for every chosen
month x instrument, through the same Dagster instance as ``maestro demo`` so the runs show in the UI. Research
follows on the next ``maestro demo`` (splits whose bars did not change keep their searches). In the UI the same
is the ``refresh_bars`` job launched with the run config ``ops: {market_bars: {config: {full_refresh: true}}}``.
"""

from __future__ import annotations

import argparse
import re
import sys
import time

from ..config import MaestroConfig, config_path, load_config
from ..durations import month_of, months_between
from ..errors import MaestroError
from ..instruments import Instrument
from .graph import ensure_dagster_home, run_refresh
from .session import in_session, run_in_own_session

__all__ = ["add_refresh_command", "refresh_plan"]

_MONTH_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def _months(spec: str) -> list[str]:
    """``2026-03`` or ``2026-03..2026-05`` (both ends included)."""
    first, _, last = spec.partition("..")
    last = last or first
    for m in (first, last):
        if not _MONTH_RE.match(m):
            raise MaestroError(f"refresh: month {m!r} is not YYYY-MM; write e.g. 2026-03 or 2026-03..2026-05")
    if last < first:
        raise MaestroError(f"refresh: {spec!r} runs backwards; write the earlier month first")
    return months_between(first, last)


def _span(inst: Instrument, now_ms: int) -> list[str]:
    return months_between(month_of(inst.start_ms), month_of(min(now_ms, inst.end_ms or now_ms) - 1))


def refresh_plan(cfg: MaestroConfig, month_specs: list[str], instruments: list[str] | None,
                 now_ms: int | None = None) -> list[tuple[Instrument, str]]:
    """The (instrument, month) pairs to refresh; a month outside an instrument's span is a one-line error."""
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    insts = [cfg.instrument(k) for k in instruments] if instruments else cfg.instrument_objs
    months = sorted({m for spec in month_specs for m in _months(spec)})
    plan = []
    for inst in insts:
        span = _span(inst, now)
        outside = [m for m in months if m not in span]
        if outside:
            raise MaestroError(f"refresh: {inst.key} has no month {', '.join(outside)} (its span is {span[0]} .. "
                               f"{span[-1]}); pick months inside it or name other instruments with --instrument")
        plan.extend((inst, m) for m in months)
    return plan


def _cmd_refresh(args: argparse.Namespace) -> int:
    path = config_path(args.config)
    cfg = load_config(path)
    plan = refresh_plan(cfg, args.months, args.instrument)
    if not in_session():
        return run_in_own_session(args.argv)
    ensure_dagster_home(cfg)
    print(f"Maestro refresh: {len(plan)} month x instrument partition(s), fetched from scratch", flush=True)
    failures = run_refresh(path, plan, log=lambda line: print(line, flush=True))
    if failures:
        print(f"maestro: {len(failures)} refresh run(s) failed; the others completed", file=sys.stderr)
        return 1
    print("Research follows on the next `maestro demo` (splits whose bars did not change keep their searches).")
    return 0


def add_refresh_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("refresh", help="re-download and re-validate chosen months of raw candles (full refresh)")
    p.add_argument("months", nargs="+", help="months to refresh: 2026-03 or a range 2026-03..2026-05")
    p.add_argument("--instrument", action="append",
                   help="an instrument key (e.g. synthetic.BTC_USDT.1h); repeat for several; default: all")
    p.set_defaults(fn=_cmd_refresh)
