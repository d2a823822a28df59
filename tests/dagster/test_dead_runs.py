"""A ``maestro demo`` killed with SIGKILL while a research run holds the ``maestro_research`` pool slot: the next
``maestro demo`` names the dead run, marks it failed, frees the slot, completes (before: it waited forever at 99 %
CPU) and produces the same leaderboard as a clean run. Plus the pool wait itself: it says why it waits, sleeps,
and stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import yaml

from maestro_pipeline.config import load_config
from maestro_pipeline.evaluation import build_leaderboard
from maestro_pipeline.lake import Lake
from tests.support.config import small_config

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e
POOL = "maestro_research"


def _config(tmp_path: Path) -> Path:
    cfg = small_config(str(tmp_path / "lake"),
                       instruments=[{"exchange": "synthetic", "symbol": "BTC/USDT", "timeframe": "1h",
                                     "start": "2025-01-01", "end": "2025-06-01"}],
                       strategies=["ema_cross", "rsi"],
                       walk_forward={"train": "40d", "test": "20d", "n_splits": 3},
                       search={"n_trials": 40, "seed": 5, "workers": 1})
    cfg["concurrency"] = {"max_concurrent_runs": 1, "research_pool": 1}
    p = tmp_path / "maestro.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def _env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {**os.environ, "DAGSTER_HOME": str(home), "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(ROOT)}


def _demo(tmp_path: Path, config: Path, stdout=subprocess.PIPE) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "maestro_pipeline.cli", "--config", str(config), "demo"],
                            cwd=ROOT, env=_env(tmp_path), stdout=stdout, stderr=subprocess.STDOUT, text=True)


def _leaderboard(config: Path) -> list[dict]:
    cfg = load_config(config)
    keys = [(i.key, s) for i in cfg.instrument_objs for s in cfg.strategies]
    rows = build_leaderboard(Lake(cfg.lake_path()), keys).to_dicts()
    return [{k: v for k, v in r.items() if k not in ("computed_at", "code_version")} for r in rows]


def _held_slots(home: Path) -> list:
    with dg.DagsterInstance.from_config(str(home)) as inst:
        return inst.event_log_storage.get_concurrency_info(POOL).claimed_slots


def test_killed_demo_frees_its_pool_slot_and_the_rerun_matches_a_clean_run(tmp_path):
    clean_dir, crash_dir = tmp_path / "clean", tmp_path / "crash"
    clean_dir.mkdir(), crash_dir.mkdir()
    clean_cfg, crash_cfg = _config(clean_dir), _config(crash_dir)
    clean = subprocess.run([sys.executable, "-m", "maestro_pipeline.cli", "--config", str(clean_cfg), "demo"],
                           cwd=ROOT, env=_env(clean_dir), capture_output=True, text=True, timeout=900)
    assert clean.returncode == 0, clean.stdout[-2000:] + clean.stderr[-2000:]

    out_path = crash_dir / "demo.out"
    with open(out_path, "w") as out:
        proc = _demo(crash_dir, crash_cfg, stdout=out)
    home = crash_dir / "home"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:  # kill exactly while research holds the slot
        # (the instance is opened only once the demo has created it: "splits:" is printed after two stages)
        if "  splits:" in out_path.read_text() and _held_slots(home):
            break
        time.sleep(0.3)
    assert proc.poll() is None, f"the demo ended before research held the pool slot:\n{out_path.read_text()[-2000:]}"
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    held = _held_slots(home)
    assert len(held) == 1  # the dead process still holds the slot (and its run is STARTED)
    dead_run = held[0].run_id

    again = subprocess.run([sys.executable, "-m", "maestro_pipeline.cli", "--config", str(crash_cfg), "demo"],
                           cwd=ROOT, env=_env(crash_dir), capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert f"run {dead_run[:8]} (research synthetic.BTC_USDT.1h " in again.stdout
    assert "which is gone: marked failed, its pool slots freed" in again.stdout
    with dg.DagsterInstance.from_config(str(home)) as inst:
        assert inst.get_run_by_id(dead_run).status == dg.DagsterRunStatus.FAILURE
        assert inst.event_log_storage.get_concurrency_info(POOL).claimed_slots == []
    assert _leaderboard(crash_cfg) == _leaderboard(clean_cfg)
    partial = [p for p in (crash_dir / "lake").rglob("*") if p.name.endswith(".tmp") or ".tmp" in p.suffixes]
    assert partial == []


_HOLDER = """
import sys, time
import dagster as dg
@dg.asset(pool="maestro_research")
def holder():
    time.sleep(600)
