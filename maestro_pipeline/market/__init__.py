"""Market data sources: each returns bars in the one schema of :mod:`maestro_pipeline.schema`.

``SyntheticMarket`` (embedded, offline), ``CcxtSource`` (any ccxt exchange id, spot and perpetuals, plus
funding and open interest) and ``FileSource`` (CSV, Parquet, feather, freqtrade JSON). ``CcxtSource`` imports
ccxt lazily, so importing this package stays cheap.
"""

from .ccxt_source import CcxtSource, RetryPolicy
from .files import FileSource, read_bars_file
from .synthetic import SyntheticMarket

__all__ = ["CcxtSource", "FileSource", "RetryPolicy", "SyntheticMarket", "read_bars_file"]
