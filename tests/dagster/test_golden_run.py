"""The demo configuration's leaderboard with the clock pinned: the whole graph, run as ``maestro demo`` runs it.

Every row (verdict, reason, figures) must stay what it was; a refactor that changes one number is not a refactor.
When a change of results is deliberate (a new statistic, a fixed bug), regenerate with
``MAESTRO_UPDATE_GOLDEN=1 make test PYTEST_ARGS=tests/dagster/test_golden_run.py`` and say why in the commit.
"""

from __future__ import annotations

import json
import math
import os
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import pytest
import yaml

from maestro_pipeline.cli import run_graph
from maestro_pipeline.config import load_config
from maestro_pipeline.evaluation import build_leaderboard
from maestro_pipeline.lake import Lake

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).with_name("golden_leaderboard.json")
#: 2025-11-10 00:00 UTC: six complete 30-day test windows after the 120-day train window, plus the live split.
GOLDEN_NOW_MS = int(datetime(2025, 11, 10, tzinfo=timezone.utc).timestamp() * 1000)

pytestmark = pytest.mark.e2e


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        if math.isnan(a) and math.isnan(b):
            return True
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def test_demo_leaderboard_is_unchanged(tmp_path: Path):
    data = yaml.safe_load((ROOT / "maestro.yaml").read_text())
    data["lake_root"] = str(tmp_path / "lake")
    cfg_path = tmp_path / "maestro.yaml"
    cfg_path.write_text(yaml.safe_dump(data))
    with dg.instance_for_test() as instance:
        run_graph(cfg_path, now_ms=GOLDEN_NOW_MS, instance=instance, log=lambda *_: None)
    cfg = load_config(cfg_path)
    keys = [(i.key, s) for i in cfg.instrument_objs for s in cfg.strategies]
    rows = build_leaderboard(Lake(cfg.lake_path()), keys).to_dicts()
    assert len(rows) == len(keys) == 6
    if os.environ.get("MAESTRO_UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(json.dumps(rows, indent=1, sort_keys=True, default=str) + "\n")
    expected = json.loads(GOLDEN.read_text())
    assert len(rows) == len(expected)
    diffs = [f"rank {e['rank']} {k}: {e[k]!r} -> {r.get(k)!r}"
             for r, e in zip(rows, expected) for k in e if not _same(r.get(k), e[k])]
    assert diffs == [], "the demo leaderboard changed:\n" + "\n".join(diffs[:40])
