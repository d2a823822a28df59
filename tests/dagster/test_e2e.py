"""End to end through real processes: `dagster dev` + GraphQL, the `dagster` CLI, and `maestro demo`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
import yaml

from tests.support.config import small_config
from tests.support.dagster_dev import dagster_dev

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.e2e


def _recent_config(tmp_path: Path) -> Path:
    """A small config whose data ends now (wall clock): the CLI and the UI use the real clock."""
    start = (datetime.now(UTC) - timedelta(days=50)).date()
    cfg = small_config(str(tmp_path / "lake"),
                       instruments=[{"exchange": "synthetic", "symbol": "BTC/USDT", "timeframe": "1h",
                                     "start": start.isoformat()}],
                       strategies=["ema_cross"],
                       walk_forward={"train": "20d", "test": "10d", "n_splits": 2},
                       search={"n_trials": 4, "seed": 1})
    p = tmp_path / "maestro.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def _env(tmp_path: Path, config: Path) -> dict[str, str]:
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    return {**os.environ, "MAESTRO_CONFIG": str(config), "DAGSTER_HOME": str(home), "PYTHONWARNINGS": "ignore"}


def _months(config: Path) -> list[str]:
    start = yaml.safe_load(config.read_text())["instruments"][0]["start"]
    start = datetime.fromisoformat(str(start))
    now = datetime.now(UTC)
    out, y, m = [], start.year, start.month
    while (y, m) <= (now.year, now.month):
        out.append(f"{y}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def test_dg_check_defs_loads_the_project_without_a_supersession_warning(tmp_path):
    """What ``make validate`` runs: ``dg check defs`` finds the project in pyproject.toml's [tool.dg]."""
    env = {**os.environ, "MAESTRO_CONFIG": str(ROOT / "maestro.yaml"), "VIRTUAL_ENV": str(BIN.parent)}
    env.pop("PYTHONWARNINGS", None)             # a supersession warning must not be hidden by a filter
    out = subprocess.run([str(BIN / "dg"), "check", "defs"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "All definitions loaded successfully." in out.stdout + out.stderr
    assert "Supersession" not in out.stdout + out.stderr
    bad = tmp_path / "maestro.yaml"                     # definitions that cannot load fail the check
    bad.write_text("lake_root: x\ninstruments: []\nstrategies: [ema_cross]\n")
    out = subprocess.run([str(BIN / "dg"), "check", "defs"], cwd=ROOT, env={**env, "MAESTRO_CONFIG": str(bad)},
                         capture_output=True, text=True, timeout=300)
    assert out.returncode != 0 and "instruments" in out.stdout + out.stderr


def test_dagster_asset_materialize_cli(tmp_path):
    config = _recent_config(tmp_path)
    month = _months(config)[-1]
    key = f"synthetic.BTC_USDT.1h|{month}"
    out = subprocess.run(
        [str(BIN / "dagster"), "asset", "materialize", "-m", "maestro_pipeline.definitions",
         "--select", "raw_candles,validated_bars", "--partition", key],
        cwd=ROOT, env=_env(tmp_path, config), capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    f = tmp_path / f"lake/validated_bars/exchange=synthetic/symbol=BTC_USDT/timeframe=1h/month={month}/data.parquet"
    assert f.exists() and pl.read_parquet(f).height > 0


def test_dagster_dev_graphql_run(tmp_path):
    from dagster_graphql import DagsterGraphQLClient

    config = _recent_config(tmp_path)
    month = _months(config)[-1]
    with dagster_dev(_env(tmp_path, config), tmp_path / "dagster_dev.log") as base:
        port = int(base.rsplit(":", 1)[1])
        client = DagsterGraphQLClient("127.0.0.1", port_number=port, timeout=60)
        key = f"synthetic.BTC_USDT.1h|{month}"
        tags = {"dagster/partition": key, "dagster/partition/instrument": "synthetic.BTC_USDT.1h",
                "dagster/partition/month": month}
        for attempt in range(30):  # the code location may still be loading
            try:
                run_id = client.submit_job_execution("refresh_bars", tags=tags)
                break
            except Exception:
                if attempt == 29:
                    raise
                time.sleep(2)
        status = None
        deadline = time.time() + 300
        while time.time() < deadline:
            status = client.get_run_status(run_id).value
            if status in ("SUCCESS", "FAILURE", "CANCELED"):
                break
            time.sleep(1)
        assert status == "SUCCESS", (tmp_path / "dagster_dev.log").read_text()[-3000:]
        f = tmp_path / f"lake/validated_bars/exchange=synthetic/symbol=BTC_USDT/timeframe=1h/month={month}/data.parquet"
        assert f.exists() and pl.read_parquet(f).height > 0


def test_maestro_demo_command(tmp_path):
    config = _recent_config(tmp_path)
    out = subprocess.run([str(BIN / "maestro"), "--config", str(config), "demo"], cwd=tmp_path,
                         env=_env(tmp_path, config), capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Leaderboard (walk-forward, out of sample):" in out.stdout
    assert "synthetic.BTC_USDT.1h" in out.stdout and "ema_cross" in out.stdout
    assert "make ui" in out.stdout
    assert (tmp_path / "lake/strategy_leaderboard/data.parquet").exists()
    assert (tmp_path / "lake/catalog.duckdb").exists()


def test_maestro_demo_failure_is_one_line_per_run_keeps_going_and_keeps_lake(tmp_path):
    config = _recent_config(tmp_path)
    data = yaml.safe_load(config.read_text())
    short = (datetime.now(UTC) - timedelta(days=12)).date().isoformat()  # far less history than train + test
    data["instruments"].append({"exchange": "synthetic", "symbol": "ETH/USDT", "timeframe": "1h", "start": short})
    config.write_text(yaml.safe_dump(data))
    out = subprocess.run([str(BIN / "maestro"), "--config", str(config), "demo"], cwd=tmp_path,
                         env=_env(tmp_path, config), capture_output=True, text=True, timeout=900)
    assert out.returncode == 1, out.stderr[-2000:]         # some runs failed: not a usage error (2), not success
    err = out.stderr.strip().splitlines()
    assert err[0] == "maestro: 1 run(s) failed; the others completed:", out.stderr[-2000:]
    assert len(err) == 2 and err[1].startswith("maestro: splits synthetic.ETH_USDT.1h failed (run ")
    assert "not enough data for one walk-forward split" in err[1] and "walk_forward.train" in err[1]
    assert "Traceback" not in out.stderr + out.stdout
    # it kept going: the failure is reported where it happened, what depends on it is skipped, the healthy
    # instrument is researched and ranked
    assert "FAILED splits synthetic.ETH_USDT.1h" in out.stdout
    assert "research synthetic.ETH_USDT.1h: skipped (no splits)" in out.stdout
    board = out.stdout[out.stdout.index("Leaderboard (walk-forward, out of sample):"):]
    assert "synthetic.BTC_USDT.1h" in board and "synthetic.ETH_USDT.1h" not in board
    split_files = list((tmp_path / "lake/walk_forward_splits").rglob("*.parquet"))
    assert split_files and all("symbol=BTC_USDT" in str(p) for p in split_files)
    bars = tmp_path / "lake/validated_bars"
    assert any("ETH_USDT" in str(p) for p in bars.rglob("*.parquet"))  # the bars it did fetch are kept
