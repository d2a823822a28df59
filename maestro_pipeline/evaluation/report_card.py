"""The out-of-sample report card: is this strategy robust? Figures, tables and charts for one instrument x strategy.

Built from the walk-forward's own records, never from a re-run search: the stitched OOS returns
(:func:`maestro_pipeline.evaluation.run_oos`), the per-split picks, the trial ledger (every trial of every split)
and the trials' daily train returns. What it adds to the OOS run:

* the full quantstats table (365-day year) and rolling 30-day Sharpe/volatility;
* the Deflated Sharpe Ratio of the OOS daily returns, deflated by the real number of trials in the ledger and
  the spread of their (daily, per-period) train Sharpes — conservative, since the OOS Sharpe is not itself the
  maximum over those trials;
* the Probability of Backtest Overfitting by CSCV over each split's trial returns (mean over splits);
* stationary-bootstrap CIs of the OOS Sharpe and max drawdown, and a trade-reshuffle CI of the drawdown;
* parameter stability across splits and around each split's pick (a plateau, not a spike);
* the verdict (:func:`maestro_pipeline.evaluation.verdict`) with its thresholds, and the charts the Dagster UI shows.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from .. import stats
from ..config import EvaluationConfig, RiskSettings
from ..errors import MaestroError
from ..reporting import (
    candles_with_trades_png,
    daily_returns,
    equity_drawdown_png,
    param_heatmap_png,
    param_surface_png,
    quantstats_table,
    rolling_metrics,
)
from ..search import risk_space
from ..strategies import FloatParam, IntParam, Strategy
from .oos import OOSResult
from .verdict import Evidence, thresholds, verdict

__all__ = ["BOOTSTRAP", "ReportCard", "build_report_card"]
BOOTSTRAP = {"n_boot": 2000, "seed": 0, "level": 0.95, "method": "stationary bootstrap, mean block sqrt(T) days"}
#: quantstats figures that annualize (365 periods a year): only from enough OOS days.
ANNUALIZED = ("cagr", "sharpe", "sortino", "volatility", "calmar")
#: The figures whose NaN the leaderboard explains.
EXPLAINED = ("oos_sharpe", "oos_sortino", "oos_cagr", "dsr", "pbo", "wfe", "sharpe_ci_low", "sharpe_ci_high",
             "plateau_median")


@dataclass
class ReportCard:
    summary: dict[str, Any]                 # flat scalars: the oos_reports row
    rolling: pl.DataFrame                   # day, rolling_sharpe, rolling_volatility
    stability: pl.DataFrame                 # one row per parameter
    charts: dict[str, bytes] = field(default_factory=dict)  # name -> PNG


def _f(x: Any) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return math.nan
    return v if math.isfinite(v) else math.nan


def _feasible(ledger: pl.DataFrame) -> pl.Expr:
    """Completed trials that met ``min_trades`` (ledgers written before feasibility existed: every completed one)."""
    done = pl.col("state") == "COMPLETE"
    return done & pl.col("feasible") if "feasible" in ledger.columns else done


def _trial_daily_sharpes(daily: pl.DataFrame) -> np.ndarray:
    """Per-period Sharpe (mean / std, ddof=1; 0 when flat) of every trial's daily train returns."""
    g = (daily.group_by("split", "trial")
         .agg(pl.col("return").mean().alias("m"), pl.col("return").std(ddof=1).alias("s"))
         .sort("split", "trial"))  # group_by's order varies from run to run: the variance must not
    m, s = g["m"].to_numpy(), g["s"].fill_null(0.0).to_numpy()
    return np.where(s > 0, m / np.where(s > 0, s, 1.0), 0.0)


