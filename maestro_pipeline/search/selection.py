"""The one pick of a finished study: the best value, or a Pareto / rank / weighted choice among several objectives."""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from ..errors import MaestroError

__all__ = ["select_trial"]


def _ranks(values: np.ndarray) -> np.ndarray:
    """Per column, 1 = best (largest); ties share their average rank."""
    return np.column_stack([rankdata(-values[:, j], method="average") for j in range(values.shape[1])])


def select_trial(values: np.ndarray, selection: str, weights: dict[str, float] | None = None,
                 objectives: tuple[str, ...] = ()) -> int:
    """Index (row of ``values``: completed trials x objectives, higher is better) of the one pick.

    * one objective: the largest value (first on ties);
    * ``pareto``: among the non-dominated rows, the best average rank over all rows;
    * ``rank``: the best average rank over all rows;
    * ``weighted``: the largest weighted sum of z-scores (weights default to 1; a constant column counts 0).
    Ties always go to the earliest trial, so the pick is deterministic.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] == 0:
        raise MaestroError("no completed trials to select from")
    if values.shape[1] == 1:
        return int(np.argmax(values[:, 0]))
    if selection == "weighted":
        w = np.array([(weights or {}).get(o, 1.0) for o in objectives] if objectives else [1.0] * values.shape[1])
        sd = values.std(axis=0)
        z = np.where(sd > 0, (values - values.mean(axis=0)) / np.where(sd > 0, sd, 1.0), 0.0)
        return int(np.argmax(z @ w))
    avg_rank = _ranks(values).mean(axis=1)
    if selection == "rank":
        return int(np.argmin(avg_rank))
    if selection == "pareto":
        n = values.shape[0]
        dominated = np.zeros(n, dtype=bool)
        for i in range(n):
            better_eq = np.all(values >= values[i], axis=1) & np.any(values > values[i], axis=1)
            dominated[i] = bool(better_eq.any())
        front = np.flatnonzero(~dominated)
        return int(front[np.argmin(avg_rank[front])])
    raise MaestroError(f"unknown selection {selection!r}: use pareto, weighted or rank")

