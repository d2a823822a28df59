"""Parameter stability: do the chosen parameters wander between splits, and does each split's pick sit on a
plateau of good trials or on a lone spike?"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import MaestroError
from ._inputs import finite

__all__ = ["parameter_stability", "plateau_score"]

def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _parse_space(space: Mapping[str, Any]) -> dict[str, tuple]:
    """name -> ("num", low, high, log) or ("cat", choices).

    Accepts the strategies' ``IntParam``/``FloatParam``/``Categorical`` (duck-typed), a ``(low, high)`` tuple of
    two numbers (numeric), or any other list/tuple (categorical choices).
    """
    if not isinstance(space, Mapping) or not space:
        raise MaestroError("space must be a non-empty mapping of parameter name -> (low, high) or choices")
    out: dict[str, tuple] = {}
    for name, spec in space.items():
        if hasattr(spec, "choices"):
            out[name] = ("cat", tuple(spec.choices))
        elif hasattr(spec, "low") and hasattr(spec, "high"):
            out[name] = ("num", float(spec.low), float(spec.high), bool(getattr(spec, "log", False)))
        elif isinstance(spec, tuple) and len(spec) == 2 and all(_is_num(v) for v in spec):
            out[name] = ("num", float(spec[0]), float(spec[1]), False)
        elif isinstance(spec, (list, tuple)) and spec:
            out[name] = ("cat", tuple(spec))
        else:
            raise MaestroError(f"space[{name!r}] = {spec!r}: use a (low, high) tuple or a list of choices")
        if out[name][0] == "num":
            _, lo, hi, log = out[name]
            if not lo <= hi or (log and lo <= 0):
                raise MaestroError(f"space[{name!r}] has low={lo} > high={hi} (or a log range not above 0)")
    return out


def _numeric(name: str, params: Mapping[str, Any], where: str) -> float:
    if name not in params:
        raise MaestroError(f"{where} lacks parameter {name!r}: every entry must hold every parameter of space")
    v = params[name]
    if not _is_num(v) or not math.isfinite(float(v)):
        raise MaestroError(f"{where}: parameter {name!r} = {v!r} is not a finite number, but space says numeric")
    return float(v)


def _scale(v: np.ndarray | float, lo: float, hi: float, log: bool) -> tuple[Any, float]:
    """Values and range width on the scale the search used (log10 for log ranges)."""
    if log:
        return np.log10(v), math.log10(hi) - math.log10(lo)
    return v, hi - lo


def parameter_stability(per_split_params: Sequence[Mapping[str, Any]], space: Mapping[str, Any]) -> dict:
    """How much the chosen parameters move between splits, relative to the searched range.

    Numeric: ``std_ratio = std(ddof=0) / (high - low)`` (0 = identical every split; at most 0.5, reached
    when the picks sit half at each end) and ``range_ratio = (max - min) / (high - low)`` (1 = spread over the
    whole range); log ranges are measured in log10. Categorical: ``modal_share`` (1 = same choice every split).
    """
    spec = _parse_space(space)
    splits = list(per_split_params)
    if not splits:
        raise MaestroError("per_split_params is empty: pass the chosen parameters of at least one split")
    out: dict[str, dict] = {}
    for name, sp in spec.items():
        if sp[0] == "num":
            _, lo, hi, log = sp
            raw = np.array([_numeric(name, p, f"split {i}") for i, p in enumerate(splits)])
            v, width = _scale(raw, lo, hi, log)
            std, spread = float(np.std(v)), float(np.ptp(v))
            out[name] = {
                "kind": "numeric",
                "mean": float(np.mean(raw)),
                "std": float(np.std(raw)),
                "std_ratio": std / width if width > 0 else 0.0,
                "range_ratio": spread / width if width > 0 else 0.0,
                "values": raw.tolist(),
            }
        else:
            vals = []
            for i, p in enumerate(splits):
                if name not in p:
                    raise MaestroError(f"split {i} lacks parameter {name!r}: every split must hold every parameter")
                vals.append(p[name])
            mode, count = Counter(vals).most_common(1)[0]
            out[name] = {"kind": "categorical", "mode": mode, "modal_share": count / len(vals), "values": vals}
    return {"n_splits": len(splits), "params": out}


def plateau_score(
    ledger_params: Sequence[Mapping[str, Any]],
    values: np.ndarray,
    best_params: Mapping[str, Any],
    space: Mapping[str, Any],
    radius: float = 0.1,
) -> dict:
    """Does the best trial sit on a plateau? Median value of its neighbours relative to its own value.

    Neighbours: completed trials (finite value) whose every numeric parameter lies within ``radius`` x range
    width of the best (log10 scale for log ranges) and whose categorical parameters are equal, excluding trials
    with exactly the best parameters. ``score = max(0, median(neighbour values) / best value)``: ≈ 1 on a
    plateau, ≪ 1 on a spike. ``score`` is None (with a ``note``) when there are no neighbours or the best value
    is not positive (a ratio to a loss means nothing).
    """
    spec = _parse_space(space)
    params = list(ledger_params)
    vals = np.asarray(values, dtype=float).ravel()
    if len(params) != vals.size:
        raise MaestroError(f"ledger_params has {len(params)} entries but values has {vals.size}: pass one per trial")
    r = finite("radius", radius)
    if not r > 0:
        raise MaestroError(f"radius must be > 0 (a fraction of each numeric range, e.g. 0.1), got {r}")

    def key(p: Mapping[str, Any], where: str) -> tuple:
        out = []
        for name, sp in spec.items():
            if sp[0] == "num":
                out.append(_numeric(name, p, where))
            elif name not in p:
                raise MaestroError(f"{where} lacks parameter {name!r}: every entry must hold every parameter")
            else:
                out.append(p[name])
        return tuple(out)

    best_key = key(best_params, "best_params")
    best_vals = [v for p, v in zip(params, vals, strict=True) if np.isfinite(v) and key(p, "ledger trial") == best_key]
    if not best_vals:
        raise MaestroError("best_params is not among the completed ledger trials: pass the ledger it was chosen from")
    best = float(max(best_vals))
    neighbours = []
    for i, (p, v) in enumerate(zip(params, vals, strict=True)):
        if not np.isfinite(v):
            continue
        k = key(p, f"ledger trial {i}")
        if k == best_key:
            continue
        near = True
        for (_name, sp), a, b in zip(spec.items(), k, best_key, strict=True):
            if sp[0] == "cat":
                near = a == b
            else:
                _, lo, hi, log = sp
                (sa, sb), width = _scale(np.array([a, b]), lo, hi, log)
                near = abs(sa - sb) <= r * width + 1e-12 * max(1.0, abs(width))
            if not near:
                break
        if near:
            neighbours.append(float(v))
    result = {
        "score": None,
        "median_value": None,
        "best_value": best,
        "n_neighbours": len(neighbours),
        "radius": r,
        "note": None,
    }
    if not neighbours:
        result["note"] = f"no completed trial within radius {r} of the best: widen radius or run more trials"
        return result
    med = float(np.median(neighbours))
    result["median_value"] = med
    if best <= 0:
        result["note"] = f"best value {best:.4g} is not positive: a ratio to it would mean nothing"
        return result
    result["score"] = max(0.0, med / best)
    return result
