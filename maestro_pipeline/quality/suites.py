"""The contract's great-expectations side: one ephemeral GE context and three suites per process.

* ``maestro_bars_schema``: on a one-row-per-column frame: every bar column present with its type.
* ``maestro_bars_rows``: on the bars plus derived columns (:mod:`.derive`), one expectation per row rule.
* ``maestro_bars_continuity``: on the intervals between the bars that survive the rules: gaps and gaps over
  ``max_gap``.

GE is imported lazily (~8 s) — deliberately: loading the Dagster definitions must not pay for it. The context and
suites are a documented per-process cache (:func:`clear_ge_cache` drops it).
"""

from __future__ import annotations

import threading
import time
import warnings
from typing import Any

import pandas as pd

from .derive import ROW_INDEX
from .rules import RULES

__all__ = ["clear_ge_cache", "ge_build_seconds", "ge_context", "validate"]

_GE_LOCK = threading.Lock()
#: Cache: the GE context, batch definitions and suites, built on first use (see :func:`ge_context`).
_GE: dict[str, Any] = {}

def _param(name: str) -> dict:
    return {"$PARAMETER": name}


def ge_context() -> dict[str, Any]:
    """The cached GE context, batch definitions and suites (built on first use, then reused)."""
    with _GE_LOCK:
        if _GE:
            return _GE
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import great_expectations as gx
            import great_expectations.expectations as gxe
            from great_expectations.data_context.types.base import (
                DataContextConfig,
                InMemoryStoreBackendDefaults,
                ProgressBarsConfig,
            )
        ctx = gx.get_context(
            mode="ephemeral",
            project_config=DataContextConfig(
                store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
                progress_bars=ProgressBarsConfig(globally=False),
                analytics_enabled=False,
            ),
        )
        ds = ctx.data_sources.add_pandas("maestro")
        batch_defs = {
            name: ds.add_dataframe_asset(name).add_batch_definition_whole_dataframe("partition")
            for name in ("schema", "rows", "continuity")
        }

        def suite(name: str, exps: list) -> Any:
            s = gx.ExpectationSuite(name=name, meta={"notes": "Maestro's bar contract (maestro_pipeline/contract.py)"})
            for e in exps:
                s.add_expectation(e)
            return ctx.suites.add(s)

        m = lambda rule: {"rule": rule,  # noqa: E731
                          "notes": f"Maestro rule {rule} (check {RULES[rule].check}): {RULES[rule].description}"}
        suites = {
            "schema": suite("maestro_bars_schema", [
                gxe.ExpectColumnValuesToNotBeNull(column="actual_type", meta=m("schema")),
                gxe.ExpectColumnPairValuesToBeEqual(column_A="actual_type", column_B="expected_type",
                                                    ignore_row_if="either_value_is_missing", meta=m("schema")),
            ]),
            "rows": suite("maestro_bars_rows", [
                gxe.ExpectColumnValuesToBeNull(column="null_fields", meta=m("no_nulls")),
                gxe.ExpectColumnValuesToBeIncreasing(column="timestamp", meta=m("sorted")),
                gxe.ExpectColumnValuesToBeUnique(column="timestamp", meta=m("unique_timestamps")),
                gxe.ExpectColumnValuesToBeInSet(column="ts_mod_tf", value_set=[0], meta=m("aligned_to_grid")),
                gxe.ExpectColumnValuesToBeBetween(column="timestamp", min_value=_param("first_ms"),
                                                  max_value=_param("last_ms"), meta=m("in_partition")),
                gxe.ExpectColumnValuesToBeBetween(column="ohlc_slack", min_value=0, meta=m("ohlc_consistent")),
                gxe.ExpectColumnValuesToBeBetween(column="min_price", min_value=0, strict_min=True,
                                                  meta=m("positive_prices")),
                gxe.ExpectColumnValuesToBeBetween(column="volume", min_value=0, meta=m("volume_non_negative")),
                gxe.ExpectColumnValuesToBeBetween(column="value_excess", max_value=1.0, meta=m("plausible_values")),
                gxe.ExpectColumnValuesToBeBetween(column="jump_ratio", max_value=_param("max_jump"),
                                                  meta=m("price_jumps")),
                gxe.ExpectColumnValuesToBeNull(column="copy_of", meta=m("copied_rows")),
                gxe.ExpectColumnValuesToBeBetween(column="return_z", max_value=_param("spike_z"),
                                                  meta=m("price_spikes")),
                gxe.ExpectColumnValuesToBeBetween(column="flat_run_ms", max_value=_param("max_flat_run_ms"),
                                                  meta=m("flat_runs")),
                gxe.ExpectColumnValuesToBeBetween(column="zero_volume_run_ms",
                                                  max_value=_param("max_zero_volume_run_ms"),
                                                  meta=m("zero_volume_runs")),
            ]),
            "continuity": suite("maestro_bars_continuity", [
                gxe.ExpectColumnValuesToBeBetween(column="missing_bars", max_value=0, meta=m("gaps")),
                gxe.ExpectColumnValuesToBeBetween(column="gap_ms", max_value=_param("max_gap_ms"),
                                                  meta=m("gap_over_max")),
            ]),
        }
        _GE.update(gx=gx, ctx=ctx, batch_defs=batch_defs, suites=suites, build_seconds=time.perf_counter() - t0)
        return _GE


_COMPLETE = {"result_format": "COMPLETE", "unexpected_index_column_names": [ROW_INDEX],
             "return_unexpected_index_query": False, "partial_unexpected_count": 5}


def validate(kind: str, frame: pd.DataFrame, params: dict) -> Any:
    """Validate with GE in two passes: BOOLEAN_ONLY for the whole suite (cheap), then COMPLETE (every
    unexpected row index) only for the expectations that failed. Returns the merged suite result."""
    ge = ge_context()
    suite = ge["suites"][kind]
    batch = ge["batch_defs"][kind].get_batch(batch_parameters={"dataframe": frame})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = batch.validate(suite, result_format="BOOLEAN_ONLY", expectation_parameters=params)
        if not res.success:
            for i, r in enumerate(res.results):
                if not r.success:
                    full = batch.validate(r.expectation_config.to_domain_obj(), result_format=_COMPLETE,
                                          expectation_parameters=params)
                    res.results[i] = full
    return res



def ge_build_seconds() -> float:
    """Seconds the GE context and suites took to build in this process."""
    return float(ge_context()["build_seconds"])


def clear_ge_cache() -> None:
    """Drop the cached GE context (the next validation builds a new one)."""
    with _GE_LOCK:
        _GE.clear()
