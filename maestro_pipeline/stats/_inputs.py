"""Input checks and constants the statistics modules share (private to :mod:`maestro_pipeline.stats`)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import MaestroError

#: A variance below this fraction of the mean square is float noise of a constant series: its std counts as 0.
ZERO_VAR_RTOL = 1e-12
#: Cap on elements per vectorized chunk (bootstrap samples, CSCV combinations), to bound memory.
CHUNK_ELEMENTS = 2_000_000


def finite(name: str, value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise MaestroError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise MaestroError(f"{name} must be finite, got {v}: compute it from finite returns")
    return v


def count(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise MaestroError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)

def returns_1d(name: str, values: Any, min_len: int) -> np.ndarray:
    x = np.asarray(values, dtype=float)
    if x.ndim != 1:
        raise MaestroError(f"{name} must be one-dimensional, got shape {x.shape}")
    if x.size < min_len:
        raise MaestroError(f"{name} needs at least {min_len} values, got {x.size}")
    if not np.all(np.isfinite(x)):
        raise MaestroError(f"{name} contains NaN or inf: drop or fill those periods first")
    return x


def sharpe(x: np.ndarray) -> float:
    """Per-period Sharpe, ddof=1; 0 for a constant series."""
    sd = float(np.std(x, ddof=1))
    if sd * sd <= ZERO_VAR_RTOL * float(np.mean(x * x)):
        return 0.0
    return float(np.mean(x)) / sd