def overfitting_figures(oos_daily: pd.Series, ledger: pl.DataFrame, daily: pl.DataFrame | None) -> dict[str, Any]:
    """DSR and PBO with the inputs they used; None (with a note) where the records cannot support them."""
    out: dict[str, Any] = {"dsr": None, "psr": None, "sr0": None, "dsr_n_trials": 0, "pbo": None, "pbo_splits": 0,
                           "overfitting_note": ""}
    notes = []
    n_complete = int((ledger["state"] == "COMPLETE").sum()) if ledger.height else 0
    out["dsr_n_trials"] = n_complete
    if daily is None or daily.height == 0 or n_complete == 0:
        notes.append("no per-trial returns in the ledger: DSR and PBO not computed")
    else:
        try:
            d = stats.dsr_report(oos_daily.to_numpy(), _trial_daily_sharpes(daily), n_complete)
            out.update(dsr=d["dsr"], psr=d["psr"], sr0=d["sr0"], dsr_observed_daily_sr=d["observed_sr"],
                       dsr_sr_variance=d["sr_variance"], oos_skew=d["skew"], oos_kurtosis=d["kurtosis"])
        except MaestroError as exc:  # constant OOS returns, one trial...: say why, keep the report
            notes.append(f"DSR not computed: {exc}")
        pbo = stats.pbo_walk_forward(daily.select("split", "trial", "day", "return").to_pandas())
        out["pbo"] = pbo["mean_pbo"]
        out["pbo_splits"] = sum(1 for p in pbo["per_split"] if p.get("pbo") is not None)
        out["pbo_per_split"] = json.dumps([{k: p.get(k) for k in ("split", "pbo", "n_days", "n_trials")}
                                           for p in pbo["per_split"]])
        notes += list(pbo["notes"])
    out["overfitting_note"] = "; ".join(notes)
    return out


def confidence_intervals(oos_daily: pd.Series, trades: pl.DataFrame) -> dict[str, float]:
    r = oos_daily.to_numpy()
    out: dict[str, float] = {}
    for stat in ("sharpe", "max_drawdown"):
        try:
            lo, hi, point = stats.bootstrap_ci(r, stat, 365, n_boot=BOOTSTRAP["n_boot"], seed=BOOTSTRAP["seed"],
                                               level=BOOTSTRAP["level"])
        except MaestroError:  # too few OOS days to resample
            lo = hi = point = math.nan
        out[f"{stat}_ci_low"], out[f"{stat}_ci_high"], out[f"{stat}_daily_point"] = lo, hi, point
    tr = trades["return"].to_numpy() if trades.height and "return" in trades.columns else np.array([])
    if tr.size >= 2:
        lo, hi, point = stats.trade_reshuffle_ci(tr, n=BOOTSTRAP["n_boot"], seed=BOOTSTRAP["seed"])
        out.update(trade_reshuffle_dd_low=lo, trade_reshuffle_dd_high=hi, trade_sequence_dd=point)
    return out


def _picked(params: pl.DataFrame) -> pl.DataFrame:
    """The splits that have a pick (a split without a feasible trial has none)."""
    return params.filter(pl.col("params") != "") if "params" in params.columns else params


def stability_figures(params: pl.DataFrame, ledger: pl.DataFrame, strategy: Strategy,
                      risk: RiskSettings | None = None) -> tuple[dict[str, Any], pl.DataFrame]:
    """Across splits (spread of each parameter over its range) and around each pick (plateau score, median)."""
    params = _picked(params)
    if params.height == 0:  # no split had a feasible trial: nothing was chosen, so nothing can move
        return {"param_spread_max": math.nan, "plateau_median": math.nan, "plateau_splits": 0}, \
            pl.DataFrame({"parameter": []}, schema={"parameter": pl.Utf8})
    per_split = [json.loads(p) for p in params.sort("split")["params"]]
    space = {**strategy.space, **risk_space(risk or RiskSettings())}
    st = stats.parameter_stability(per_split, space)
    rows = []
    for name, d in st["params"].items():
        rows.append({"parameter": name,
                     **{k: (json.dumps(v) if isinstance(v, (list, dict)) else v) for k, v in d.items()}})
    table = pl.DataFrame(rows) if rows else pl.DataFrame({"parameter": []})
    spreads = [d.get("range_ratio") for d in st["params"].values() if d.get("range_ratio") is not None]
    scores = []
    if ledger.height:
        for r in params.iter_rows(named=True):
            led = ledger.filter((pl.col("split") == r["split"]) & _feasible(ledger) & pl.col("value").is_finite())
            if led.height < 3:
                continue
            try:
                p = stats.plateau_score([json.loads(x) for x in led["params"]], led["value"].to_numpy(),
                                     json.loads(r["params"]), space)
            except MaestroError:  # a pick outside the recorded space (e.g. a cut window-like parameter)
                continue
            if p.get("score") is not None:
                scores.append(float(p["score"]))
    return {
        "param_spread_max": max(spreads) if spreads else math.nan,
        "plateau_median": float(np.median(scores)) if scores else math.nan,
        "plateau_splits": len(scores),
    }, table


