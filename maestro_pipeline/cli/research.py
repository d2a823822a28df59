"""``maestro check-strategy`` (the look-ahead check) and ``maestro backtest`` (one backtest from the terminal)."""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl

from ..config import MaestroConfig, RiskOverride, RiskSettings, config_path, load_config, parse_section
from ..engine import Costs, evaluate
from ..errors import MaestroError
from ..lake import Lake
from ..market import SyntheticMarket, make_source, read_bars_file
from ..quality import check_bars
from ..schema import to_pandas_bars
from ..search import risk_spec, split_params
from ..strategies import available_strategies, check_lookahead, get_strategy
from ..timeframes import HOUR_MS, timeframe_ms

__all__ = ["add_research_commands"]

#: The embedded bars ``check-strategy`` uses without a configured instrument: 4,000 hours of the synthetic market.
_EMBEDDED_SINCE_MS = 1_735_689_600_000  # 2025-01-01


def _embedded_bars() -> pd.DataFrame:
    market = SyntheticMarket(seed=7, now_ms=_EMBEDDED_SINCE_MS + 4_100 * HOUR_MS)
    return to_pandas_bars(market.fetch("BTC/USDT", "1h", _EMBEDDED_SINCE_MS, _EMBEDDED_SINCE_MS + 4_000 * HOUR_MS))


def _config_or_none(args: argparse.Namespace) -> tuple[MaestroConfig | None, Path]:
    path = config_path(args.config)
    return (load_config(path) if path.exists() else None), path


