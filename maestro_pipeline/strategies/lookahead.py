"""The no-look-ahead check for any strategy (catalog or plugin): a signal at bar ``t`` may not depend on later bars.

Two probes at several cut points ``t`` spread over the bars, for the strategy's defaults and for its space's lowest
corner (short windows, many signals):

* **truncation** — the signals computed on ``bars[: t + 1]`` must equal the first ``t + 1`` signals computed on all
  bars (a strategy that reads ``close.shift(-1)`` sees a NaN at the cut and a price in the full run);
* **perturbation** — replacing every bar after ``t`` (prices scaled by random factors; then by nonsense) must not
  change any signal at or before ``t``.

A finding names the strategy, the probe, the parameters and the first bar whose signal changed. The research
refuses to search a strategy with a finding (the suite runs the same check over the whole catalog).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .base import Categorical, Strategy

__all__ = ["LookaheadReport", "check_lookahead"]

_SIGNALS = ("long entry", "long exit", "short entry", "short exit")


@dataclass
class LookaheadReport:
    strategy: str
    findings: list[str] = field(default_factory=list)
    checked_signals: int = 0        # signals at or before the cut points the probes compared (0: a vacuous check)
    cut_points: list[int] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.findings

    def lines(self) -> list[str]:
        if self.findings:
            return self.findings
        return [f"{self.strategy}: no look-ahead found ({self.checked_signals} signals compared at "
                f"{len(self.cut_points)} cut points)"]


def _lowest(strategy: Strategy) -> dict:
    corner = dict(strategy.defaults)
    for key, spec in strategy.space.items():
        corner[key] = spec.choices[0] if isinstance(spec, Categorical) else spec.low
    try:
        return strategy.check(corner)
    except Exception:  # noqa: BLE001 - a corner that violates a constraint (fast >= slow): the defaults only
        return strategy.check({})


def _perturbed(bars: pd.DataFrame, t: int, rng: np.random.Generator, garbage: bool) -> pd.DataFrame:
    out = bars.copy()
    k = len(bars) - (t + 1)
    for col in out.columns:
        if not np.issubdtype(out[col].dtype, np.number):
            continue
        v = out[col].to_numpy(dtype=np.float64).copy()
        if garbage:
            scale = np.nanmedian(np.abs(v)) or 1.0
            v[t + 1:] = scale * rng.uniform(0.01, 5.0, k)
        else:
            v[t + 1:] = v[t + 1:] * np.exp(rng.normal(0, 0.05, k))
        out[col] = v
    return out


def _first_change(a: np.ndarray, b: np.ndarray, upto: int) -> int | None:
    diff = np.flatnonzero(np.asarray(a[: upto + 1], dtype=bool) != np.asarray(b[: upto + 1], dtype=bool))
    return int(diff[0]) if diff.size else None


def check_lookahead(strategy: Strategy, bars: pd.DataFrame, n_cuts: int = 6, seed: int = 0) -> LookaheadReport:
    """Run both probes on ``bars`` (OHLCV on a DatetimeIndex, at least a few hundred bars past the warm-up)."""
    report = LookaheadReport(strategy.name)
    param_sets = [strategy.check({})]
    low = _lowest(strategy)
    if low != param_sets[0]:
        param_sets.append(low)
    n = len(bars)
    warm = max(int(strategy.warmup(p)) for p in param_sets)
    first = min(n - 2, warm + 2)
    cuts = sorted({int(x) for x in np.linspace(first, n - 2, n_cuts)}) if n - 2 > first else []
    report.cut_points = cuts
    rng = np.random.default_rng(seed)
    for params in param_sets:
        full = [np.asarray(a, dtype=bool) for a in strategy.signals(bars, params).arrays()]
        for t in cuts:
            prefix = strategy.signals(bars.iloc[: t + 1], params).arrays()
            probes = [("truncating the bars after", prefix)]
            for garbage in (False, True):
                after = strategy.signals(_perturbed(bars, t, rng, garbage), params).arrays()
                probes.append(("replacing the bars after" if not garbage else "filling nonsense after", after))
            for what, arrays in probes:
                for name, a, b in zip(_SIGNALS, full, arrays, strict=True):
                    k = _first_change(a, b, t)
                    if k is not None:
                        report.findings.append(
                            f"{strategy.name}: reads the future — {what} {bars.index[t]} (bar {t}) changed its "
                            f"{name} signal at {bars.index[k]} (bar {k}) with parameters {params}")
                        break
                else:
                    continue
                break
            report.checked_signals += int(sum(a[: t + 1].sum() for a in full))
            if report.findings:
                return report
    return report
