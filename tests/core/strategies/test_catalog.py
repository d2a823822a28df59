"""The strategy catalog (issue #5): every registered strategy is causal, validates its parameters, has an
honest warm-up and says when it trades on a proxy instead of derivatives data. Synthetic bars, no network."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from maestro_pipeline.errors import MaestroError
from maestro_pipeline.schema import to_pandas_bars
from maestro_pipeline.strategies import FloatParam, IntParam, Signals, Strategy, available_strategies, get_strategy
from tests.support.bars import synthetic_bars, with_derivatives
from tests.support.config import NOW_MS

#: The seed system's 22 strategies (DESIGN §6).
CATALOG = {
    "ema_cross", "rsi", "bollinger", "macd", "channel",
    "ichimoku", "ma_cross", "fernando", "macd_x", "vwap", "scalp_rsi", "momentum_breakout", "stoch_rsi",
    "ema_ribbon", "funding_rate_arbitrage", "basis", "open_interest_divergence", "liquidation_hunt", "grid",
    "volatility_breakout", "atr_trend", "mean_reversion_bands",
}  # fmt: skip
DERIVATIVES = {"funding_rate_arbitrage", "basis", "open_interest_divergence", "liquidation_hunt"}
#: Strategies with recursive (EMA) indicators: their warm-up is a documented bound, so a signal may flip where
#: an indicator sits within ~e**-8 of its threshold. Every other strategy must match bit for bit.
RECURSIVE = {"ema_cross", "macd", "macd_x", "ema_ribbon", "funding_rate_arbitrage"}
DERIV_COLUMNS = ("funding_rate", "open_interest", "mark_price", "index_price")
NAMES = available_strategies()

HOUR = 3_600_000


UNTIL = NOW_MS - 5 * 24 * HOUR
BARS = to_pandas_bars(synthetic_bars(UNTIL - 1500 * HOUR, UNTIL, seed=7, now_ms=NOW_MS))
assert len(BARS) == 1500
BARS_D = with_derivatives(BARS)  # funding set every 8 bars and forward-filled from past settlements only


def _variants(name: str) -> list[tuple[str, pd.DataFrame]]:
    out = [("plain", BARS)]
    if name in DERIVATIVES or get_strategy(name).optional_columns:
        out.append(("derivatives", BARS_D))
    return out


def _raw_params(s: Strategy, rng: np.random.Generator) -> dict:
    """Every searched parameter drawn from its declared range (cross-parameter rules not applied)."""
    p = {}
    for k, spec in s.space.items():
        if isinstance(spec, IntParam):
            p[k] = int(rng.integers(spec.low, spec.high + 1))
        elif isinstance(spec, FloatParam):
            lo, hi = (math.log(spec.low), math.log(spec.high)) if spec.log else (spec.low, spec.high)
            v = float(rng.uniform(lo, hi))
            p[k] = min(max(math.exp(v) if spec.log else v, spec.low), spec.high)
        else:
            p[k] = spec.choices[int(rng.integers(len(spec.choices)))]
    return p


def _random_params(s: Strategy, rng: np.random.Generator, tries: int = 200) -> dict | None:
    """A random parameter set from the strategy's space that passes its constraints (None if none found)."""
    for _ in range(tries):
        try:
            return s.check(_raw_params(s, rng))
        except MaestroError:
            continue
    return None


def _small_params(s: Strategy, rng: np.random.Generator) -> dict:
    """A random valid set whose warm-up leaves room in BARS (so the comparison is not vacuous)."""
    for _ in range(50):
        p = _random_params(s, rng)
        if p is not None and s.warmup(p) < len(BARS) // 3:
            return p
    return s.check({})


# ----------------------------------------------------------------------------- registry


def test_registry_holds_the_full_catalog():
    missing = CATALOG - set(NAMES)
    assert not missing, f"strategies missing from the registry: {sorted(missing)}"
    assert NAMES == sorted(NAMES) and len(NAMES) == len(set(NAMES))
    for name in CATALOG:
        s = get_strategy(name)
        assert isinstance(s, Strategy) and s.name == name
        assert isinstance(s.description, str) and s.description.strip().endswith(".") and "\n" not in s.description
        assert set(s.space) <= set(s.defaults)
        assert s.check({}) == s.check(dict(s.defaults))


