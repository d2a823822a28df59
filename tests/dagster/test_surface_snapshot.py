"""The Dagster surface (assets, partitions, checks and their blocking flags, jobs, schedules, sensors) is pinned.

A refactor must not change what users see in the UI or what automation targets. If a change is deliberate,
regenerate the snapshot with ``MAESTRO_UPDATE_SNAPSHOT=1 make test PYTEST_ARGS=tests/dagster/test_surface_snapshot.py``
and say why in the commit.
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path

import pytest
import yaml

from assets import build_definitions
from maestro_pipeline.config import load_config, parse_config
from tests.support.surface import surface

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOT = Path(__file__).with_name("surface.json")
PERPETUAL = {"exchange": "binance", "symbol": "BTC/USDT:USDT", "timeframe": "1h", "start": "2025-03-01"}


def _configs() -> dict:
    demo = load_config(ROOT / "maestro.yaml")
    data = yaml.safe_load((ROOT / "maestro.yaml").read_text())
    data["instruments"].append(PERPETUAL)
    return {"demo": demo, "demo_with_perpetual": parse_config(data)}


def _current() -> dict:
    return {name: surface(build_definitions(cfg, ROOT)) for name, cfg in _configs().items()}


def test_dagster_surface_matches_the_snapshot():
    current = _current()
    text = json.dumps(current, indent=1, sort_keys=True) + "\n"
    if os.environ.get("MAESTRO_UPDATE_SNAPSHOT") == "1":
        SNAPSHOT.write_text(text)
    if not SNAPSHOT.exists():
        pytest.fail(f"{SNAPSHOT} is missing: run with MAESTRO_UPDATE_SNAPSHOT=1 once and commit it")
    expected = SNAPSHOT.read_text()
    if text != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), text.splitlines(True), "snapshot", "now", n=2))
        pytest.fail(f"the Dagster surface changed:\n{diff[:6000]}")


def test_the_snapshot_sees_the_surface():
    # guard against a vacuous snapshot: the graph, its blocking checks and its automation are all in it
    s = _current()
    demo, perp = s["demo"], s["demo_with_perpetual"]
    assert {"raw_candles", "validated_bars", "walk_forward_splits", "split_optimal_params", "oos_reports",
            "strategy_leaderboard"} <= set(demo["assets"])
    assert demo["checks"]["validated_bars:bar_structure"]["blocking"] is True
    assert demo["checks"]["validated_bars:gaps"]["blocking"] is False
    assert "nightly_refresh" in demo["schedules"] and "reoptimize_on_new_data" in demo["sensors"]
    assert {"funding_rates", "open_interest"} <= set(perp["assets"]) - set(demo["assets"])
