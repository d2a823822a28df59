"""Markdown for Dagster's metadata panel: tables and inlined PNG charts."""

from __future__ import annotations

import base64
import math
from typing import Any

import polars as pl

__all__ = ["REPORT_CHARTS", "key_figures", "md_table", "png_markdown", "quantstats_rows", "report_markdown"]


def png_markdown(png: bytes, alt: str) -> str:
    """Markdown image with the PNG inlined as a base64 data URI (for Dagster ``MetadataValue.md``)."""
    safe_alt = alt.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]").replace("\n", " ")
    return f"![{safe_alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"


def md_table(df: pl.DataFrame, float_fmt: str = "{:.4g}", max_rows: int = 50) -> str:
    """A polars frame as a markdown table."""
    cols = df.columns
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.head(max_rows).iter_rows():
        cells = [float_fmt.format(v) if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    if df.height > max_rows:
        lines.append(f"\n… {df.height - max_rows} more rows in the lake")
    return "\n".join(lines)


def _num(summary: dict[str, Any], key: str) -> float:
    v = summary.get(key)
    return float(v) if isinstance(v, (int, float)) and v is not None and math.isfinite(v) else float("nan")


def key_figures(summary: dict[str, Any]) -> pl.DataFrame:
    """The report's key figures as text, one row each (what a reader looks at first)."""
    n = lambda k: _num(summary, k)  # noqa: E731
    wfe = f"{n('wfe'):.2f}" + ("" if summary.get("wfe") is not None else f" ({summary.get('wfe_note', '')})")
    return pl.DataFrame({
        "figure": ["OOS Sharpe", "OOS Sharpe 95% CI", "Deflated Sharpe Ratio", "PBO (CSCV)", "walk-forward efficiency",
                   "OOS CAGR", "OOS max drawdown", "max drawdown 95% CI", "OOS trades", "trials searched",
                   "parameter plateau (median)", "buy-and-hold return"],
        "value": [f"{n('oos_sharpe'):.2f}", f"{n('sharpe_ci_low'):.2f} .. {n('sharpe_ci_high'):.2f}",
                  f"{n('dsr'):.3f} (SR0 {n('sr0'):.4f}/day)",
                  f"{n('pbo'):.2f} over {summary.get('pbo_splits', 0)} splits",
                  wfe, f"{n('oos_cagr'):.1%}", f"{n('oos_max_drawdown'):.1%}",
                  f"{n('max_drawdown_ci_low'):.1%} .. {n('max_drawdown_ci_high'):.1%}",
                  str(summary.get("oos_trades")), str(summary.get("dsr_n_trials")), f"{n('plateau_median'):.2f}",
                  f"{n('buy_hold_total_return'):.1%}"],
    })


def quantstats_rows(summary: dict[str, Any]) -> pl.DataFrame:
    """The strategy's quantstats figures of the report row (``oos_*`` floats), one row each."""
    keys = [k for k in summary if k.startswith("oos_") and isinstance(summary[k], float)]
    return pl.DataFrame({"metric": [k.removeprefix("oos_") for k in keys], "strategy": [summary[k] for k in keys]})


#: The report page's charts, in order: (key in the report card's charts, alt text).
REPORT_CHARTS = (
    ("equity_chart", "OOS equity and drawdown vs buy-and-hold"),
    ("latest_test_candles", "Latest test window: candles with OOS trades"),
    ("param_heatmap", "Chosen parameters per split"),
    ("param_surface", "Latest split's trials over two parameters"),
)


def report_markdown(summary: dict[str, Any], charts: dict[str, bytes]) -> str:
    """The report page: verdict and reason, thresholds, key figures, the live parameters and the charts."""
    images = "\n\n".join(png_markdown(charts[k], alt) for k, alt in REPORT_CHARTS if charts.get(k))
    live = ""
    if summary.get("live_params"):
        live = (f"**Live split** (train {summary['live_train_from']} .. {summary['live_train_to']}, trading until "
                f"{summary['live_trading_until']}): `{summary['live_params']}`\n\n")
    return (f"## Verdict: {summary['verdict']}\n\n{summary['verdict_reason']}\n\n"
            f"*Thresholds: {summary['thresholds']}.*\n\n"
            f"{md_table(key_figures(summary))}\n\n" + live + images)