def _surface_axes(strategy: Strategy) -> tuple[str, str] | None:
    numeric = [k for k, v in strategy.space.items() if isinstance(v, (IntParam, FloatParam))]
    return (numeric[0], numeric[1]) if len(numeric) >= 2 else None


def charts(res: OOSResult, params: pl.DataFrame, ledger: pl.DataFrame, bars: pd.DataFrame, strategy: Strategy,
           title: str) -> dict[str, bytes]:
    """Equity/drawdown vs buy-and-hold, candles with the latest test window's trades, the parameter heatmap, and
    the latest split's trial surface."""
    out = {"equity_chart": equity_drawdown_png(res.returns, res.benchmark, title=f"{title}: OOS vs buy-and-hold")}
    params = _picked(params)
    if params.height == 0:
        return out
    last = params.sort("split").row(-1, named=True)
    t0, t1 = pd.Timestamp(last["test_start"], unit="ms"), pd.Timestamp(last["test_end"], unit="ms")
    window = bars.loc[(bars.index >= t0) & (bars.index < t1)]
    trades = res.trades.filter(pl.col("split") == last["split"]).to_pandas() if res.trades.height else None
    out["latest_test_candles"] = candles_with_trades_png(window, trades,
                                                         title=f"{title}: latest test window, OOS trades")
    per_split = pd.DataFrame([{"split": r["split"], **json.loads(r["params"])}
                              for r in params.sort("split").iter_rows(named=True)])
    searched = {k: v for k, v in strategy.space.items() if k in per_split.columns}
    if searched:
        out["param_heatmap"] = param_heatmap_png(
            per_split[["split", *searched]], searched,
            title=f"{title}: chosen parameters per split (colour = place in range)")
    axes = _surface_axes(strategy)
    if axes and ledger.height:
        led = ledger.filter((pl.col("split") == last["split"]) & (pl.col("state") == "COMPLETE"))
        if led.height >= 3:
            ok = led.select(_feasible(led)).to_series().to_list()
            trials = pd.DataFrame([{**json.loads(p), "value": v if f else np.nan}  # infeasible trials: no score
                                   for p, v, f in zip(led["params"], led["value"], ok, strict=True)])
            out["param_surface"] = param_surface_png(
                trials, axes[0], axes[1], json.loads(last["params"]),
                title=f"{title}: split {last['split']} trials ({axes[0]} x {axes[1]})")
    return out


def _sample_gate(qs: dict[str, float], cis: dict[str, float], figures: dict[str, Any], oos_days: int,
                 ev: EvaluationConfig) -> dict[str, str]:
    """Blank the annualized figures (and the DSR) of an OOS span shorter than ``min_oos_days``; the reasons."""
    reasons: dict[str, str] = {}
    if oos_days >= ev.min_oos_days:
        return reasons
    why = f"{oos_days} OOS days < evaluation.min_oos_days {ev.min_oos_days}: too few to annualize"
    for key in ANNUALIZED:
        for k in (key, f"benchmark_{key}"):
            if k in qs:
                qs[k] = math.nan
        reasons[f"oos_{key}"] = why
    for k in ("sharpe_ci_low", "sharpe_ci_high", "sharpe_daily_point"):
        cis[k] = math.nan
        reasons[k] = why
    figures.update(dsr=None, psr=None)
    reasons["dsr"] = why
    return reasons


