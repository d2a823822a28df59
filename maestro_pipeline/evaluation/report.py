"""One instrument x strategy's out-of-sample report: the OOS run, the report card and the row the lake keeps."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import polars as pl

from ..config import EvaluationConfig, LiveConfig, RiskSettings
from ..durations import iso
from ..engine import Costs
from ..instruments import Instrument
from ..reporting import QUANTSTATS_CONVENTIONS
from ..schema import bars_hash, to_pandas_bars
from ..strategies import get_strategy
from .oos import OOSResult, run_oos
from .report_card import ReportCard, build_report_card
from .verdict import VERDICT_RANK

__all__ = ["ResearchReport", "build_report", "live_summary", "tradeable", "with_regimes"]

REGIME_COLUMNS = ("train_regime", "train_regime_share", "test_regime", "test_regime_share")


def with_regimes(per_split: pl.DataFrame, params: pl.DataFrame, table: pl.DataFrame) -> pl.DataFrame:
    """The per-split OOS table with each window's market regime (from the splits table, matched by window)."""
    cols = [c for c in REGIME_COLUMNS if c in table.columns]
    if not cols:
        return per_split
    windows = params.select("split", "train_start", "test_start").join(
        table.select("train_start", "test_start", *cols), on=["train_start", "test_start"], how="left")
    return per_split.join(windows.select("split", *cols), on="split", how="left")


def live_summary(params: pl.DataFrame) -> dict[str, str]:
    """The live split's pick (what the walk-forward would trade now) for the report row."""
    if "live" not in params.columns or not params["live"].fill_null(False).any():
        return {"live_params": "", "live_train_from": "", "live_train_to": "", "live_trading_until": ""}
    r = params.filter(pl.col("live").fill_null(False)).row(0, named=True)
    return {"live_params": r["params"], "live_train_from": iso(r["train_start"]), "live_train_to": iso(r["train_end"]),
            "live_trading_until": iso(r["test_end"])}


def tradeable(verdict: str, live_params: str | None, live: LiveConfig) -> tuple[bool, str]:
    """May the live split's pick be traded? Only when there is a pick and the verdict is ``live.tradeable_from``
    or better (``VERDICT_RANK``); otherwise False and the reason, in words."""
    bar = live.tradeable_from
    if not live_params:
        return False, "no live pick: the live split has no feasible parameters (or there is no live split)"
    rank = VERDICT_RANK.get(verdict)
    if rank is None:
        return False, f"verdict {verdict!r} is unknown"
    if rank <= VERDICT_RANK[bar]:
        return True, f"verdict {verdict!r} clears live.tradeable_from {bar!r}"
    return False, f"verdict {verdict!r} is below live.tradeable_from {bar!r}"


@dataclass
class ResearchReport:
    oos: OOSResult
    card: ReportCard
    summary: dict[str, Any]    # the oos_reports row (flat scalars)
    title: str


def build_report(inst: Instrument, strategy: str, bars: pl.DataFrame, params: pl.DataFrame, ledger: pl.DataFrame,
                 daily: pl.DataFrame | None, splits_table: pl.DataFrame, costs: Costs, max_gap: str | int,
                 *, risk: RiskSettings | None = None, evaluation: EvaluationConfig | None = None,
                 with_charts: bool = True) -> ResearchReport:
    """Trade each split's pick out of sample, judge it (report card), and assemble the report row."""
    res = run_oos(bars, params, strategy, costs, inst.timeframe, max_gap=max_gap, risk=risk)
    res.per_split = with_regimes(res.per_split, params, splits_table)
    title = f"{inst.key} {strategy}"
    card = build_report_card(res, params, ledger, daily, to_pandas_bars(bars), get_strategy(strategy), title,
                             with_charts=with_charts, risk=risk, evaluation=evaluation)
    summary = {
        "instrument": inst.key, "exchange": inst.exchange, "symbol": inst.symbol, "timeframe": inst.timeframe,
        "strategy": strategy, "source": inst.exchange,
        **card.summary,
        **res.summary,
        "quantstats_conventions": json.dumps(QUANTSTATS_CONVENTIONS, default=str),
        **live_summary(params),
        "bars_data_version": bars_hash(bars),
    }
    return ResearchReport(res, card, summary, title)