dg.materialize([holder], instance=dg.DagsterInstance.get(),
               tags={"maestro/host": __import__("socket").gethostname(), "maestro/pid": str(__import__("os").getpid()),
                     "maestro/process_start": sys.argv[1], "maestro/label": "holder"})
"""

def test_pool_wait_says_why_sleeps_and_stops_on_sigterm_then_a_dead_holder_is_freed(tmp_path):
    from maestro_pipeline.cli.graph import recover_dead_runs

    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry: {enabled: false}\nconcurrency: {pools: {default_limit: 1}}\n")
    env = _env(tmp_path)
    # create the instance's SQLite schema here, before the holder starts: two processes opening a fresh instance at
    # once race each other's CREATE TABLE (CI saw the holder die of "table jobs already exists")
    dg.DagsterInstance.from_config(str(home)).dispose()
    # the holder tags its run with its own process start (as maestro's runs do), read by a shell wrapper
    holder = subprocess.Popen(["bash", "-c", f'exec {sys.executable} -c "$0" "$(cut -d" " -f22 /proc/$$/stat)"',
                               _HOLDER], env=env, cwd=ROOT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and holder.poll() is None and not _held_slots(home):
        time.sleep(0.5)
    assert holder.poll() is None, "the holder process ended before it took the pool slot"
    assert _held_slots(home)
    config = _config(tmp_path)
    data = yaml.safe_load(config.read_text())
    data["strategies"], data["search"]["n_trials"] = ["ema_cross"], 4
    config.write_text(yaml.safe_dump(data))
    waiter = _demo(tmp_path, config)  # a real `maestro demo`: bars and splits run, research waits for the slot
    lines = []
    while waiter.poll() is None:
        lines.append(waiter.stdout.readline())
        if "waiting for a maestro_research pool slot" in lines[-1]:
            break
    assert "waiting for a maestro_research pool slot (1 of 1 held by run" in lines[-1], "".join(lines)[-2000:]
    assert "(holder)" in lines[-1]
    cpu0 = _cpu_seconds(waiter.pid)
    time.sleep(4)
    assert _cpu_seconds(waiter.pid) - cpu0 < 1.0  # it sleeps: well under the 4 s a spinning wait would burn
    t0 = time.monotonic()
    waiter.send_signal(signal.SIGTERM)
    rest = waiter.communicate(timeout=20)[0]
    assert waiter.returncode == 130 and time.monotonic() - t0 < 10  # ended like Ctrl-C, promptly
    assert "maestro: interrupted; the lake keeps only completed writes" in rest

    holder.send_signal(signal.SIGKILL)
    holder.wait(30)
    with dg.DagsterInstance.from_config(str(home)) as inst:
        fixed = recover_dead_runs(inst, log=lambda _l: None)
        assert len(fixed) == 1 and "(holder) was left STARTED by process" in fixed[0]
        assert inst.event_log_storage.get_concurrency_info(POOL).claimed_slots == []
        assert recover_dead_runs(inst, log=lambda _l: None) == []  # nothing left to fix


def _cpu_seconds(pid: int) -> float:
    """CPU seconds of ``pid`` and every process under it (the demo runs the graph in a child of its own)."""
    import psutil

    root = psutil.Process(pid)
    total = 0.0
    for p in [root, *root.children(recursive=True)]:
        try:
            t = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system
    return total