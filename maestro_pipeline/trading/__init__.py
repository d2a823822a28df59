"""From research to trading: the live split's pick as a record a bot can load, and its live result watched.

``record`` (the live parameters record, built from the walk-forward's tables), ``store`` (its stable lake path,
written atomically with history), ``freqtrade`` (freqtrade's strategy parameter file), ``band`` (the seeded
stationary-bootstrap band of the stitched OOS returns over a horizon), ``drift`` (the live parameters traded since
their window began, judged against that band), ``reoptimize`` (the search again, on a train window ending
at a drift alarm). Documented field by field in ``docs/live.md``.
"""

from .band import Band, horizon_band, path_indices
from .drift import ALARMS, DRIFT_STATUSES, live_performance
from .freqtrade import FT_PARAMS_VERSION, freqtrade_class, freqtrade_file, stop_fraction
from .record import (
    ENGINE_CODE,
    SCHEMA,
    SCHEMA_VERSION,
    content_version,
    live_pick,
    live_record,
    pick_risk,
    spec_from_record,
    stop_dict,
)
from .reoptimize import drift_split, reoptimized_pick
from .store import HISTORY_DIR, LIVE_ASSET, LIVE_FILE, Stored, history, live_row, read_live, write_live

__all__ = [
    "ALARMS", "DRIFT_STATUSES", "ENGINE_CODE", "FT_PARAMS_VERSION", "HISTORY_DIR", "LIVE_ASSET", "LIVE_FILE", "SCHEMA",
    "SCHEMA_VERSION", "Band", "Stored", "content_version", "freqtrade_class", "freqtrade_file", "history",
    "horizon_band", "live_performance", "live_pick", "live_record", "live_row", "path_indices", "pick_risk",
    "drift_split", "read_live", "reoptimized_pick", "spec_from_record", "stop_dict", "stop_fraction", "write_live",
]
