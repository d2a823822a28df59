"""Parameter-stability charts as PNG bytes: the chosen parameters per split (heatmap) and a split's trial surface."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ..errors import MaestroError
from .charts import png_bytes
from .quantstats import quiet

__all__ = ["param_heatmap_png", "param_surface_png"]


# parameter stability
# --------------------------------------------------------------------------------------------------


def _param_axis(name: str, spec: Any) -> tuple[str, Any]:
    """('num', (low, high, log)) or ('cat', choices) from an IntParam/FloatParam/Categorical, a (low, high)
    tuple, or a list of choices."""
    if hasattr(spec, "choices"):
        return "cat", tuple(spec.choices)
    if hasattr(spec, "low") and hasattr(spec, "high"):
        low, high, log = spec.low, spec.high, bool(getattr(spec, "log", False))
    elif isinstance(spec, tuple) and len(spec) == 2:
        (low, high), log = spec, False
    elif isinstance(spec, (list, tuple)) and len(spec) > 0:
        return "cat", tuple(spec)
    else:
        raise MaestroError(
            f"search space entry {name!r}={spec!r} must be a (low, high) tuple, a list of choices, "
            "or an IntParam/FloatParam/Categorical"
        )
    try:
        low, high = float(low), float(high)
    except (TypeError, ValueError):
        raise MaestroError(f"search space entry {name!r}: low/high must be numbers, got {spec!r}") from None
    if not (math.isfinite(low) and math.isfinite(high) and low <= high) or (log and low <= 0):
        raise MaestroError(f"search space entry {name!r}: need finite low <= high (and low > 0 on a log scale), "
                           f"got {spec!r}")
    return "num", (low, high, log)


def _position(kind: str, axis: Any, value: Any) -> float:
    """Where ``value`` sits in its search range, 0 (low / first choice) .. 1 (high / last choice); NaN if unknown."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return float("nan")
    if kind == "cat":
        matches = [i for i, ch in enumerate(axis) if ch == value or str(ch) == str(value)]
        if not matches:
            return float("nan")
        return matches[0] / (len(axis) - 1) if len(axis) > 1 else 0.5
    low, high, log = axis
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise MaestroError(f"parameter value {value!r} is not a number but its search range is numeric") from None
    if high == low:
        return 0.5
    if log:
        return (math.log(v) - math.log(low)) / (math.log(high) - math.log(low)) if v > 0 else float("nan")
    return (v - low) / (high - low)


def _label(value: Any) -> str:
    if isinstance(value, (float, np.floating)) and not float(value).is_integer():
        return f"{float(value):.3g}"
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return str(int(value)) if math.isfinite(float(value)) else "–"
    return str(value)


