"""The quantstats HTML tearsheet of the OOS series (daily, 365 periods per year), written atomically.

The tearsheet never touches the network (benchmarks are passed as return series, never as tickers). It is a
view of the lake's ``oos_equity`` table, so it is rendered when someone opens it (``render_tearsheet``, called by
``maestro serve``), not by every research run: quantstats draws ~15 charts (3-4 s) that most partitions of a
catalog never show anyone.
"""

from __future__ import annotations

import contextlib
import html as _html
import os
import tempfile
from pathlib import Path

import pandas as pd
import polars as pl

from ..errors import DataError, MaestroError
from ..lake import Lake
from ..timeframes import YEAR_DAYS
from .quantstats import daily_pair, quantstats, quantstats_rc, quiet

__all__ = ["TEARSHEET_FILE", "equity_series", "render_tearsheet", "tearsheet_title", "write_tearsheet"]

#: The tearsheet's file name in each ``oos_reports`` partition folder.
TEARSHEET_FILE = "tearsheet.html"


def _quantstats_html(qs, daily: pd.Series, bench: pd.Series | None, out: Path, title: str) -> None:
    import matplotlib

    with quiet(), matplotlib.rc_context(rc=quantstats_rc()):
        qs.reports.html(
            daily,
            benchmark=bench,
            rf=0.0,
            title=_html.escape(title),
            output=str(out),
            compounded=True,
            periods_per_year=YEAR_DAYS,
            match_dates=False,
            figfmt="svg",
            strategy_title="Strategy (OOS)",
            benchmark_title="Buy and hold" if bench is not None else None,
            parameters={"Returns": "daily (UTC), compounded from bars"},
        )


def _flat_page(title: str, daily: pd.Series) -> str:
    """The page written instead of a tearsheet when the OOS series never moved (no split traded)."""
    span = (f"{daily.index[0]:%Y-%m-%d} to {daily.index[-1]:%Y-%m-%d}" if len(daily) else "an empty period")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{_html.escape(title)}</title></head><body>"
            f"<h1>{_html.escape(title)}</h1><p>No tearsheet: the out-of-sample equity never moved over {span} "
            f"({len(daily)} days, every daily return 0): either no split's search found a parameter set with "
            "enough trades (<code>search.min_trades</code>) or the chosen parameters never traded in the test "
            "windows; the report's per-split notes say which.</p></body></html>")


def write_tearsheet(
    bar_returns: pd.Series,
    benchmark_bar_returns: pd.Series | None,
    path: str | Path,
    title: str,
) -> Path:
    """Write the quantstats HTML tearsheet of the OOS series (daily, 365 periods/year) atomically to ``path``.

    The report is rendered into a temporary file next to ``path`` and moved onto it with ``os.replace``;
    if anything fails, the temporary file is removed and an existing ``path`` is left untouched.
    The full OOS period is kept (``match_dates=False``: quantstats would otherwise cut the leading flat
    days). Returns the absolute path written.
    """
    daily, bench = daily_pair(bar_returns, benchmark_bar_returns)
    if bench is not None:
        bench.name = "Buy and hold"
    daily.name = "Strategy (OOS)"

    target = Path(path).expanduser().resolve()
    if not target.parent.is_dir():
        raise MaestroError(f"cannot write tearsheet {target}: directory {target.parent} does not exist")
    qs = quantstats()

    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        if not (daily != 0).any():  # quantstats cannot regress or chart a series that never moves
            tmp.write_text(_flat_page(title, daily), encoding="utf-8")
        else:
            _quantstats_html(qs, daily, bench, tmp, title)
        size = tmp.stat().st_size
        if size == 0:
            raise MaestroError(f"quantstats wrote an empty tearsheet for {target}")
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        mode = (target.stat().st_mode & 0o777) if target.exists() else 0o644
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    finally:
        # quantstats closes its figures, but never leave any behind in a long-running process.
        import matplotlib.pyplot as plt

        plt.close("all")
    return target


# --------------------------------------------------------------------------------------------------
# chart
# --------------------------------------------------------------------------------------------------


def equity_series(equity: pl.DataFrame) -> tuple[pd.Series, pd.Series]:
    """The stitched OOS bar returns and the buy-and-hold bar returns of an ``oos_equity`` table, on the naive UTC
    index the OOS run gives them (the tearsheet's input, exactly as the report computed it)."""
    idx = pd.DatetimeIndex(pd.to_datetime(equity["timestamp"].to_numpy(), unit="ms"), name="datetime")
    return (pd.Series(equity["return"].to_numpy(), index=idx, name="return"),
            pd.Series(equity["benchmark_return"].to_numpy(), index=idx, name="benchmark_return"))


def tearsheet_title(instrument: str, strategy: str) -> str:
    return f"{instrument} · {strategy} · walk-forward OOS"


def render_tearsheet(lake: Lake, partition: dict[str, str], *, force: bool = False) -> Path:
    """The tearsheet of one ``oos_reports`` partition, rendered from its ``oos_equity`` table when it is missing or
    older than that table (a newer research run replaced the equity), else the file already there."""
    target = lake.path("oos_reports", partition, TEARSHEET_FILE)
    source = lake.path("oos_equity", partition)
    if not source.exists():
        raise DataError(f"no OOS equity for {partition}: materialize oos_reports for this instrument x strategy "
                        "first (the tearsheet is drawn from its oos_equity table)")
    if not force and target.exists() and target.stat().st_mtime_ns >= source.stat().st_mtime_ns:
        return target
    report = lake.read_file("oos_reports", partition).row(0, named=True)
    returns, benchmark = equity_series(pl.read_parquet(source))
    return write_tearsheet(returns, benchmark, target, tearsheet_title(report["instrument"], report["strategy"]))
