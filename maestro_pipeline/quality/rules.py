"""The bar contract's catalog: rules, the Dagster checks that report them, severities and thresholds.

No great-expectations import here: ``maestro.yaml`` is validated against this catalog at load time, and the
Dagster definitions build their checks from it, neither of which should pay GE's ~8 s import.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..durations import duration_ms
from ..timeframes import timeframe_ms

__all__ = [
    "CHECKS", "CONTINUITY_RULES", "DEFAULT_THRESHOLDS", "DROP", "ERROR", "ROW_RULES", "RULES", "WARN", "Policy", "Rule",
    "blocking_checks",
]

@dataclass(frozen=True)
class Rule:
    name: str
    check: str                   # the Dagster asset check that reports it
    description: str
    what: str                    # "N row(s) <what>" in messages


ERROR, DROP, WARN = "error", "drop", "warn"

#: Dagster checks on ``validated_bars``: (default severity, allowed severities, description). A check is blocking
#: or not for every partition, so severities are set per check (each check's metadata has counts per rule).
CHECKS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "bar_structure": (ERROR, (ERROR,), "Schema, no nulls/NaN/inf, time order, unique timestamps on the timeframe "
                      "grid and inside the month, consistent OHLC, prices > 0, volume >= 0, plausible magnitudes, no "
                      "one-bar jump beyond max_jump. Always blocking."),
    "copied_rows": (DROP, (ERROR, DROP, WARN), "No bar repeats the exact OHLCV of an earlier bar (copied data)."),
    "suspicious_bars": (WARN, (ERROR, DROP, WARN), "Price spikes (robust z of log returns), long flat (O=H=L=C) runs, "
                        "zero-volume runs."),
    "gaps": (WARN, (ERROR, WARN), "Missing bars against the timeframe grid, as ranges (never filled in)."),
    "gap_over_max": (ERROR, (ERROR, WARN), "No gap longer than max_gap."),
}

RULES: dict[str, Rule] = {r.name: r for r in (
    Rule("schema", "bar_structure", "Every bar column is present with its type (timestamp Int64, datetime UTC ms, "
         "OHLCV Float64, source String).", "with a wrong schema"),
    Rule("no_nulls", "bar_structure", "No null, NaN or infinite value in any bar column (a file without a volume "
         "column has null volume throughout: allowed, and the volume rules are not evaluated).",
         "with null, NaN or infinite values"),
    Rule("sorted", "bar_structure", "Timestamps never go backwards (the file is in time order).", "out of time order"),
    Rule("unique_timestamps", "bar_structure", "No two rows share a timestamp.", "with a duplicated timestamp"),
    Rule("aligned_to_grid", "bar_structure", "timestamp mod timeframe == 0 (bars open on the timeframe grid).",
         "not aligned to the timeframe grid"),
    Rule("in_partition", "bar_structure", "Every bar opens inside the partition's month.",
         "outside the partition's time range"),
    Rule("ohlc_consistent", "bar_structure", "high >= max(open, close), low <= min(open, close) (so high >= low).",
         "with high below open/close or low above them"),
    Rule("positive_prices", "bar_structure", "open, high, low, close > 0.", "with a price <= 0"),
    Rule("volume_non_negative", "bar_structure", "volume >= 0.", "with negative volume"),
    Rule("plausible_values", "bar_structure", "Every price <= max_price and volume <= max_volume (1e300 is a "
         "corrupt cell, not a market).", "with a price or volume beyond the plausibility bound"),
    Rule("price_jumps", "bar_structure", "No bar's high, low or close moves more than max_jump times (or below "
         "1/max_jump of) the previous close (its own open for the first bar): a one-bar 1000x spike or a x100 unit "
         "switch blocks the month.", "moving more than max_jump times the previous close"),
    Rule("copied_rows", "copied_rows", "No bar repeats the exact OHLCV of an earlier bar (a block copied from other "
         "hours); flat bars are exempt (they repeat naturally).", "copying the OHLCV of an earlier bar"),
    Rule("price_spikes", "suspicious_bars", "|robust z-score of the close's log return| <= spike_z (median/MAD of "
         "the month); wicks are scored the same way (log(high / max(open, close)) and log(min(open, close) / low) "
         "over the same MAD).", "with a price spike"),
    Rule("flat_runs", "suspicious_bars", "No run of flat bars (open = high = low = close) longer than max_flat_run.",
         "in a flat (O=H=L=C) run longer than max_flat_run"),
    Rule("zero_volume_runs", "suspicious_bars", "No run of zero-volume bars longer than max_zero_volume_run (0: any "
         "zero-volume bar).", "in a zero-volume run longer than max_zero_volume_run"),
    Rule("gaps", "gaps", "No bar missing against the timeframe grid (reported as ranges; never filled in).", "gap(s)"),
    Rule("gap_over_max", "gap_over_max", "No gap longer than max_gap.", "gap(s) longer than max_gap"),
)}

#: The rules evaluated on rows of bars (the rest are schema and continuity).
ROW_RULES = tuple(r for r in RULES if r not in ("schema", "gaps", "gap_over_max"))
CONTINUITY_RULES = ("gaps", "gap_over_max")

#: Threshold defaults for 24/7 crypto markets (overridable per exchange in maestro.yaml). The plausibility bounds:
#: 1e12 is above any price of any asset in any currency (BTC in Indonesian rupiah or Vietnamese dong is ~1e9-3e9)
#: and 1e18 above any volume in base units (a day of SHIB or PEPE is ~1e13-1e14); max_jump 10: no listed market
#: moves 10x (or to a tenth) in one bar outside a collapse, while a bad tick or a unit switch does.
DEFAULT_THRESHOLDS: dict[str, Any] = {"max_gap": "6h", "spike_z": 50.0, "max_flat_run": "6h", "max_zero_volume_run": 0,
                                      "max_price": 1e12, "max_volume": 1e18, "max_jump": 10.0}


@dataclass(frozen=True)
class Policy:
    """Severities and thresholds for one instrument (lengths: a bar count, a duration such as ``6h``, or 0)."""

    severity: dict[str, str]     # check name -> error | drop | warn
    max_gap: str | int = DEFAULT_THRESHOLDS["max_gap"]
    spike_z: float = DEFAULT_THRESHOLDS["spike_z"]
    max_flat_run: str | int = DEFAULT_THRESHOLDS["max_flat_run"]
    max_zero_volume_run: str | int = DEFAULT_THRESHOLDS["max_zero_volume_run"]
    max_price: float = DEFAULT_THRESHOLDS["max_price"]
    max_volume: float = DEFAULT_THRESHOLDS["max_volume"]
    max_jump: float = DEFAULT_THRESHOLDS["max_jump"]
    calendar: str = "24/7"       # 24/7 | weekdays (weekend slots are not missing bars)

    @classmethod
    def default(cls, **over: Any) -> Policy:
        sev = {n: c[0] for n, c in CHECKS.items()} | over.pop("severity", {})
        return cls(severity=sev, **over)

    def params(self, timeframe: str) -> dict[str, float]:
        tf = timeframe_ms(timeframe)
        return {
            "max_gap_ms": duration_ms(self.max_gap, tf, "max_gap"),
            "spike_z": float(self.spike_z),
            "max_flat_run_ms": duration_ms(self.max_flat_run, tf, "max_flat_run"),
            "max_zero_volume_run_ms": duration_ms(self.max_zero_volume_run, tf, "max_zero_volume_run"),
            "max_price": float(self.max_price),
            "max_volume": float(self.max_volume),
            "max_jump": float(self.max_jump),
        }

    def max_gap_bars(self, timeframe: str) -> int:
        """The longest tolerated gap as a number of missing bars."""
        return duration_ms(self.max_gap, timeframe_ms(timeframe), "max_gap") // timeframe_ms(timeframe)

def blocking_checks(severity: dict[str, str]) -> list[str]:
    """Names of the checks that block (severity ``error``) under these severities."""
    return [c for c in CHECKS if severity.get(c, CHECKS[c][0]) == ERROR]

