"""The bars research reads for one instrument: every validated month, contiguous, with its derivatives history.

``research.span`` in ``maestro.yaml`` says which months: ``all`` (default) is every validated month, and a
blocked or missing month holds research back; ``longest_clean`` is the longest run of consecutive validated,
unblocked months, so a blocked month no longer hides the clean history before (or after) it. Either way the
span used is stated (:class:`ResearchSpan`), for the splits' metadata and the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from ..durations import month_bounds, months_between
from ..errors import MaestroError
from ..instruments import Instrument
from ..lake import Lake
from ..market import DERIVATIVE_KINDS, attach_derivatives
from ..quality import blocked_months

__all__ = ["SPANS", "ResearchSpan", "research_bars", "research_span"]

SPANS = ("all", "longest_clean")


@dataclass(frozen=True)
class ResearchSpan:
    """The months research reads (``first_month`` .. ``last_month``) and the months left out, with why."""

    rule: str                                   # all | longest_clean
    first_month: str
    last_month: str
    excluded: dict[str, str] = field(default_factory=dict)

    @property
    def bounds_ms(self) -> tuple[int, int]:
        return month_bounds(self.first_month)[0], month_bounds(self.last_month)[1]

    def describe(self) -> str:
        out = f"{self.rule}: {self.first_month} .. {self.last_month}"
        if self.excluded:
            shown = list(self.excluded.items())[:6]
            out += "; left out " + ", ".join(f"{m} ({why})" for m, why in shown)
            out += f" and {len(self.excluded) - 6} more" if len(self.excluded) > 6 else ""
        return out


def research_span(lake: Lake, inst: Instrument, rule: str = "all") -> ResearchSpan:
    """Which months research reads under ``rule`` (see the module docstring)."""
    if rule not in SPANS:
        raise MaestroError(f"research.span {rule!r} is not one of {', '.join(SPANS)}")
    validated = lake.months("validated_bars", inst)
    if not validated:
        raise MaestroError(f"{inst.key}: no validated bars yet; materialize raw_candles and validated_bars first")
    if rule == "all":
        return ResearchSpan(rule, validated[0], validated[-1])
    blocked = blocked_months(lake, inst)
    clean = set(validated) - set(blocked)
    every = months_between(min(validated + list(blocked)), max(validated + list(blocked)))
    runs: list[list[str]] = []
    for m in every:
        if m in clean:
            if runs and runs[-1] and runs[-1][-1] == _previous(m):
                runs[-1].append(m)
            else:
                runs.append([m])
    if not runs:
        raise MaestroError(f"{inst.key}: every validated month is blocked ({', '.join(blocked)}); research.span: "
                           "longest_clean has no clean month to use")
    best = max(runs, key=lambda r: (len(r), r[-1]))      # the longest; on a tie the most recent
    excluded = {m: ("blocked: " + ", ".join(blocked[m]) if m in blocked
                    else "clean, but outside the longest clean run" if m in clean else "not validated")
                for m in every if m not in best}
    return ResearchSpan(rule, best[0], best[-1], excluded)


def _previous(month: str) -> str:
    y, m = map(int, month.split("-"))
    return f"{y - (m == 1)}-{12 if m == 1 else m - 1:02d}"


def research_bars(lake: Lake, inst: Instrument, with_derivatives: bool = True, span: str = "all") -> pl.DataFrame:
    """The validated bars of ``inst`` in its research span (``all``: refusing to bridge a missing month), with
    funding rates and open interest attached causally when the lake holds them (perpetuals)."""
    if span == "all":
        bars = lake.read_contiguous_bars(inst)
    else:
        lo, hi = research_span(lake, inst, span).bounds_ms
        bars = lake.read_bars(inst).filter((pl.col("timestamp") >= lo) & (pl.col("timestamp") < hi))
    if not with_derivatives:
        return bars
    extra = {kind: lake.read_all(kind, inst.hive) for kind in DERIVATIVE_KINDS}
    return attach_derivatives(bars, inst.timeframe, extra["funding_rates"], extra["open_interest"])
