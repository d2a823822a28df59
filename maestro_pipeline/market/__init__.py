"""Market data: sources behind one :class:`MarketSource` protocol, monthly ingestion, perpetual-futures history.

``SyntheticMarket`` (embedded, offline), ``CcxtSource`` (any ccxt exchange id, spot and perpetuals, plus
funding and open interest) and ``FileSource`` (CSV, Parquet, feather, freqtrade JSON) all produce bars in the
one schema of :mod:`maestro_pipeline.schema`. ``CcxtSource`` imports ccxt lazily (~0.5 s), so importing this
package stays cheap.
"""

from .ccxt_client import FUNDING_COLUMNS, OPEN_INTEREST_COLUMNS, RetryPolicy, api_credentials, clear_market_cache
from .ccxt_source import CcxtSource
from .derivatives import KINDS as DERIVATIVE_KINDS
from .derivatives import (
    DerivativeMonth,
    attach_derivatives,
    ingest_derivative_month,
    is_perpetual,
    open_interest_timeframe,
)
from .files import FileImport, FileSource, clear_file_cache, describe_spacing, file_source_name, read_bars_file
from .ingest import MonthIngest, ingest_month, ingest_months, instrument_months, resume_from, stitch
from .source import MarketSource
from .sources import make_source
from .synthetic import ORIGIN_MS, REGIMES, SyntheticMarket

__all__ = [
    "DERIVATIVE_KINDS", "FUNDING_COLUMNS", "OPEN_INTEREST_COLUMNS", "ORIGIN_MS", "REGIMES", "CcxtSource",
    "DerivativeMonth", "FileImport", "FileSource", "MarketSource", "MonthIngest", "RetryPolicy", "SyntheticMarket",
    "api_credentials", "attach_derivatives", "clear_file_cache", "clear_market_cache", "describe_spacing",
    "file_source_name", "ingest_derivative_month", "ingest_month", "ingest_months", "instrument_months",
    "is_perpetual", "make_source", "open_interest_timeframe", "read_bars_file", "resume_from", "stitch",
]
