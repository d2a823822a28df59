"""Presentation only: quantstats tables, the HTML tearsheet, charts (PNG) and markdown for the Dagster UI.

Nothing here decides anything about a strategy; it draws and tabulates what :mod:`maestro_pipeline.evaluation`
computed. ``quantstats`` (figures on daily returns, 365-day year), ``tearsheet``, ``charts`` (equity, candles),
``param_charts`` (parameter heatmap, trial surface), ``markdown``.
"""

from .charts import candles_with_trades_png, equity_drawdown_png, png_bytes
from .markdown import REPORT_CHARTS, key_figures, md_table, png_markdown, quantstats_rows, report_markdown
from .param_charts import param_heatmap_png, param_surface_png
from .quantstats import (
    BENCHMARK_KEYS,
    METRIC_KEYS,
    QUANTSTATS_CONVENTIONS,
    TABLE_KEYS,
    TABLE_SPEC,
    daily_returns,
    quantstats_metrics,
    quantstats_table,
    rolling_metrics,
)
from .tearsheet import TEARSHEET_FILE, equity_series, render_tearsheet, tearsheet_title, write_tearsheet

__all__ = [
    "BENCHMARK_KEYS", "METRIC_KEYS", "QUANTSTATS_CONVENTIONS", "REPORT_CHARTS", "TABLE_KEYS", "TABLE_SPEC",
    "TEARSHEET_FILE", "candles_with_trades_png", "daily_returns", "equity_drawdown_png", "equity_series",
    "key_figures", "md_table", "param_heatmap_png", "param_surface_png", "png_bytes", "png_markdown",
    "quantstats_metrics", "quantstats_rows", "quantstats_table", "render_tearsheet", "report_markdown",
    "rolling_metrics", "tearsheet_title", "write_tearsheet",
]
