"""The one bar schema every source produces and every consumer reads.

``timestamp`` is the bar's open time in Unix milliseconds (UTC), as exchanges publish it; ``datetime`` is the
same instant as a UTC timestamp for humans and SQL; ``source`` names where the row came from (an exchange id,
``synthetic`` or ``file:<name>``) because sources are never stitched together.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import polars as pl

BAR_COLUMNS: dict[str, pl.DataType] = {
    "timestamp": pl.Int64(),
    "datetime": pl.Datetime("ms", "UTC"),
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "volume": pl.Float64(),
    "source": pl.String(),
}
OHLCV = ("open", "high", "low", "close", "volume")
#: Optional per-bar columns for derivatives strategies, carried through when research attached them.
DERIVATIVE_COLUMNS = ("funding_rate", "open_interest", "mark_price", "index_price")


def empty_bars() -> pl.DataFrame:
    return pl.DataFrame(schema=BAR_COLUMNS)


def conform(df: pl.DataFrame, source: str | None = None) -> pl.DataFrame:
    """Cast to the bar schema (adding ``datetime`` from ``timestamp`` and ``source`` when missing)."""
    if "datetime" not in df.columns:
        df = df.with_columns(pl.col("timestamp").cast(pl.Int64).cast(pl.Datetime("ms")).dt.replace_time_zone("UTC")
                             .alias("datetime"))
    if "source" not in df.columns:
        if source is None:
            raise ValueError("bars need a source")
        df = df.with_columns(pl.lit(source).alias("source"))
    return df.select([pl.col(c).cast(t) for c, t in BAR_COLUMNS.items()])


def to_pandas_bars(df: pl.DataFrame) -> pd.DataFrame:
    """OHLCV as a pandas frame on a *naive* UTC DatetimeIndex.

    vectorbt is 3-35x slower on a timezone-aware index (DESIGN §8), so research code gets naive UTC.
    """
    idx = pd.DatetimeIndex(pd.to_datetime(df["timestamp"].to_numpy(), unit="ms"), name="datetime")
    data = {c: np.asarray(df[c].to_numpy(), dtype=np.float64) for c in OHLCV + DERIVATIVE_COLUMNS if c in df.columns}
    return pd.DataFrame(data, index=idx)


def bars_hash(bars: pl.DataFrame) -> str:
    """Content hash of bars (timestamps, OHLCV and any attached derivatives columns): research's data version."""
    h = hashlib.sha256()
    for c in ("timestamp", "open", "high", "low", "close", "volume", *DERIVATIVE_COLUMNS):
        if c in bars.columns:
            h.update(c.encode())
            h.update(np.ascontiguousarray(bars[c].to_numpy()).tobytes())
    return h.hexdigest()[:16]
