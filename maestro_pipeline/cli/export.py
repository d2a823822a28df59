"""``maestro export``: the live parameters records, as Maestro JSON or as freqtrade strategy parameter files.

``--format json`` prints (or writes to ``--out``, one ``<instrument>/<strategy>.json`` each) the records
``live_parameters`` keeps in the lake, unchanged. ``--format freqtrade --out <strategy dir>`` writes freqtrade's
``<StrategyClass>.json`` next to the strategy files (``docs/live.md``); only tradeable records, unless
``--include-untradeable``. Every file is written to a temporary name and renamed: a bot never reads half a file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..config import config_path, load_config
from ..errors import MaestroError
from ..lake import Lake
from ..trading import freqtrade_file, read_live

__all__ = ["add_export_command", "write_atomic"]


def write_atomic(path: Path, data: dict[str, Any]) -> None:
    """``data`` as indented JSON at ``path``, via a temporary file in the same directory and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, allow_nan=False)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _cmd_export(args: argparse.Namespace) -> int:
    path = config_path(args.config)
    cfg = load_config(path)
    lake = Lake(cfg.lake_path(path.resolve().parent))
    keys = [(i.key, s) for i in cfg.instrument_objs for s in cfg.strategies]
    if args.instrument:
        cfg.instrument(args.instrument)  # one line naming the configured instruments
        keys = [k for k in keys if k[0] == args.instrument]
    if args.strategy:
        if args.strategy not in cfg.strategies:
            raise MaestroError(f"--strategy {args.strategy!r} is not in maestro.yaml's strategies "
                               f"({', '.join(cfg.strategies)})")
        keys = [k for k in keys if k[1] == args.strategy]
    docs, missing = [], []
    for inst, strategy in keys:
        doc = read_live(lake, inst, strategy)
        (docs.append(doc) if doc is not None else missing.append(f"{inst} x {strategy}"))
    if not docs:
        raise MaestroError(f"no live parameters in {lake.root} for {', '.join(missing) or 'the selection'}: "
                           "materialize live_parameters first (maestro demo, or the UI)")
    for m in missing:
        print(f"maestro export: {m}: no live parameters yet (materialize live_parameters)", file=sys.stderr)
    if args.format == "json":
        if not args.out:
            print(json.dumps(docs if len(docs) > 1 else docs[0], indent=2, allow_nan=False))
            return 0
        for d in docs:
            target = Path(args.out) / d["instrument"] / f"{d['strategy']}.json"
            write_atomic(target, d)
            print(f"{target}: {d['instrument']} x {d['strategy']}, tradeable {str(d['tradeable']).lower()} "
                  f"({d['tradeable_reason']})")
        return 0
    if not args.out:
        raise MaestroError("--format freqtrade needs --out: freqtrade reads <StrategyClass>.json next to the "
                           "strategy file (e.g. --out user_data/strategies)")
    chosen = [d for d in docs if d["tradeable"] or args.include_untradeable]
    for d in docs:
        if d not in chosen:
            print(f"maestro export: {d['instrument']} x {d['strategy']}: not tradeable, skipped "
                  f"({d['tradeable_reason']}; --include-untradeable writes it anyway)", file=sys.stderr)
    files = [freqtrade_file(d, cfg.live) for d in chosen]
    names = [f["strategy_name"] for f in files]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise MaestroError(f"several live records map to freqtrade class {', '.join(clash)}: freqtrade reads one "
                           "file per class — pick one with --instrument, or name classes in live.freqtrade_class")
    for f in files:
        target = Path(args.out) / f"{f['strategy_name']}.json"
        write_atomic(target, f)
        print(f"{target}: {f['maestro']['instrument']} x {f['maestro']['strategy']}, valid until "
              f"{f['maestro']['valid_until']}, tradeable {str(f['maestro']['tradeable']).lower()}")
    return 0 if files else 1


def add_export_command(sub: Any) -> None:
    p = sub.add_parser("export", help="the live parameters (what to trade now) as JSON or freqtrade parameter files")
    p.add_argument("--format", choices=("json", "freqtrade"), default="json")
    p.add_argument("--out", help="directory to write to (json: <instrument>/<strategy>.json; freqtrade: "
                   "<StrategyClass>.json); json without --out prints to stdout")
    p.add_argument("--instrument", help="only this instrument key")
    p.add_argument("--strategy", help="only this strategy")
    p.add_argument("--include-untradeable", action="store_true",
                   help="freqtrade: also write records whose verdict is below live.tradeable_from")
    p.set_defaults(fn=_cmd_export)
