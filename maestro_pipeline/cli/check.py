"""``maestro check-config``: the config, and every file instrument opened (``--online``: ccxt instruments too).

A config that loads is not yet a config that runs: a file may be missing, hold several assets, or have bars at
another interval than the instrument's timeframe. Each file instrument is read (the same reader ingestion uses),
its bar interval compared with the declared timeframe, and its span, row count and reading notes printed. ccxt
instruments stay offline unless ``--online`` asks the exchange whether the symbol and timeframe exist.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from ..config import MaestroConfig, config_path, load_config
from ..config.instruments import InstrumentConfig
from ..durations import iso
from ..errors import MaestroError
from ..market import FileSource, describe_spacing, make_source
from ..timeframes import timeframe_ms

__all__ = ["InstrumentCheck", "add_check_command", "check_instruments"]


@dataclass
class InstrumentCheck:
    key: str
    ok: bool
    line: str                                   # one line for people
    details: list[str] = field(default_factory=list)


def _check_file(ic: InstrumentConfig, key: str, base: Path) -> InstrumentCheck:
    path = ic.file_path(base)
    src = FileSource(path, name=ic.file_name, **ic.file_options())  # type: ignore[arg-type]
    imp = src.load(ic.symbol.split("/")[0])
    spacing = describe_spacing(imp.timeframe_ms) if imp.timeframe_ms else "unknown (one row)"
    src.check_timeframe(imp, ic.timeframe)   # one line when the interval is not the timeframe
    if imp.bars.height == 0:
        raise MaestroError(f"{path}: the file holds no rows")
    first, last = imp.first_ms, imp.last_ms
    end = last + timeframe_ms(ic.timeframe)   # type: ignore[operator]
    inside = imp.bars.filter(imp.bars["timestamp"] >= ic.to_instrument().start_ms).height
    line = (f"{key}: ok — {path.name}: {imp.bars.height:,} rows ({inside:,} from start {ic.start}), bars "
            f"{spacing} apart = {ic.timeframe}, {iso(first)} .. {iso(last)} (data ends {iso(end)}"  # type: ignore[arg-type]
            f"{'' if ic.end else '; end: defaults to it'})")
    details = [f"columns: {', '.join(f'{k}={v}' for k, v in imp.columns.items())}"]
    if not imp.has_volume:
        details.append("no volume column: volume rules and volume strategies will not run")
    if imp.duplicates:
        details.append(f"{imp.duplicates} duplicate timestamp(s): the contract quarantines their months")
    if imp.resorted:
        details.append("rows were not in time order (re-sorted)" + (" — newest first" if imp.newest_first else ""))
    details += list(imp.notes)
    if inside == 0:
        return InstrumentCheck(key, False, f"{key}: {path}: no bar at or after start {ic.start} (the file ends "
                                           f"{iso(end)}); move start: earlier", details)
    return InstrumentCheck(key, True, line, details)


def _check_ccxt(ic: InstrumentConfig, key: str, online: bool) -> InstrumentCheck:
    if not online:
        return InstrumentCheck(key, True, f"{key}: not checked against {ic.exchange} (offline; --online checks the "
                                          "symbol and timeframe)")
    src = make_source(ic.exchange)
    src.market(ic.symbol)              # type: ignore[attr-defined]
    src.check_timeframe(ic.timeframe)  # type: ignore[attr-defined]
    return InstrumentCheck(key, True, f"{key}: ok — {ic.exchange} lists {ic.symbol} with timeframe {ic.timeframe}")


def check_instruments(cfg: MaestroConfig, base: Path, online: bool = False) -> list[InstrumentCheck]:
    """One check per instrument; a failure is one line naming the instrument, never an exception."""
    out = []
    for ic in cfg.instruments:
        key = ic.to_instrument().key
        try:
            if ic.exchange == "file":
                out.append(_check_file(ic, key, base))
            elif ic.exchange == "synthetic":
                out.append(InstrumentCheck(key, True, f"{key}: ok — the embedded synthetic market"))
            else:
                out.append(_check_ccxt(ic, key, online))
        except MaestroError as e:
            out.append(InstrumentCheck(key, False, f"{key}: {e}"))
    return out


def _cmd_check_config(args: argparse.Namespace) -> int:
    path = config_path(args.config)
    cfg = load_config(path)
    base = path.resolve().parent
    print(f"{path}: loads — {len(cfg.instruments)} instrument(s); strategies: {', '.join(cfg.strategies)}; "
          f"lake: {cfg.lake_path(base)}")
    checks = check_instruments(cfg, base, online=args.online)
    for c in checks:
        print(c.line)
        for d in c.details if args.verbose or not c.ok else []:
            print(f"    {d}")
    bad = [c for c in checks if not c.ok]
    if bad:
        raise MaestroError(f"{len(bad)} of {len(checks)} instrument(s) cannot be ingested: "
                           f"{', '.join(c.key for c in bad)} (each said why above)")
    return 0


def add_check_command(sub) -> None:
    p = sub.add_parser("check-config", help="validate maestro.yaml and open every file instrument "
                                            "(--online: ccxt instruments too)")
    p.add_argument("--online", action="store_true", help="ask each ccxt exchange whether symbol and timeframe exist")
    p.add_argument("-v", "--verbose", action="store_true", help="print each file's columns and reading notes")
    p.set_defaults(fn=_cmd_check_config)
