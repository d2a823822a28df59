"""How the pipeline runs: ``costs:``, ``synthetic:``, ``concurrency:`` and ``schedule:``."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import Field, field_validator, model_validator

from ._base import Section, closest


class CostConfig(Section):
    """Per fill: ``fee`` of notional, ``slippage`` of price; ``maintenance_margin``: the share of a short's notional
    at which it is liquidated (0.5 % by default; at least the fee, which the liquidating fill pays)."""

    fee: float = Field(0.001, ge=0, lt=0.1)
    slippage: float = Field(0.0005, ge=0, lt=0.1)
    maintenance_margin: float = Field(0.005, ge=0, lt=0.5)

    @model_validator(mode="after")
    def _margin_covers_fee(self) -> CostConfig:
        if self.maintenance_margin < self.fee:
            raise ValueError(f"maintenance_margin {self.maintenance_margin} is below the fee {self.fee}: a liquidation "
                             "pays its fee out of the remaining margin; use at least the fee")
        return self


class CostsConfig(Section):
    default: CostConfig = CostConfig()
    exchanges: dict[str, CostConfig] = {}


class SyntheticConfig(Section):
    seed: int = Field(7, ge=0)




class ConcurrencyConfig(Section):
    """Dagster's limits, written into the instance's dagster.yaml by ``maestro demo`` / ``make ui``.

    ``max_concurrent_runs`` runs at once (backfills, sensor runs); ``research_pool`` research steps at once across
    all runs (each searches its splits with ``search.workers`` processes, so keep pool x workers near the cores).
    """

    max_concurrent_runs: int = Field(2, ge=1, le=1000)
    research_pool: int = Field(1, ge=1, le=1000)


class ScheduleConfig(Section):
    """The nightly refresh schedule: a five-field cron string (minute hour day-of-month month day-of-week, or
    ``@daily``/``@hourly``/...) in an IANA ``timezone`` (``Europe/Amsterdam``). Both are checked here, so a typo
    fails ``maestro check-config`` in one line instead of the Dagster definitions at run time."""

    nightly_cron: str = "30 0 * * *"
    timezone: str = "UTC"

    @field_validator("nightly_cron")
    @classmethod
    def _cron(cls, v: str) -> str:
        problem = cron_problem(v)
        if problem:
            raise ValueError(f"{v!r} is not a cron schedule Dagster runs: {problem} "
                             "(write five fields: minute hour day-of-month month day-of-week, e.g. '30 0 * * *')")
        return v

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {v!r}{closest(v, _zone_names())}; use an IANA name such as UTC or "
                             "Europe/Amsterdam") from None
        return v


def _zone_names() -> list[str]:
    return sorted(available_timezones())


_CRON_ALIASES = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
_MONTHS = {m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())}
_DAYS = {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())}
#: (name, lowest, highest, names) of the five fields; day-of-week 7 is Sunday as in cron.
_CRON_FIELDS = (("minute", 0, 59, {}), ("hour", 0, 23, {}), ("day of month", 1, 31, {}),
                ("month", 1, 12, _MONTHS), ("day of week", 0, 7, _DAYS))
_CRON_ITEM = re.compile(r"^(\*|[0-9a-z]+(?:-[0-9a-z]+)?)(?:/([0-9]+))?$")


def cron_problem(expr: str) -> str:
    """What is wrong with a cron string, or "" when Dagster's scheduler accepts it: five fields of numbers, ranges
    (wrapping ones too, ``22-2``), lists and steps, month and weekday names, ``?`` and ``L`` (last day) in the day
    fields, ``5#3`` (third Friday) in day-of-week, or an ``@daily``-style alias; no seconds field."""
    text = expr.strip().lower()
    if text in _CRON_ALIASES:
        return ""
    fields = text.split()
    if len(fields) != 5:
        return f"{len(fields)} field(s), not 5"
    values: list[set[int]] = []
    for i, (part, (name, lo, hi, names)) in enumerate(zip(fields, _CRON_FIELDS, strict=True)):
        seen: set[int] = set()
        for item in part.split(","):
            if i in (2, 4) and item == "?":
                item = "*"
            if i == 2 and item == "l":
                seen.add(-1)   # "the last day", whatever the month's length
                continue
            if i == 4 and re.fullmatch(r"[0-7]#[1-5]", item):
                seen.add(int(item[0]))
                continue
            m = _CRON_ITEM.match(item)
            if not m:
                return f"the {name} field {part!r} is not a number, range, list or step"
            step = int(m.group(2) or 1)
            if step == 0:
                return f"the {name} field {part!r} has a step of 0"
            if m.group(1) == "*":
                a, b = lo, hi
            else:
                ends = []
                for tok in m.group(1).split("-"):
                    n = names.get(tok, int(tok) if tok.isdigit() else None)
                    if n is None:
                        return f"the {name} field {part!r}: {tok!r} is not a number" + (
                            f" or a name ({', '.join(names)})" if names else "")
                    if not lo <= n <= hi:
                        return f"the {name} field {part!r}: {n} is outside {lo}-{hi}"
                    ends.append(n)
                a, b = ends[0], ends[-1]
                if m.group(2) is not None and len(ends) == 1:
                    b = hi
            span = list(range(a, b + 1)) if a <= b else list(range(a, hi + 1)) + list(range(lo, b + 1))
            seen.update(span[::step])
        values.append(seen)
    if values[3] == {2} and values[2] <= {30, 31}:
        return "February has no 30th or 31st"
    return ""
