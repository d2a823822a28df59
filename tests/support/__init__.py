"""Helpers the tests share: bar factories, the Backtrader replay, the exchange stand-in, the dagster dev launcher,
the small config and its pinned clock, the in-process graph. Test modules import helpers from here only."""

from __future__ import annotations

from pathlib import Path

#: The repository root.
ROOT = Path(__file__).resolve().parents[2]
