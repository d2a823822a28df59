"""The live parameters record: the live split's pick, what it may be traded with, until when, and on what evidence.

One JSON document per instrument x strategy (``SCHEMA``, documented field by field in ``docs/live.md``), built from
the walk-forward's own tables: the live row of ``split_optimal_params`` (the pick, its train window, seed and
fingerprint), the splits table (why the live split lies where it does), and the ``oos_reports`` row (the verdict).
Nothing here re-runs a search except :mod:`.reoptimize`, whose result is passed in as ``pick``.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import numpy as np
import polars as pl

from ..config import LiveConfig, RiskSettings
from ..durations import iso
from ..engine import RiskSpec, StopRule, bar_arrays
from ..errors import MaestroError
from ..evaluation import tradeable
from ..instruments import Instrument
from ..provenance import code_version
from ..schema import to_pandas_bars
from ..search import risk_spec, split_params
from ..strategies import get_strategy
from ..timeframes import timeframe_ms

__all__ = ["ENGINE_CODE", "SCHEMA", "SCHEMA_VERSION", "content_version", "live_pick", "live_record", "pick_risk",
           "spec_from_record", "stop_dict"]

SCHEMA = "maestro.live_parameters"
SCHEMA_VERSION = 1
#: The engine modules whose code the live result depends on (their hash is recorded).
ENGINE_CODE = ("maestro_pipeline.engine.reference", "maestro_pipeline.engine.risk", "maestro_pipeline.engine.exits")
#: Fields that change on every write without changing what is traded: left out of the content version.
_VOLATILE = ("generated_at", "generated_at_ms", "run_id", "data_end", "data_end_ms", "content_version")


def live_pick(params: pl.DataFrame) -> dict[str, Any] | None:
    """The live split's row of ``split_optimal_params`` (None when there is no live split)."""
    if "live" not in params.columns or not params["live"].fill_null(False).any():
        return None
    return params.filter(pl.col("live").fill_null(False)).row(0, named=True)


def stop_dict(rule: StopRule | None) -> dict[str, Any] | None:
    return None if rule is None else {"value": float(rule.value), "unit": rule.unit}


def spec_from_record(doc: dict[str, Any]) -> RiskSpec:
    """The engine's risk controls a record states (its ``risk``; no stops and all in when it has none)."""
    r = doc.get("risk") or {}

    def stop(key: str) -> StopRule | None:
        v = r.get(key)
        return None if v is None else StopRule(float(v["value"]), v["unit"])

    if not r:
        return RiskSpec()
    return RiskSpec(stop_loss=stop("stop_loss"), take_profit=stop("take_profit"), trailing_stop=stop("trailing_stop"),
                    sizing=r["sizing"], fraction=float(r["fraction"]), risk_per_trade=float(r["risk_per_trade"]),
                    max_leverage=float(r["max_leverage"]), atr_window=int(r["atr_window"]))


def pick_risk(pick_params: dict[str, Any], strategy: str, risk: RiskSettings) -> tuple[dict[str, Any], RiskSpec]:
    """(the strategy's parameters, the engine's risk controls) of a pick: fixed settings plus searched values."""
    strategy_part, risk_part = split_params(pick_params, get_strategy(strategy))
    return strategy_part, risk_spec(risk, risk_part)


def _atr_fraction(bars: pl.DataFrame, before_ms: int, window: int) -> float | None:
    """ATR(``window``) of the bars before ``before_ms`` as a fraction of the last close before it (what an ATR stop
    distance would have been for a fill at the live window's first bar)."""
    ts = bars["timestamp"].to_numpy()
    j = int(np.searchsorted(ts, before_ms))
    if j <= window:
        return None
    arrays = bar_arrays(to_pandas_bars(bars.slice(0, j)), atr_window=window)
    value = float(arrays[f"atr_{window}"][-1])
    close = float(arrays["close"][-1])
    return value / close if math.isfinite(value) and close > 0 else None


