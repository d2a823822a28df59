"""Strategies: registry, parameter validation, independent re-computation of the signal rules, no look-ahead."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

import maestro_pipeline.strategies as registry
from maestro_pipeline.errors import MaestroError
from maestro_pipeline.strategies import (
    FloatParam,
    IntParam,
    Signals,
    Strategy,
    available_strategies,
    discover_package,
    get_strategy,
)
from tests.support.bars import random_walk

NAMES = ("bollinger", "ema_cross", "rsi")


# ----------------------------------------------------------------------------- registry


def test_registry_lists_the_three_strategies_sorted():
    names = available_strategies()
    assert names == sorted(names)
    assert set(NAMES) <= set(names)
    for name in NAMES:
        s = get_strategy(name)
        assert isinstance(s, Strategy) and s.name == name and s.description
        assert set(s.space) <= set(s.defaults)
        assert s.check({}) == s.check(dict(s.defaults))  # defaults are valid


def test_unknown_strategy_lists_available_names():
    with pytest.raises(MaestroError) as e:
        get_strategy("macd_magic")
    msg = str(e.value)
    assert "macd_magic" in msg
    for name in NAMES:
        assert name in msg


def test_discovery_adds_one_strategy_per_file(tmp_path, monkeypatch):
    pkg = tmp_path / "fake_strats"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    body = """
        import numpy as np
        from maestro_pipeline.strategies import IntParam, Strategy
        from maestro_pipeline.strategies.ema_cross import EmaCross  # imported, must not be registered here

        class {cls}(Strategy):
            name = "{name}"
            description = "test"
            defaults = {{"n": 3}}
            space = {{"n": IntParam(1, 9)}}
            def warmup(self, params):
                return params["n"]
            def signals(self, bars, params):
                z = np.zeros(len(bars), bool)
                return self.finish(bars, params, z, z, z, z)
    """
    (pkg / "alpha.py").write_text(textwrap.dedent(body.format(cls="Alpha", name="alpha")))
    (pkg / "beta.py").write_text(textwrap.dedent(body.format(cls="Beta", name="beta")))
    (pkg / "helpers.py").write_text("X = 1\n")  # no strategy: ignored
    monkeypatch.syspath_prepend(str(tmp_path))
    found = discover_package("fake_strats")
    assert sorted(found) == ["alpha", "beta"]
    assert found["alpha"]().check({"n": 4}) == {"n": 4}

    (pkg / "gamma.py").write_text(
        "from maestro_pipeline.strategies.base import Strategy\n"
        "class Gamma(Strategy):\n"
        "    name, description, defaults, space = 'gamma', 'no signals', {}, {}\n"
        "    def warmup(self, params):\n"
        "        return 0\n"
    )
    with pytest.raises(MaestroError, match="'gamma' .* does not implement signals"):
        discover_package("fake_strats")

    (pkg / "gamma.py").write_text(textwrap.dedent(body.format(cls="Gamma", name="alpha")))
    for mod in [m for m in sys.modules if m.startswith("fake_strats")]:
        monkeypatch.delitem(sys.modules, mod)
    for mod in [m for m in sys.modules if m.startswith("fake_strats")]:
        monkeypatch.delitem(sys.modules, mod)
    with pytest.raises(MaestroError, match="two strategies are named 'alpha'"):
        discover_package("fake_strats")


def test_entry_point_plugins_are_registered(monkeypatch):
    class Plugin(Strategy):
        name = "plugin_strat"
        description = "from a plugin"
        defaults = {"n": 2}
        space = {"n": IntParam(1, 5)}

        def warmup(self, params):
            return 0

        def signals(self, bars, params):
            z = np.zeros(len(bars), bool)
            return self.finish(bars, params, z, z, z, z)

    class FakeEP:
        name, value = "plugin_strat", "somepkg:Plugin"

        def load(self):
            return Plugin

    class BrokenEP:
        name, value = "broken", "nopkg:Nothing"

        def load(self):
            raise ImportError("no module named nopkg")

    monkeypatch.setattr(registry, "entry_points", lambda group: [FakeEP()] if group == "maestro.strategies" else [])
    registry.refresh()
    try:
        assert "plugin_strat" in available_strategies()
        assert get_strategy("plugin_strat").name == "plugin_strat"
        monkeypatch.setattr(registry, "entry_points", lambda group: [BrokenEP()])
        registry.refresh()
        with pytest.raises(MaestroError, match="broken"):
            available_strategies()
    finally:
        monkeypatch.undo()
        registry.refresh()
    assert "plugin_strat" not in available_strategies()


def test_code_version_is_stable_and_per_strategy():
    a, b = get_strategy("ema_cross"), get_strategy("ema_cross")
    assert a.code_version == b.code_version and len(a.code_version) == 16
    assert len({get_strategy(n).code_version for n in NAMES}) == 3


# ----------------------------------------------------------------------------- validation


def test_check_fills_defaults_and_coerces():
    s = get_strategy("ema_cross")
    assert s.check({"slow": 40}) == {"fast": 12, "slow": 40}
    out = s.check({"fast": np.int64(5), "slow": 20.0})
    assert out == {"fast": 5, "slow": 20} and type(out["fast"]) is int and type(out["slow"]) is int
    r = get_strategy("rsi").check({"lower": 25})
    assert r["lower"] == 25.0 and type(r["lower"]) is float


@pytest.mark.parametrize(
    ("name", "params", "needles"),
    [
        ("ema_cross", {"fast": 30, "slow": 30}, ["ema_cross", "fast", "slow", "fast < slow"]),
        ("ema_cross", {"fast": 40, "slow": 20}, ["ema_cross", "fast", "slow"]),
        ("ema_cross", {"fast": 1}, ["ema_cross", "fast", "2..60"]),
        ("ema_cross", {"slow": 999}, ["ema_cross", "slow", "10..240"]),
        ("ema_cross", {"fast": 12.5}, ["ema_cross", "fast", "integer"]),
        ("ema_cross", {"fast": True}, ["ema_cross", "fast", "integer"]),
        ("ema_cross", {"fast": "12"}, ["ema_cross", "fast"]),
        ("ema_cross", {"fastt": 12}, ["ema_cross", "fastt", "fast, slow"]),
        ("rsi", {"lower": 50.0, "upper": 50.0}, ["rsi", "lower", "upper"]),
        ("rsi", {"upper": 99.0}, ["rsi", "upper", "50.0..95.0"]),
        ("rsi", {"lower": float("nan")}, ["rsi", "lower"]),
        ("bollinger", {"k": 0.5}, ["bollinger", "k", "1.0..3.5"]),
        ("bollinger", {"window": 3}, ["bollinger", "window", "5..100"]),
    ],
)
def test_invalid_params_raise_clear_maestro_errors(name, params, needles):
    with pytest.raises(MaestroError) as e:
        get_strategy(name).check(params)
    msg = str(e.value)
    assert "\n" not in msg
    for needle in needles:
        assert needle in msg, (needle, msg)


def test_check_rejects_non_mapping():
    with pytest.raises(MaestroError, match="mapping"):
        get_strategy("rsi").check([("window", 3)])


def test_param_specs_reject_nonsense():
    with pytest.raises(ValueError):
        IntParam(5, 1)
    with pytest.raises(ValueError):
        FloatParam(0.0, 1.0, log=True)


# ----------------------------------------------------------------------------- independent re-computation


def _cross_up(a: pd.Series, b) -> np.ndarray:
    b = b if isinstance(b, pd.Series) else pd.Series(b, index=a.index)
    return ((a.shift(1) <= b.shift(1)) & (a > b)).to_numpy()


def _cross_down(a: pd.Series, b) -> np.ndarray:
    b = b if isinstance(b, pd.Series) else pd.Series(b, index=a.index)
    return ((a.shift(1) >= b.shift(1)) & (a < b)).to_numpy()


def _mask(arrays, w):
    out = []
    for a in arrays:
        a = np.asarray(a, bool).copy()
        a[:w] = False
        out.append(a)
    return out


def reference_signals(name: str, bars: pd.DataFrame, p: dict) -> list[np.ndarray]:
    """The documented signal rules written with plain pandas (no vectorbt)."""
    c = bars["close"]
    if name == "ema_cross":
        fast = c.ewm(span=p["fast"], adjust=False, min_periods=p["fast"]).mean()
        slow = c.ewm(span=p["slow"], adjust=False, min_periods=p["slow"]).mean()
        up, down = _cross_up(fast, slow), _cross_down(fast, slow)
        return _mask([up, down, down, up], 4 * p["slow"])
    if name == "rsi":
        d = c.diff()
        gain = d.clip(lower=0).rolling(p["window"]).mean()
        loss = (-d).clip(lower=0).rolling(p["window"]).mean()
        rsi = 100 - 100 / (1 + gain / loss)
        lo, hi = p["lower"], p["upper"]
        return _mask(
            [_cross_up(rsi, lo), _cross_up(rsi, hi), _cross_down(rsi, hi), _cross_down(rsi, lo)], p["window"] + 1
        )
    if name == "bollinger":
        mid = c.rolling(p["window"]).mean()
        sd = c.rolling(p["window"]).std(ddof=0)
        upper, lower = mid + p["k"] * sd, mid - p["k"] * sd
        return _mask(
            [_cross_up(c, lower), (c >= mid).to_numpy(), _cross_down(c, upper), (c <= mid).to_numpy()], p["window"]
        )
    raise AssertionError(name)


PARAMS = {
    "ema_cross": [{"fast": 5, "slow": 21}, {"fast": 12, "slow": 26}],
    "rsi": [{"window": 14, "lower": 30.0, "upper": 70.0}, {"window": 6, "lower": 35.0, "upper": 60.0}],
    "bollinger": [{"window": 20, "k": 2.0}, {"window": 10, "k": 1.5}],
}


@pytest.mark.parametrize("name", NAMES)
def test_signals_match_an_independent_pandas_implementation(name):
    bars = random_walk(900, seed=3, wick=0.002, unit="us")
    s = get_strategy(name)
    for params in PARAMS[name]:
        p = s.check(params)
        sig = s.signals(bars, p)
        assert isinstance(sig, Signals)
        ref = reference_signals(name, bars, p)
        for got, want, label in zip(sig.arrays(), ref, ("le", "lx", "se", "sx"), strict=True):
            assert got.dtype == bool and got.shape == (len(bars),)
            np.testing.assert_array_equal(got, want, err_msg=f"{name} {p} {label}")
        assert sig.long_entries.sum() > 0 and sig.short_entries.sum() > 0  # the comparison is not vacuous


def test_indicators_equal_vectorbt_public_indicators():
    import vectorbt as vbt

    from maestro_pipeline.strategies.bollinger import bbands
    from maestro_pipeline.strategies.ema_cross import ema
    from maestro_pipeline.strategies.rsi import rsi

    c = random_walk(300, seed=5, wick=0.002, unit="us")["close"]
    np.testing.assert_allclose(ema(c.to_numpy(), 9), vbt.MA.run(c, 9, ewm=True).ma.to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(rsi(c.to_numpy(), 14), vbt.RSI.run(c, 14).rsi.to_numpy(), rtol=1e-12)
    bb = vbt.BBANDS.run(c, 20, alpha=2.0)
    mid, up, lo = bbands(c.to_numpy(), 20, 2.0)
    np.testing.assert_allclose(mid, bb.middle.to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(up, bb.upper.to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(lo, bb.lower.to_numpy(), rtol=1e-12)


def test_ema_cross_fires_on_a_known_crossing():
    # flat, then a sharp rally (fast EMA crosses above slow), then a sharp fall (crosses below)
    close = np.r_[np.full(60, 100.0), np.linspace(101, 130, 30), np.linspace(129, 90, 30)]
    bars = pd.DataFrame({"open": close, "high": close, "low": close, "close": close, "volume": 1.0})
    s = get_strategy("ema_cross")
    p = s.check({"fast": 3, "slow": 10})
    sig = s.signals(bars, p)
    assert np.flatnonzero(sig.long_entries).tolist() == [60]  # first bar the price rises
    (down,) = np.flatnonzero(sig.short_entries)
    assert 90 <= down < 100  # shortly after the top at bar 89
    np.testing.assert_array_equal(sig.long_exits, sig.short_entries)
    np.testing.assert_array_equal(sig.short_exits, sig.long_entries)


# ----------------------------------------------------------------------------- causality


@pytest.mark.parametrize("name", NAMES)
def test_no_look_ahead(name):
    bars = random_walk(700, seed=11, wick=0.002, unit="us")
    s = get_strategy(name)
    p = s.check(PARAMS[name][0])
    full = s.signals(bars, p)
    rng = np.random.default_rng(99)
    checked = 0
    for t in (150, 233, 400, 551, 698):
        mutated = bars.copy()
        k = len(bars) - (t + 1)
        noise = 50 * np.exp(rng.normal(0, 0.3, k))
        for col in ("open", "high", "low", "close"):
            mutated.iloc[t + 1 :, mutated.columns.get_loc(col)] = noise
        after = s.signals(mutated, p)
        prefix = s.signals(bars.iloc[: t + 1], p)
        for a, b, c in zip(full.arrays(), after.arrays(), prefix.arrays(), strict=True):
            np.testing.assert_array_equal(a[: t + 1], b[: t + 1])
            np.testing.assert_array_equal(a[: t + 1], c)
        checked += int(full.long_entries[: t + 1].sum() + full.short_entries[: t + 1].sum())
        if t < 698:  # the mutation really changes later signals, so the check above has teeth
            assert any(not np.array_equal(a[t + 1 :], b[t + 1 :])
                       for a, b in zip(full.arrays(), after.arrays(), strict=True))
    assert checked > 0


@pytest.mark.parametrize("name", NAMES)
def test_signals_are_false_before_warmup(name):
    bars = random_walk(400, seed=2, wick=0.002, unit="us")
    s = get_strategy(name)
    p = s.check(PARAMS[name][1])
    w = s.warmup(p)
    sig = s.signals(bars, p)
    assert 0 < w < len(bars)
    for a in sig.arrays():
        assert not a[:w].any()
    assert any(a[w:].any() for a in sig.arrays())
    short = s.signals(bars.iloc[: w - 1], p)  # fewer bars than the warm-up: no signal at all
    assert not any(a.any() for a in short.arrays())
