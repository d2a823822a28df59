"""``maestro backtest`` and ``maestro check-strategy`` as a user runs them: a real subprocess on a real file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from maestro_pipeline.engine import Costs, RiskSpec, StopRule, evaluate
from maestro_pipeline.strategies import get_strategy
from tests.support.bars import random_walk


def maestro(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "maestro_pipeline.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env={"PYTHONWARNINGS": "ignore", "PATH": "/usr/bin:/bin",
                                                       "MAESTRO_CONFIG": str(cwd / "absent.yaml"),
                                                       "PYTHONPATH": str(Path(__file__).parents[2])})


@pytest.fixture(scope="module")
def candles(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    bars = random_walk(1500, seed=4, wick=0.004, vol=0.012)
    bars.index = bars.index.tz_localize("UTC") if bars.index.tz is None else bars.index
    path = tmp_path_factory.mktemp("cli") / "BTCUSDT-1h.csv"
    out = bars.reset_index(names="date")
    out["date"] = out["date"].dt.strftime("%Y-%m-%d %H:%M:%S")
    out.to_csv(path, index=False)
    return path, bars


def test_backtest_json_matches_the_library_and_applies_the_stop(candles):
    path, bars = candles
    out = maestro("backtest", "ema_cross", "--file", str(path), "--timeframe", "1h", "--params",
                  '{"fast": 8, "slow": 30}', "--stop-loss", "3%", "--fee", "0.001", "--slippage", "0.0005", "--json",
                  cwd=path.parent)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout)
    frame = bars[["open", "high", "low", "close", "volume"]]
    frame.index = frame.index.tz_localize(None)
    ref = evaluate(frame, get_strategy("ema_cross"),
                   {"fast": 8, "slow": 30}, 0, len(frame), Costs(0.001, 0.0005),
                   risk=RiskSpec(stop_loss=StopRule(0.03)))
    assert got["trades"] == ref.n_trades == len(got["trade_list"]) > 5
    assert got["final_equity"] == pytest.approx(float(ref.equity.iloc[-1]), rel=1e-12)
    assert got["final_equity"] == pytest.approx(10_000 * (1 + got["total_return"]), rel=1e-12)
    assert got["exit_reasons"]["stop"] > 0 and got["risk"] == "stop_loss 0.03, all in"
    for t in got["trade_list"]:
        if t["exit_reason"] == "stop":   # a long's stop fills at or below 97% of its entry (a gap fills lower)
            side = 1 if t["direction"] == "long" else -1
            assert side * (t["exit_price"] / t["entry_price"] - 1) <= -0.03 + 1e-12
    assert got["min_equity"] > 0 and not got["ruined"]


def test_a_cost_flag_overrides_only_its_own_cost(candles):
    path, bars = candles
    out = maestro("backtest", "ema_cross", "--file", str(path), "--timeframe", "1h", "--params",
                  '{"fast": 8, "slow": 30}', "--fee", "0.004", "--json", cwd=path.parent)
    assert out.returncode == 0, out.stderr[-2000:]
    frame = bars[["open", "high", "low", "close", "volume"]]
    frame.index = frame.index.tz_localize(None)
    strategy = get_strategy("ema_cross")
    ref = evaluate(frame, strategy, {"fast": 8, "slow": 30}, 0, len(frame), Costs(fee=0.004))  # default slippage
    default = evaluate(frame, strategy, {"fast": 8, "slow": 30}, 0, len(frame), Costs())
    got = json.loads(out.stdout)["final_equity"]
    assert got == pytest.approx(float(ref.equity.iloc[-1]), rel=1e-12)
    assert got < float(default.equity.iloc[-1])


def test_backtest_errors_name_the_option_to_fix(candles):
    path, _ = candles
    cases = [
        (["--file", str(path)], "--file needs --timeframe"),
        (["--file", str(path), "--timeframe", "4h"], "not clean 4h bars: aligned_to_grid"),
        (["--file", str(path), "--timeframe", "1h", "--params", "{fast: 8}"], "--params is not JSON"),
        (["--file", str(path), "--timeframe", "1h", "--stop-loss", "lots"], "stop"),
        ([], "say which bars"),
    ]
    for extra, message in cases:
        out = maestro("backtest", "ema_cross", *extra, cwd=path.parent)
        assert out.returncode == 2, (extra, out.stderr)
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (extra, out.stderr[-1500:])


def test_check_strategy_passes_the_catalog_and_names_unknown_strategies(tmp_path):
    ok = maestro("check-strategy", "rsi", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr[-1500:]
    first = ok.stdout.splitlines()[0]
    assert first.startswith("rsi: no look-ahead found (") and int(first.split("(")[1].split()[0]) > 0
    bad = maestro("check-strategy", "no_such_strategy", cwd=tmp_path)
    assert bad.returncode == 2 and "no_such_strategy" in bad.stderr and "ema_cross" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_the_stop_in_the_file_run_is_real(candles):
    """The same backtest without the stop differs: the option reached the engine."""
    path, _ = candles
    args = ["backtest", "ema_cross", "--file", str(path), "--timeframe", "1h", "--params", '{"fast": 8, "slow": 30}',
            "--json"]
    plain = json.loads(maestro(*args, cwd=path.parent).stdout)
    stopped = json.loads(maestro(*args, "--stop-loss", "3%", cwd=path.parent).stdout)
    assert plain["exit_reasons"]["stop"] == 0 and stopped["exit_reasons"]["stop"] > 0
    assert not np.isclose(plain["final_equity"], stopped["final_equity"])
