"""Which months of an instrument the contract blocked, as recorded in the lake by the last validation.

A blocked month's rows sit in ``quarantine/asset=validated_bars/…`` and that file's lineage carries the contract's
summary (status and failed rules); a month that later validates replaces or removes it. Reading the lake, rather
than an orchestrator's check records, keeps the rule in the core: research, sensors and the CLI agree on it.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..instruments import Instrument
from ..lake import Lake
from .rules import ERROR, RULES

__all__ = ["QUARANTINE", "blocked_months", "quarantine_partition"]

#: The lake table of rejected rows (with ``rule``, ``reason`` and ``action`` columns).
QUARANTINE = "quarantine"


def quarantine_partition(inst: Instrument, month: str, asset: str = "validated_bars") -> dict[str, str]:
    return {"asset": asset, **Lake.month_partition(inst, month)}


def blocked_months(lake: Lake, inst: Instrument, months: Iterable[str] | None = None) -> dict[str, list[str]]:
    """Month -> names of the blocking checks whose rules failed there in the latest validation (only blocked
    months appear). ``months`` limits the months looked at (default: every quarantined month)."""
    base = {"asset": "validated_bars", **inst.hive}
    wanted = None if months is None else set(months)
    out: dict[str, list[str]] = {}
    for path in lake.files(QUARANTINE, base):
        month = path.parent.name.removeprefix("month=")
        if wanted is not None and month not in wanted:
            continue
        contract = Lake.lineage(path).get("contract") or {}
        if contract.get("status") != "blocked":
            continue
        failed = contract.get("failed") or {}
        checks = {RULES[rule].check for rule, f in failed.items() if f.get("severity") == ERROR and rule in RULES}
        out[month] = sorted(checks)
    return dict(sorted(out.items()))
