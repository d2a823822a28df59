"""When research must run again: pure decisions the Dagster schedule and sensor only carry out."""

from __future__ import annotations

from datetime import datetime, timezone

from .ingest import month_of
from .instruments import Instrument


def months_to_refresh(inst: Instrument, now_ms: int, grace_days: int = 2) -> list[str]:
    """The current month, plus the previous one during the first ``grace_days`` of a month (its last bars)."""
    now = datetime.fromtimestamp(now_ms / 1000, tz=timezone.utc)
    months = [month_of(now_ms)]
    if now.day <= grace_days:
        prev = month_of(now_ms - now.day * 86_400_000)
        months.insert(0, prev)
    start = month_of(inst.start_ms)
    end = month_of(inst.end_ms - 1) if inst.end_ms else None
    return [m for m in months if m >= start and (end is None or m <= end)]


def splits_due(planned_last_test_end_ms: int | None, stored_last_test_end_ms: int | None) -> tuple[bool, str]:
    """Has the split plan for the current data moved past the stored one? Works for every window form (days,
    bars, calendar months, parts), because the plan itself is computed from the data by ``research.make_splits``.
    ``planned_last_test_end_ms`` is None when the data cannot hold one split yet."""
    if planned_last_test_end_ms is None:
        return False, "not enough validated data for one split yet"
    if stored_last_test_end_ms is None:
        return True, "no splits yet and enough data for one"
    if planned_last_test_end_ms > stored_last_test_end_ms:
        return True, "validated data now covers a new test window"
    return False, "waiting for data to cover the next test window"