def _heatmap_figure(per_split_params: Any, space: dict, title: str = "") -> tuple[Any, np.ndarray]:
    """(Figure, positions[param, split]) of :func:`param_heatmap_png`."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if isinstance(per_split_params, pd.DataFrame):
        df = per_split_params.copy()
    elif isinstance(per_split_params, (list, tuple)) and all(isinstance(r, dict) for r in per_split_params):
        df = pd.DataFrame(list(per_split_params))
    else:
        raise MaestroError("per_split_params must be a DataFrame or a list of dicts (one per split: split + params)")
    if df.empty:
        raise MaestroError("per_split_params is empty: no optimized split to show")
    if not isinstance(space, dict) or not space:
        raise MaestroError("space must be a non-empty dict: parameter name -> (low, high) or choices")
    missing = [k for k in space if k not in df.columns]
    if missing:
        raise MaestroError(f"per_split_params lack the searched parameter(s) {', '.join(missing)}")
    if "split" not in df.columns:
        df.insert(0, "split", np.arange(len(df)))
    df = df.sort_values("split", kind="stable").reset_index(drop=True)
    axes = {name: _param_axis(name, spec) for name, spec in space.items()}
    names = list(space)
    pos = np.array([[_position(*axes[n], v) for v in df[n]] for n in names], dtype="float64")

    n_rows, n_cols = pos.shape
    rc = {"font.family": "DejaVu Sans", "font.size": 9, "axes.titlesize": 10}
    with quiet(), matplotlib.rc_context(rc=rc):
        fig = Figure(figsize=(10, 5), dpi=80)
        FigureCanvasAgg(fig)
        ax = fig.subplots()
        cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#d9d9d9")
        im = ax.imshow(np.ma.masked_invalid(pos), cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto",
                       interpolation="nearest")
        if n_cols <= 40:
            size = 8 if n_cols <= 12 else 6
            for i, n in enumerate(names):
                for j, v in enumerate(df[n]):
                    p = pos[i, j]
                    ax.text(j, i, _label(v), ha="center", va="center", fontsize=size,
                            color="white" if (math.isfinite(p) and p < 0.6) else "black")
        ax.set_xticks(range(n_cols), [str(s) for s in df["split"]])
        ylabels = [
            f"{n}\n{'choice' if axes[n][0] == 'cat' else f'{_label(axes[n][1][0])}..{_label(axes[n][1][1])}'}"
            for n in names
        ]
        ax.set_yticks(range(n_rows), ylabels)
        ax.set_xlabel("walk-forward split")
        ax.set_title(title or "Chosen parameters per split (colour = position in search range)")
        cb = fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
        cb.set_label("position in search range")
        widest = max(len(line) for lab in ylabels for line in lab.split("\n"))
        fig.subplots_adjust(left=min(0.35, 0.03 + 0.0085 * widest), right=0.93, bottom=0.11, top=0.93)
    return fig, pos


def param_heatmap_png(per_split_params: pd.DataFrame | list[dict], space: dict, title: str = "") -> bytes:
    """PNG (800x400 px) heatmap of the parameters chosen per walk-forward split: rows = parameters (order of
    ``space``), columns = splits, each cell coloured by the value's position in its search range (0 = low,
    1 = high; log-scaled for ``FloatParam(log=True)``) and annotated with the value. Stable choices show as
    flat rows, a parameter that jumps across its range from split to split does not generalize.

    ``space``: name -> ``(low, high)`` tuple, a *list* of categorical choices, or the strategy's
    IntParam/FloatParam/Categorical; categorical values are coloured by choice index / (n - 1). Extra columns
    (fixed params) are ignored; a value not in its choices (or missing) is a grey cell.
    """
    fig, _ = _heatmap_figure(per_split_params, space, title)
    with quiet():
        return png_bytes(fig)


def param_surface_png(
    trials: pd.DataFrame, x: str, y: str, best: dict, value: str = "value", title: str = ""
) -> bytes:
    """PNG (800x500 px) of trial objective values over two numeric parameters: each trial a dot coloured by
    its value over a binned mean-value background, the chosen ``best`` point starred. A broad bright
    region around the star is a plateau (robust); a lone bright dot among dark ones is a spike (fragile).

    ``trials``: one row per trial with columns ``x``, ``y`` and ``value`` (pick ``x``/``y`` as the two most
    important numeric parameters); ``best``: the chosen parameters (needs ``x`` and ``y``). Trials with a
    non-finite value (failed or pruned) are left out.
    """
    fig = _surface_figure(trials, x, y, best, value, title)
    with quiet():
        return png_bytes(fig)


def _surface_figure(trials: pd.DataFrame, x: str, y: str, best: dict, value: str = "value", title: str = "") -> Any:
    """The Figure of :func:`param_surface_png` (Agg canvas attached, not drawn)."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    if not isinstance(trials, pd.DataFrame):
        raise MaestroError(f"trials must be a DataFrame with columns {x!r}, {y!r}, {value!r}, "
                           f"got {type(trials).__name__}")
    missing = [c for c in (x, y, value) if c not in trials.columns]
    if missing:
        raise MaestroError(f"trials lack column(s) {', '.join(map(repr, missing))} "
                           f"(have: {', '.join(map(str, trials.columns))})")
    if not isinstance(best, dict) or x not in best or y not in best:
        raise MaestroError(f"best must be a dict holding the chosen {x!r} and {y!r}")
    try:
        xs, ys, vs = (pd.to_numeric(trials[c], errors="raise").to_numpy(dtype="float64") for c in (x, y, value))
        bx, by = float(best[x]), float(best[y])
    except (TypeError, ValueError) as exc:
        raise MaestroError(f"param_surface_png needs numeric {x!r}, {y!r} and {value!r}: {exc}") from None
    ok = np.isfinite(xs) & np.isfinite(ys) & np.isfinite(vs)
    if not ok.any():
        raise MaestroError("trials have no finite (x, y, value) row: nothing to draw")
    xs, ys, vs = xs[ok], ys[ok], vs[ok]

    def _range(a: np.ndarray, b: float) -> tuple[float, float]:
        lo, hi = min(a.min(), b), max(a.max(), b)
        return (lo - 0.5, hi + 0.5) if hi == lo else (lo, hi)

    rx, ry = _range(xs, bx), _range(ys, by)
    nb = int(min(12, max(2, math.sqrt(len(xs)))))
    total, ex, ey = np.histogram2d(xs, ys, bins=nb, range=[rx, ry], weights=vs)
    count, _, _ = np.histogram2d(xs, ys, bins=nb, range=[rx, ry])
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.ma.masked_invalid(total / count)
    norm = Normalize(vmin=float(vs.min()), vmax=float(vs.max()) if vs.max() > vs.min() else float(vs.min()) + 1e-12)
    rc = {"font.family": "DejaVu Sans", "font.size": 9, "axes.titlesize": 10, "legend.fontsize": 8}
    with quiet(), matplotlib.rc_context(rc=rc):
        fig = Figure(figsize=(10, 6.25), dpi=80)
        FigureCanvasAgg(fig)
        ax = fig.subplots()
        ax.pcolormesh(ex, ey, mean.T, cmap="viridis", norm=norm, alpha=0.45, shading="flat")
        sc = ax.scatter(xs, ys, c=vs, cmap="viridis", norm=norm, s=28, edgecolors="black", linewidths=0.4, zorder=3)
        ax.scatter([bx], [by], marker="*", s=320, color="#d62728", edgecolors="white", linewidths=1.0, zorder=5,
                   label=f"chosen: {x}={_label(best[x])}, {y}={_label(best[y])}", gid="best")
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        ax.legend(loc="upper left")
        ax.set_title(title or f"{len(vs)} trials: {value} over {x} x {y}")
        fig.colorbar(sc, ax=ax, fraction=0.04, pad=0.02).set_label(value)
        ax.set_xlim(rx[0] - 0.02 * (rx[1] - rx[0]), rx[1] + 0.02 * (rx[1] - rx[0]))
        ax.set_ylim(ry[0] - 0.02 * (ry[1] - ry[0]), ry[1] + 0.02 * (ry[1] - ry[0]))
        fig.subplots_adjust(left=0.08, right=0.94, bottom=0.08, top=0.94)
    return fig