def _nan_reasons(summary: dict[str, Any], gated: dict[str, str], figures: dict[str, Any]) -> str:
    """One line per NaN figure the leaderboard shows, saying why it is NaN."""
    notes = figures.get("overfitting_note", "")
    out = []
    for key in EXPLAINED:
        v = summary.get(key)
        if v is not None and isinstance(v, (int, float)) and math.isfinite(v):
            continue
        if key in gated:
            why = gated[key]
        elif key == "wfe":
            why = summary.get("wfe_note", "")
        elif key in ("dsr", "pbo"):
            why = next((n for n in notes.split("; ") if key.upper() in n or key in n), notes) or "not computable"
        elif key.startswith("sharpe_ci"):
            why = "too few OOS days to resample"
        elif key == "plateau_median":
            why = "fewer than 3 feasible trials around each pick"
        else:
            why = "undefined for this series (e.g. no variance or no losing day)"
        out.append(f"{key}: {why}")
    return "; ".join(out)


def build_report_card(res: OOSResult, params: pl.DataFrame, ledger: pl.DataFrame, daily: pl.DataFrame | None,
                      bars: pd.DataFrame, strategy: Strategy, title: str, *, with_charts: bool = True,
                      risk: RiskSettings | None = None, evaluation: EvaluationConfig | None = None) -> ReportCard:
    ev = evaluation or EvaluationConfig()
    # the live split's test window is still open: stability, charts and figures use the complete splits only
    done = res.per_split["split"].to_list()
    params = params.filter(pl.col("split").is_in(done))
    if ledger.height:
        ledger = ledger.filter(pl.col("split").is_in(done))
    if daily is not None and daily.height:
        daily = daily.filter(pl.col("split").is_in(done))
    qs = quantstats_table(res.returns, res.benchmark)
    oos_daily = daily_returns(res.returns)
    figures = overfitting_figures(oos_daily, ledger, daily)
    cis = confidence_intervals(oos_daily, res.trades)
    gated = _sample_gate(qs, cis, figures, int(res.summary["oos_days"]), ev)
    stab, stab_table = stability_figures(params, ledger, strategy, risk)
    evidence = Evidence(int(res.summary["oos_days"]), int(res.summary["oos_trades"]),
                        float(res.summary["oos_total_return"]), _f(qs["sharpe"]), res.summary["wfe"],
                        figures["pbo"], figures["dsr"], bool(res.summary["ruined"]), res.summary["ruin_time"])
    word, reason = verdict(evidence, ev)
    roll = rolling_metrics(res.returns, 30).reset_index()
    roll = pl.from_pandas(roll.rename(columns={roll.columns[0]: "day"}))
    summary = {
        "verdict": word, "verdict_reason": reason, "thresholds": thresholds(ev),
        **{f"oos_{k}": _f(v) for k, v in qs.items() if not k.startswith("benchmark_")},
        **{k: _f(v) for k, v in qs.items() if k.startswith("benchmark_")},
        **{k: (_f(v) if isinstance(v, (int, float, np.floating)) or v is None else v) for k, v in figures.items()},
        **{k: _f(v) for k, v in cis.items()},
        "bootstrap": json.dumps(BOOTSTRAP),
        **stab,
    }
    summary["dsr_n_trials"] = int(figures["dsr_n_trials"])
    summary["pbo_splits"] = int(figures["pbo_splits"])
    summary["plateau_splits"] = int(stab["plateau_splits"])
    summary["nan_reasons"] = _nan_reasons({**summary, "wfe": res.summary["wfe"],
                                           "wfe_note": res.summary["wfe_note"]}, gated, figures)
    return ReportCard(summary, roll, stab_table,
                      charts(res, params, ledger, bars, strategy, title) if with_charts else {})