def content_version(doc: dict[str, Any]) -> str:
    """A hash of what the record says (its timestamps and run id left out): the same pick, window, verdict and
    versions give the same version, so re-writing an unchanged record adds no history."""
    body = {k: v for k, v in doc.items() if k not in _VOLATILE}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _finite(obj: Any) -> Any:
    """``obj`` with every NaN or infinite float (e.g. inside a study's recorded settings) as None: the record is
    strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def live_record(inst: Instrument, strategy: str, params: pl.DataFrame, report: dict[str, Any],
                splits_table: pl.DataFrame, bars: pl.DataFrame, risk: RiskSettings, live: LiveConfig, *,
                generated_at_ms: int, run_id: str = "", pick: dict[str, Any] | None = None,
                reoptimized: dict[str, Any] | None = None, libraries: dict[str, str] | None = None) -> dict[str, Any]:
    """The live parameters record (see module docstring). ``pick`` replaces the walk-forward's live row when the
    live pick was re-optimized after a drift alarm (``reoptimized`` says when and why)."""
    wf_pick = live_pick(params)
    row = pick if pick is not None else wf_pick
    if bars.height == 0:
        raise MaestroError(f"{inst.key}: no validated bars: materialize validated_bars first")
    data_end = int(bars["timestamp"][-1]) + timeframe_ms(inst.timeframe)
    complete = splits_table.filter(~pl.col("live")) if "live" in splits_table.columns else splits_table
    live_rows = splits_table.filter(pl.col("live")) if "live" in splits_table.columns else splits_table.clear()
    doc: dict[str, Any] = {
        "schema": SCHEMA, "schema_version": SCHEMA_VERSION,
        "instrument": inst.key, "exchange": inst.exchange, "symbol": inst.symbol, "timeframe": inst.timeframe,
        "strategy": strategy,
        "verdict": report.get("verdict", ""), "verdict_reason": report.get("verdict_reason", ""),
        "thresholds": report.get("thresholds", ""),
        "oos": {k: (_num(report.get(f"oos_{k}")) if k not in ("trades",) else int(report.get("oos_trades") or 0))
                for k in ("sharpe", "total_return", "max_drawdown", "trades")}
               | {"n_splits": int(report.get("n_splits") or 0), "first_test": report.get("first_test", ""),
                  "last_test_end": report.get("last_test_end", "")},
        "oos_end_ms": int(complete["test_end"].max()) if complete.height else None,
        "data_version": report.get("bars_data_version", ""),
        "data_end": iso(data_end), "data_end_ms": data_end,
        "code_version": {"strategy": get_strategy(strategy).code_version, "engine": code_version(*ENGINE_CODE)},
        "libraries": libraries or {},
        "reoptimized_on_drift": reoptimized,
        "tradeable_from": live.tradeable_from,
        "generated_at": iso(generated_at_ms), "generated_at_ms": int(generated_at_ms), "run_id": run_id,
    }
    if row is None:
        doc.update(params=None, risk=None, split=None, train_from="", train_to="", valid_from="", valid_until="",
                   train_start_ms=None, train_end_ms=None, valid_from_ms=None, valid_until_ms=None,
                   walk_forward_train_end_ms=None,
                   live_reason="no live split (walk_forward mode: parts re-cuts the data instead of stepping a grid)",
                   train=None, search=None, pick_note="", atr_fraction=None)
        doc["tradeable"], doc["tradeable_reason"] = False, "no live split"
        doc["content_version"] = content_version(doc)
        return doc
    has_pick = bool(row["params"])
    strategy_params, spec = pick_risk(json.loads(row["params"]), strategy, risk) if has_pick else ({}, None)
    reason = live_rows["live_reason"][0] if live_rows.height and "live_reason" in live_rows.columns else "grid"
    if reoptimized is not None:
        reason = f"re-optimized on live drift: {reoptimized.get('why', '')}"
    atr_needed = spec is not None and any(r is not None and r.unit == "atr"
                                          for r in (spec.stop_loss, spec.take_profit, spec.trailing_stop))
    doc.update(
        params=strategy_params if has_pick else None,
        risk=None if spec is None else {
            "stop_loss": stop_dict(spec.stop_loss), "take_profit": stop_dict(spec.take_profit),
            "trailing_stop": stop_dict(spec.trailing_stop), "sizing": spec.sizing, "fraction": spec.fraction,
            "risk_per_trade": spec.risk_per_trade, "max_leverage": spec.max_leverage,
            "atr_window": spec.atr_window, "described": spec.describe()},
        atr_fraction=_atr_fraction(bars, int(row["test_start"]), spec.atr_window) if atr_needed else None,
        split=int(row["split"]),
        train_from=iso(int(row["train_start"])), train_to=iso(int(row["train_end"])),
        train_start_ms=int(row["train_start"]), train_end_ms=int(row["train_end"]),
        valid_from=iso(int(row["test_start"])), valid_until=iso(int(row["test_end"])),
        valid_from_ms=int(row["test_start"]), valid_until_ms=int(row["test_end"]),
        walk_forward_train_end_ms=int(wf_pick["train_end"]) if wf_pick is not None else int(row["train_end"]),
        live_reason=reason,
        pick_note=row.get("pick_note") or "",
        train={"sharpe": _num(row.get("train_sharpe")), "total_return": _num(row.get("train_total_return")),
               "max_drawdown": _num(row.get("train_max_drawdown")), "trades": int(row.get("train_trades") or 0),
               "objective": row.get("objective", ""), "best_value": _num(row.get("best_value"))},
        search={"seed": int(row["seed"]) if row.get("seed") is not None else None,
                "sampler_settings": json.loads(row["sampler_settings"]) if row.get("sampler_settings") else {},
                "fingerprint": row.get("fingerprint", ""), "n_trials": int(row.get("n_trials") or 0)},
    )
    ok, why = tradeable(doc["verdict"], row["params"], live)
    if ok and data_end > int(row["test_end"]):
        ok, why = False, (f"the live window ended at {doc['valid_until']} and the data reaches {doc['data_end']}: "
                          "a new split is due (the re-optimization sensor requests it)")
    doc["tradeable"], doc["tradeable_reason"] = ok, why
    doc = _finite(doc)
    doc["content_version"] = content_version(doc)
    return doc