@pytest.mark.parametrize("name", sorted(CATALOG - {"ema_cross", "rsi", "bollinger", "macd", "channel"}))
def test_new_strategies_document_their_rule(name):
    import sys

    s = get_strategy(name)
    doc = sys.modules[type(s).__module__].__doc__ or ""
    assert len(doc) > 200 and "Rule" in doc and "arm-up" in doc, name
    for k in s.defaults:
        assert k in s.space, f"{name}.{k} has no search range"


def test_shared_kernels_are_part_of_code_version():
    from maestro_pipeline.strategies.base import _helper_modules

    assert "maestro_pipeline.strategies._indicators" in _helper_modules(type(get_strategy("fernando")).__module__)
    assert _helper_modules(type(get_strategy("ema_cross")).__module__) == []


# ----------------------------------------------------------------------------- causality


def _perturbed(bars: pd.DataFrame, t: int, rng: np.random.Generator, garbage: bool) -> pd.DataFrame:
    out = bars.copy()
    k = len(bars) - (t + 1)
    for col in out.columns:
        v = out[col].to_numpy(dtype=np.float64).copy()
        if garbage:  # NaN-free nonsense: inconsistent OHLC, wild volume and derivatives data
            scale = np.nanmedian(np.abs(v)) or 1.0
            v[t + 1 :] = scale * rng.uniform(0.01, 5.0, k) * (1 if col != "funding_rate" else rng.choice([-1, 1], k))
        else:
            v[t + 1 :] = v[t + 1 :] * np.exp(rng.normal(0, 0.05, k))
        out[col] = v
    return out


@pytest.mark.parametrize("name", NAMES)
def test_no_look_ahead(name):
    """Changing bars after t never changes any signal at or before t (with and without derivatives columns)."""
    s = get_strategy(name)
    rng = np.random.default_rng(abs(hash(name)) % 2**32)
    param_sets = [s.check({}), _small_params(s, np.random.default_rng(5))]
    checked, changed = 0, 0
    for label, bars in _variants(name):
        for p in param_sets:
            full = s.signals(bars, p).arrays()
            for t in (260, 555, 901, 1249, len(bars) - 2):
                prefix = s.signals(bars.iloc[: t + 1], p).arrays()
                for a, c in zip(full, prefix, strict=True):
                    np.testing.assert_array_equal(a[: t + 1], c, err_msg=f"{name} {label} {p} prefix t={t}")
                for garbage in (False, True):
                    after = s.signals(_perturbed(bars, t, rng, garbage), p).arrays()
                    for a, b in zip(full, after, strict=True):
                        np.testing.assert_array_equal(
                            a[: t + 1], b[: t + 1], err_msg=f"{name} {label} {p} t={t} garbage={garbage}"
                        )
                    changed += any(not np.array_equal(a[t + 1 :], b[t + 1 :]) for a, b in zip(full, after, strict=True))
                checked += sum(int(a[: t + 1].sum()) for a in full)
    assert checked > 0, f"{name}: no signal before the cut points, the check is vacuous"
    assert changed > 0, f"{name}: perturbing the future never changed a later signal, the check is vacuous"


# ----------------------------------------------------------------------------- parameters


def _out_of_range(spec) -> object:
    if isinstance(spec, IntParam):
        return spec.high + 1
    if isinstance(spec, FloatParam):
        return spec.high * 2 + 1
    return object()


