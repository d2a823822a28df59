"""``live:`` — handing the live split's parameters to a bot, and watching them trade.

```yaml
live:
  tradeable_from: promising    # the weakest verdict an export may call tradeable (robust | promising | weak)
  band_level: 0.95             # the bootstrap band's central probability
  band_resamples: 2000         # bootstrap paths of the stitched OOS returns
  band_seed: 0
  min_live_bars: 24            # fewer bars traded live: too early to judge drift
  reoptimize_on_drift: false   # true: a live result outside the band re-optimizes that strategy's live pick
  freqtrade_class: {}          # strategy -> the freqtrade strategy class that reads the file (default CamelCase)
```
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from ..strategies import available_strategies
from ._base import Section, closest

__all__ = ["TRADEABLE_VERDICTS", "LiveConfig"]

#: The verdicts ``tradeable_from`` may name, best first (the order of ``evaluation.VERDICT_RANK``).
TRADEABLE_VERDICTS = ("robust", "promising", "weak")
_CLASS_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class LiveConfig(Section):
    """When the live parameters may be traded, and how their live result is compared with the walk-forward."""

    #: An export is ``tradeable: true`` only when the verdict is this one or better.
    tradeable_from: Literal["robust", "promising", "weak"] = "promising"
    #: The band holds this central share of the bootstrapped horizon returns.
    band_level: float = Field(0.95, gt=0.5, lt=1)
    band_resamples: int = Field(2000, ge=100, le=100_000)
    band_seed: int = Field(0, ge=0)
    #: Below this many live bars the drift check says "too early" and raises no alarm.
    min_live_bars: int = Field(24, ge=2, le=100_000)
    #: A live result outside the band makes live_parameters search that strategy again on data up to the alarm.
    reoptimize_on_drift: bool = False
    #: The freqtrade strategy class name per Maestro strategy (the parameter file's ``strategy_name``).
    freqtrade_class: dict[str, str] = {}

    @field_validator("freqtrade_class")
    @classmethod
    def _classes(cls, v: dict[str, str]) -> dict[str, str]:
        avail = available_strategies()
        for name, klass in v.items():
            if name not in avail:
                raise ValueError(f"unknown strategy {name!r}{closest(name, avail)}")
            if not _CLASS_RE.match(klass):
                raise ValueError(f"{name}: {klass!r} is not a Python class name (freqtrade matches the file's "
                                 "strategy_name against the class name)")
        return v
