"""Where the live parameters records live in the lake, written atomically with their history.

One stable path per instrument x strategy (documented in ``docs/live.md``)::

    <lake>/live_parameters/exchange=<ex>/symbol=<BASE_QUOTE>/timeframe=<tf>/strategy=<name>/live_parameters.json
    <lake>/live_parameters/.../strategy=<name>/history/<generated_at: YYYYmmddTHHMMSSZ>_<content_version>.json
    <lake>/live_parameters/.../strategy=<name>/data.parquet      (one flat row: for DuckDB and the leaderboard)

The current file, the history entry and the table row are staged and renamed together (one lake transaction): a
failed write leaves the previous record as it was. A history entry is added only when the record's content
version changes (a re-run that picks the same parameters on the same evidence adds none).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from ..errors import MaestroError
from ..lake import Lake, Transaction

__all__ = ["HISTORY_DIR", "LIVE_ASSET", "LIVE_FILE", "Stored", "history", "live_row", "read_live", "write_live"]

LIVE_ASSET = "live_parameters"
LIVE_FILE = "live_parameters.json"
HISTORY_DIR = "history"


class Stored:
    """What :func:`write_live` wrote: the current file, the new history entry (None when unchanged)."""

    def __init__(self, path: Path, history_path: Path | None, changed: bool) -> None:
        self.path, self.history_path, self.changed = path, history_path, changed


def _partition(doc: dict[str, Any]) -> dict[str, str]:
    try:
        exchange, symbol, timeframe = doc["instrument"].split(".")
    except (KeyError, ValueError):
        raise MaestroError(f"live record has no valid instrument key: {doc.get('instrument')!r}") from None
    return {"exchange": exchange, "symbol": symbol, "timeframe": timeframe, "strategy": doc["strategy"]}


def _dumps(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=True, allow_nan=False, default=str) + "\n").encode()


def live_row(doc: dict[str, Any], path: Path) -> dict[str, Any]:
    """The record as one flat table row (what the leaderboard joins)."""
    return {
        "instrument": doc["instrument"], "strategy": doc["strategy"], "tradeable": bool(doc["tradeable"]),
        "tradeable_reason": doc["tradeable_reason"], "verdict": doc["verdict"],
        "live_params": json.dumps(doc["params"], sort_keys=True) if doc.get("params") else "",
        "live_risk": (doc.get("risk") or {}).get("described", ""),
        "valid_from": doc.get("valid_from", ""), "valid_until": doc.get("valid_until", ""),
        "valid_from_ms": doc.get("valid_from_ms"), "valid_until_ms": doc.get("valid_until_ms"),
        "live_reason": doc.get("live_reason", ""), "content_version": doc["content_version"],
        "data_version": doc.get("data_version", ""), "generated_at": doc["generated_at"], "path": str(path),
    }


def read_live(lake: Lake, instrument: str, strategy: str) -> dict[str, Any] | None:
    """The current record of ``instrument`` x ``strategy`` (None when none was written yet)."""
    path = lake.path(LIVE_ASSET, _partition({"instrument": instrument, "strategy": strategy}), LIVE_FILE)
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise MaestroError(f"{path}: not a valid live parameters file ({e}); re-materialize live_parameters") from None


def history(lake: Lake, instrument: str, strategy: str) -> list[Path]:
    """The history entries of ``instrument`` x ``strategy``, oldest first."""
    d = lake.partition_dir(LIVE_ASSET, _partition({"instrument": instrument, "strategy": strategy})) / HISTORY_DIR
    return sorted(d.glob("*.json")) if d.exists() else []


def write_live(lake: Lake, doc: dict[str, Any], *, lineage: dict[str, Any] | None = None,
               tx: Transaction | None = None) -> Stored:
    """Write ``doc`` as the current record (and a history entry when its content changed), atomically."""
    part = _partition(doc)
    previous = read_live(lake, doc["instrument"], doc["strategy"])
    changed = previous is None or previous.get("content_version") != doc["content_version"]
    stamp = datetime.fromtimestamp(int(doc["generated_at_ms"]) / 1000, tz=UTC).strftime("%Y%m%dT%H%M%SZ")
    hist_name = f"{HISTORY_DIR}/{stamp}_{doc['content_version']}.json"
    body = _dumps(doc)

    def write(t: Transaction) -> tuple[Path, Path | None]:
        path = lake.write_bytes(body, LIVE_ASSET, part, LIVE_FILE, tx=t)
        hist = lake.write_bytes(body, LIVE_ASSET, part, hist_name, tx=t) if changed else None
        lake.write_table(pl.DataFrame([live_row(doc, path)], infer_schema_length=None), LIVE_ASSET, part,
                         lineage=lineage, tx=t)
        return path, hist

    if tx is not None:
        path, hist = write(tx)
    else:
        with lake.transaction() as own:
            path, hist = write(own)
    return Stored(path, hist, changed)