#: For each new strategy with cross-parameter rules: a set that breaks one, and words the message must contain.
CONSTRAINT_CASES = {
    "ma_cross": ({"fast": 60, "slow": 60}, ["fast", "slow"]),
    "ichimoku": ({"tenkan": 30, "kijun": 20}, ["tenkan", "kijun"]),
    "fernando": ({"vli_fast": 50, "vli_slow": 40}, ["vli_fast", "vli_slow"]),
    "macd_x": ({"fast": 30, "slow": 20}, ["fast", "slow"]),
    "scalp_rsi": ({"exit_level": 30.0, "oversold": 40.0}, ["exit_level", "oversold"]),
    "momentum_breakout": ({"lookback": 10, "exit_lookback": 30}, ["exit_lookback", "lookback"]),
    "ema_ribbon": ({"fast": 20, "slow": 22, "lines": 6}, ["fast", "slow", "lines"]),
    "funding_rate_arbitrage": ({"entry_z": 1.5, "exit_z": 1.8}, ["entry_z", "exit_z"]),
    "basis": ({"entry_z": 1.0, "exit_z": 1.0}, ["entry_z", "exit_z"]),
    "volatility_breakout": ({"window": 60, "base_window": 40}, ["base_window", "window"]),
    "mean_reversion_bands": ({"entry_z": 1.5, "exit_z": 1.5}, ["entry_z", "exit_z"]),
}


@pytest.mark.parametrize("name", NAMES)
def test_impossible_parameters_raise_clear_errors(name):
    s = get_strategy(name)
    with pytest.raises(MaestroError) as e:
        s.check({"no_such_param": 1})
    assert name in str(e.value) and "no_such_param" in str(e.value)
    for key, spec in s.space.items():
        with pytest.raises(MaestroError) as e:
            s.check({key: _out_of_range(spec)})
        msg = str(e.value)
        assert name in msg and key in msg and "\n" not in msg, msg
    if name in CONSTRAINT_CASES:
        bad, needles = CONSTRAINT_CASES[name]
        if needles is None:
            s.check(bad)
        else:
            with pytest.raises(MaestroError) as e:
                s.check(bad)
            msg = str(e.value)
            assert name in msg and "\n" not in msg
            for needle in needles:
                assert needle in msg, (needle, msg)
    # random sets from the space are accepted or rejected with a one-line MaestroError, never another exception
    rng = np.random.default_rng(3)
    rejected = 0
    for _ in range(300):
        try:
            s.check(_raw_params(s, rng))
        except MaestroError as exc:
            rejected += 1
            assert name in str(exc) and "\n" not in str(exc)
    if name in CONSTRAINT_CASES:
        assert rejected > 0, f"{name}: no set inside the space breaks its constraints"


# ----------------------------------------------------------------------------- warm-up


