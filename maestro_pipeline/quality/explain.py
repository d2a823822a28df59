"""Why a month is blocked, in words a user can act on: the check, the rule's reason, the first offending rows,
and the ``maestro.yaml`` key that would change the outcome."""

from __future__ import annotations

from collections.abc import Mapping

from .rules import CHECKS, ERROR, RULES

__all__ = ["block_reason", "fix_hint"]

#: The contract threshold each rule is measured against (rules without one depend on the data alone).
_THRESHOLD = {"gap_over_max": "max_gap", "price_spikes": "spike_z", "flat_runs": "max_flat_run",
              "zero_volume_runs": "max_zero_volume_run"}


def fix_hint(rule: str, exchange: str) -> str:
    """The settings that would let the month through, or what to fix in the data when no setting should."""
    check = RULES[rule].check if rule in RULES else rule
    allowed = [s for s in CHECKS.get(check, ("", (ERROR,), ""))[1] if s != ERROR]
    hints = []
    if rule in _THRESHOLD:
        hints.append(f"raise data_contract.exchanges.{exchange}.{_THRESHOLD[rule]} (or data_contract.default."
                     f"{_THRESHOLD[rule]})")
    if allowed:
        hints.append(f"set data_contract.severity.{check}: {' or '.join(allowed)}")
    if not hints:
        return (f"{check} is always blocking: fix the source data (the month's rows are in data_lake/quarantine/) "
                "and re-materialize the month")
    return "to accept it, " + ", or ".join(hints)


def block_reason(month_key: str, exchange: str, outcomes: Mapping[str, object]) -> str:
    """One line per blocking rule: ``<month>: check <check> failed: <message> (first: …); <fix>``.

    ``outcomes`` are the contract's rule outcomes (objects with ``rule``, ``passed``, ``severity``, ``message``,
    ``first_offenders``)."""
    lines = []
    for name, o in outcomes.items():
        if getattr(o, "passed", True) or getattr(o, "severity", "") != ERROR:
            continue
        first = list(dict.fromkeys(getattr(o, "first_offenders", None) or []))
        where = f" (first: {', '.join(first[:2])})" if first and "first" not in o.message else ""
        check = RULES[name].check if name in RULES else name
        lines.append(f"{month_key}: check {check} failed: {o.message}{where}; {fix_hint(name, exchange)}")
    return "\n".join(lines)