def _instrument_bars(cfg: MaestroConfig, path: Path, key: str, now_ms: int | None = None) -> pd.DataFrame:
    """The instrument's validated bars from the lake, else fetched from its source over its configured span."""
    inst = cfg.instrument(key)
    lake = Lake(cfg.lake_path(path.resolve().parent))
    bars = lake.read_bars(inst)
    if bars.height == 0:
        files = {i.source_id: str(i.file_path(path.resolve().parent)) for i in cfg.instruments if i.exchange == "file"}
        opts = {i.source_id: i.file_options() for i in cfg.instruments if i.exchange == "file"}
        source = make_source(inst.exchange, synthetic_seed=cfg.synthetic.seed, now_ms=now_ms, files=files,
                             file_options=opts)
        end = inst.end_ms or (now_ms if now_ms is not None else int(pd.Timestamp.now("UTC").value // 1_000_000))
        bars = source.fetch(inst.symbol, inst.timeframe, inst.start_ms, end)
    if bars.height == 0:
        raise MaestroError(f"{key}: no bars (materialize raw_candles and validated_bars, or check the source)")
    return to_pandas_bars(bars)


def _cmd_check_strategy(args: argparse.Namespace) -> int:
    cfg, path = _config_or_none(args)
    if args.name not in available_strategies():
        get_strategy(args.name)  # one-line error naming the available strategies
    if args.instrument:
        if cfg is None:
            raise MaestroError(f"{path}: not found; --instrument needs a maestro.yaml")
        bars, where = _instrument_bars(cfg, path, args.instrument), args.instrument
    else:
        bars, where = _embedded_bars(), "the embedded market (4,000 1h bars)"
    report = check_lookahead(get_strategy(args.name), bars)
    for line in report.lines():
        print(line)
    print(f"checked on {where}")
    return 0 if report.passed else 1


def _risk_from_args(args: argparse.Namespace, base: RiskSettings) -> RiskSettings:
    over = {k: getattr(args, k) for k in ("stop_loss", "take_profit", "trailing_stop", "sizing", "fraction",
                                         "risk_per_trade", "max_leverage", "atr_window")
            if getattr(args, k) is not None}
    if not over:
        return base
    parsed = parse_section(RiskOverride, over, "--risk options")
    merged = {**base.model_dump(exclude={"search"}),
              **{k: v for k, v in parsed.model_dump(exclude={"search"}).items() if v is not None}}
    return parse_section(RiskSettings, merged, "--risk options")


def _cmd_backtest(args: argparse.Namespace) -> int:
    cfg, path = _config_or_none(args)
    strategy = get_strategy(args.strategy)
    if args.file:
        if not args.timeframe:
            raise MaestroError("--file needs --timeframe (e.g. 1h) so the bars can be checked against it")
        timeframe_ms(args.timeframe)  # a clear error for a timeframe like "1hour"
        imp = read_bars_file(args.file)
        failed = [r for r in check_bars(imp.bars, args.timeframe) if not r.passed]
        if failed:
            raise MaestroError(f"{args.file}: not clean {args.timeframe} bars: "
                               + "; ".join(f"{r.rule}: {r.message}" for r in failed[:3])
                               + " (fix the file, or pass its real --timeframe)")
        bars = to_pandas_bars(imp.bars)
        where = args.file
    elif args.instrument:
        if cfg is None:
            raise MaestroError(f"{path}: not found; --instrument needs a maestro.yaml (or use --file)")
        bars, where = _instrument_bars(cfg, path, args.instrument), args.instrument
    else:
        raise MaestroError("say which bars: --instrument KEY (from maestro.yaml) or --file PATH --timeframe TF")
    if args.start:
        bars = bars.loc[bars.index >= pd.Timestamp(args.start)]
    if args.end:
        bars = bars.loc[bars.index < pd.Timestamp(args.end)]
    if len(bars) < 3:
        raise MaestroError("fewer than 3 bars in the chosen span: widen --start/--end")
    try:
        raw = json.loads(args.params) if args.params else {}
    except json.JSONDecodeError as e:
        raise MaestroError(f"--params is not JSON ({e.msg}): write e.g. '{{\"fast\": 10, \"slow\": 40}}'") from None
    if not isinstance(raw, dict):
        raise MaestroError("--params must be a JSON object such as {\"fast\": 10}")
    strategy_params, risk_params = split_params(raw, strategy)
    base = cfg.risk.for_strategy(strategy.name) if cfg is not None else RiskSettings()
    risk = _risk_from_args(args, base)
    exchange = args.instrument.split(".")[0] if args.instrument else "file"
    given = {"fee": args.fee, "slippage": args.slippage, "maintenance_margin": args.maintenance_margin}
    costs = replace(Costs.of(cfg.costs_for(exchange)) if cfg is not None else Costs(),
                    **{k: v for k, v in given.items() if v is not None})
    params = strategy.check(strategy_params)
    res = evaluate(bars, strategy, params, 0, len(bars), costs, init_cash=args.cash, risk=risk_spec(risk, risk_params))
    out = _summary(res, strategy.name, params, risk_spec(risk, risk_params).describe(), where, args.cash)
    if args.json:
        print(json.dumps(out, indent=1, default=str))
        return 0
    _print_summary(out, res.trades, args.trades)
    return 0


def _summary(res: Any, name: str, params: dict, risk: str, where: str, cash: float) -> dict[str, Any]:
    eq = res.equity.to_numpy()
    return {
        "strategy": name, "bars": where, "params": params, "risk": risk, "first_bar": str(res.equity.index[0]),
        "last_bar": str(res.equity.index[-1]), "initial_equity": cash, "final_equity": float(eq[-1]),
        "min_equity": float(res.min_equity), "total_return": float(eq[-1] / cash - 1.0), "trades": int(res.n_trades),
        "liquidations": res.liquidations, "exit_reasons": res.exit_counts(), "ruined": bool(res.ruined),
        "ruin_time": str(res.ruin_time) if res.ruined else None, "peak_leverage": float(res.peak_leverage),
        "trade_list": [{k: (v.isoformat() if hasattr(v, "isoformat") else (None if isinstance(v, float)
                                                                           and math.isnan(v) else v))
                        for k, v in row.items()} for row in res.trades.to_dict("records")],
    }


def _print_summary(out: dict[str, Any], trades: pd.DataFrame, n_show: int) -> None:
    print(f"{out['strategy']} {out['params']} on {out['bars']} ({out['first_bar']} .. {out['last_bar']}); "
          f"risk: {out['risk']}")
    if len(trades):
        cols = ["entry_time", "exit_time", "direction", "entry_price", "exit_price", "pnl", "return", "status",
                "exit_reason"]
        shown = pl.from_pandas(trades[cols].tail(n_show).astype({"entry_time": "string", "exit_time": "string"}))
        with pl.Config(tbl_rows=n_show, tbl_cols=12, tbl_hide_dataframe_shape=True, tbl_width_chars=200,
                       float_precision=4):
            print(shown)
        if len(trades) > n_show:
            print(f"(last {n_show} of {len(trades)} trades; --trades N shows more)")
    reasons = ", ".join(f"{k} {v}" for k, v in out["exit_reasons"].items() if v) or "none"
    print(f"trades {out['trades']} (exits: {reasons}); liquidations {out['liquidations']}")
    print(f"equity {out['initial_equity']:,.2f} -> {out['final_equity']:,.2f} ({out['total_return']:+.2%}); "
          f"lowest {out['min_equity']:,.2f}; peak leverage {out['peak_leverage']:.2f}x"
          + (f"; RUINED at {out['ruin_time']}" if out["ruined"] else ""))


def add_research_commands(sub: Any) -> None:
    p = sub.add_parser("check-strategy", help="the no-look-ahead check for a strategy (catalog or plugin)")
    p.add_argument("name", help="strategy name")
    p.add_argument("--instrument", help="check on this instrument's bars (key from maestro.yaml); default: embedded")
    p.set_defaults(fn=_cmd_check_strategy)
    b = sub.add_parser("backtest", help="one backtest: trades, final and lowest equity, liquidations, exit reasons")
    b.add_argument("strategy", help="strategy name")
    b.add_argument("--instrument", help="instrument key from maestro.yaml (its validated bars, else its source)")
    b.add_argument("--file", help="a candle file (CSV, Parquet, feather, freqtrade JSON) instead of an instrument")
    b.add_argument("--timeframe", help="the file's timeframe (with --file)")
    b.add_argument("--start", help="first bar (UTC date/time)")
    b.add_argument("--end", help="end (exclusive, UTC date/time)")
    b.add_argument("--params", help="strategy parameters as JSON (defaults for the rest)")
    for name, what in (("stop-loss", "fraction of the entry price (0.05, 5%%) or ATR multiple (2atr)"),
                       ("take-profit", "same units as --stop-loss"), ("trailing-stop", "same units as --stop-loss")):
        b.add_argument(f"--{name}", dest=name.replace("-", "_"), help=what)
    b.add_argument("--sizing", choices=("fraction", "risk"))
    b.add_argument("--fraction", type=float, help="fraction of equity per position (sizing fraction)")
    b.add_argument("--risk-per-trade", type=float, help="fraction of equity lost at the stop (sizing risk)")
    b.add_argument("--max-leverage", type=float)
    b.add_argument("--atr-window", type=int)
    b.add_argument("--fee", type=float)
    b.add_argument("--slippage", type=float)
    b.add_argument("--maintenance-margin", type=float)
    b.add_argument("--cash", type=float, default=10_000.0, help="initial equity (default 10,000)")
    b.add_argument("--trades", type=int, default=20, help="trades to list (default 20)")
    b.add_argument("--json", action="store_true", help="print everything as JSON")
    b.set_defaults(fn=_cmd_backtest)