@pytest.mark.parametrize("name", NAMES)
def test_signals_are_false_during_warmup_and_warmup_is_honest(name):
    s = get_strategy(name)
    param_sets = [s.check({}), _small_params(s, np.random.default_rng(11))]
    for label, bars in _variants(name):
        for i, p in enumerate(param_sets):
            w = int(s.warmup(p))
            assert 0 < w < len(bars) // 2, (name, p, w)
            sig = s.signals(bars, p)
            assert isinstance(sig, Signals) and len(sig) == len(bars)
            full = sig.arrays()
            for a in full:
                assert a.dtype == bool and a.shape == (len(bars),)
                assert not a[:w].any(), f"{name} {label} {p}: signal inside the warm-up"
            if i == 0:
                assert any(a[w:].any() for a in full), f"{name} {label}: no signal at all with the defaults"
                assert sig.long_entries.any() or sig.short_entries.any(), f"{name} {label}: never enters"
            short = s.signals(bars.iloc[: w - 1], p) if w > 1 else None
            if short is not None:
                assert not any(a.any() for a in short.arrays())
            # signals from bars[start - w:] equal the full-history ones from start on: many starts, each on a
            # short slice (w bars of warm-up + 40 bars compared), plus a few long ones
            compared = mismatched = 0
            slices = [(start, start + 40) for start in range(w + 3, len(bars) - 40, 5)]
            slices += [(w + 11, len(bars)), (len(bars) // 2, len(bars))]
            for start, end in slices:
                sub = s.signals(bars.iloc[start - w : end], p).arrays()
                for a, b in zip(full, sub, strict=True):
                    got, want = b[w:], a[start:end]
                    compared += got.size
                    mismatched += int((got != want).sum())
                    if name not in RECURSIVE or (label == "derivatives" and name == "funding_rate_arbitrage"):
                        np.testing.assert_array_equal(got, want, err_msg=f"{name} {label} {p} start={start}")
            assert mismatched <= 0.002 * compared, (name, label, p, mismatched, compared)


# ----------------------------------------------------------------------------- derivatives data


@pytest.mark.parametrize("name", NAMES)
def test_data_note_says_when_a_proxy_is_used(name):
    s = get_strategy(name)
    if name in DERIVATIVES:
        assert s.optional_columns and set(s.optional_columns) <= set(DERIV_COLUMNS)
    if not s.optional_columns:
        assert s.data_note(BARS) is None and s.data_note(BARS_D) is None
        return
    note = s.data_note(BARS)
    assert isinstance(note, str) and "not available" in note and "proxy" in note, note
    assert note[0].islower() or note[0].isupper()
    assert note.endswith(".") and "\n" not in note and len(note.split()) >= 8, note
    assert s.data_note(BARS_D) is None
    assert s.data_note(BARS, s.check({})) == note  # defaults spelled out or implied: same sentence
    # the real columns are used: the signals differ from the proxy's
    p = s.check({})
    plain, deriv = s.signals(BARS, p).arrays(), s.signals(BARS_D, p).arrays()
    assert any(not np.array_equal(a, b) for a, b in zip(plain, deriv, strict=True)), name


def test_base_data_note_default():
    class Needs(Strategy):
        name, description, defaults, space = "needs", "test.", {}, {}
        optional_columns = ("open_interest", "funding_rate")

        def warmup(self, params):
            return 0

        def signals(self, bars, params):
            z = np.zeros(len(bars), bool)
            return self.finish(bars, params, z, z, z, z)

    s = Needs()
    assert s.data_note(BARS_D) is None
    note = s.data_note(BARS)
    assert "open_interest" in note and "funding_rate" in note and note.endswith(".")
    assert s.data_note(BARS_D.drop(columns=["funding_rate"])).startswith("funding_rate not available")
    assert get_strategy("ema_cross").data_note(BARS) is None


# ----------------------------------------------------------------------------- kernels


def test_indicator_kernels_match_independent_references():
    import vectorbt as vbt

    from maestro_pipeline.strategies import _indicators as ind

    c, h, lo = BARS["close"], BARS["high"], BARS["low"]
    np.testing.assert_allclose(ind.sma(c, 20), c.rolling(20).mean(), rtol=1e-10)
    np.testing.assert_allclose(ind.mstd(c, 20), c.rolling(20).std(ddof=0), rtol=1e-9)
    np.testing.assert_array_equal(ind.rolling_max(h, 15), h.rolling(15).max())
    np.testing.assert_array_equal(ind.rolling_min(lo, 15), lo.rolling(15).min())
    np.testing.assert_allclose(ind.rsi(c.to_numpy(), 14), vbt.RSI.run(c, 14).rsi.to_numpy(), rtol=1e-9)
    tr = pd.concat([h - lo, (h - c.shift()).abs(), (lo - c.shift()).abs()], axis=1).max(axis=1, skipna=False)
    np.testing.assert_allclose(ind.atr(h, lo, c, 14), tr.rolling(14).mean(), rtol=1e-10)
    np.testing.assert_allclose(ind.ema(c, 9), c.ewm(span=9, adjust=False).mean().where(np.arange(len(c)) >= 8),
                               rtol=1e-12)
    # finite windows are bit-identical whatever bar the history starts at
    for f in (lambda x: ind.sma(x, 30), lambda x: ind.mstd(x, 30), lambda x: ind.rsi(x, 14)):
        whole, part = f(c.to_numpy()), f(c.to_numpy()[700:])
        np.testing.assert_array_equal(whole[760:], part[60:])
