"""The crafted bad inputs of the audit through the real CLI: each ``check-config`` and ``demo`` exits 2 with one
line naming the key, before anything is written; and Ctrl-C of a running demo prints one line."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from .conftest import fault_env, maestro, small_project

pytestmark = pytest.mark.faults

BASE = ("instruments:\n  - {exchange: synthetic, symbol: %s, timeframe: 1h, start: 2026-04-01}\n"
        "strategies: [ema_cross]\n")

CASES = {
    "bad cron": (BASE % "BTC/USDT" + "schedule: {nightly_cron: '61 0 * * *'}\n",
                 "schedule.nightly_cron: '61 0 * * *' is not a cron schedule Dagster runs"),
    "bad timezone": (BASE % "BTC/USDT" + "schedule: {timezone: Europe/Amsterdm}\n",
                     "schedule.timezone: unknown timezone 'Europe/Amsterdm'"),
    "duplicate section": (BASE % "BTC/USDT" + "search: {n_trials: 5}\nsearch: {seed: 1}\n",
                          "not valid YAML at line 5: key 'search' given twice (first at line 4)"),
    "= in a symbol": (BASE % "'BTC=X/USDT'", "instruments[0].symbol: symbol 'BTC=X/USDT' contains '='"),
    "newline in a symbol": (BASE % '"BTC/US\\nDT"', "instruments[0].symbol: symbol 'BTC/US\\nDT' contains '\\n'"),
}


@pytest.mark.parametrize("command", ["check-config", "demo"])
@pytest.mark.parametrize("case", list(CASES))
def test_bad_config_is_one_line_and_exit_2(tmp_path, case, command):
    text, expected = CASES[case]
    cfg = tmp_path / "maestro.yaml"
    cfg.write_text(text)
    out = subprocess.run(maestro("--config", str(cfg), command), cwd=tmp_path, env=fault_env(tmp_path / "home"),
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 2
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"maestro: {cfg}: {expected}"), out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "data_lake").exists()


def test_ctrl_c_prints_one_line(tmp_path):
    """SIGINT to the whole foreground group, as a terminal sends it, once research has started."""
    cfg = small_project(tmp_path)
    p = subprocess.Popen(maestro("--config", str(cfg), "demo"), cwd=tmp_path, env=fault_env(tmp_path / "home"),
                         start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    t0 = time.monotonic()
    while not any((tmp_path / "lake").glob("walk_forward_splits/**/data.parquet")):
        assert p.poll() is None and time.monotonic() - t0 < 600
        time.sleep(0.05)
    os.killpg(p.pid, signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130
    assert err.splitlines() == ["maestro: interrupted; the lake keeps only completed writes"]
    assert "Graph materialized" not in out      # the demo stopped; it did not go on to the next stage
