"""``raw_candles`` and ``validated_bars``: one Parquet file per month x instrument, checked before research.

Thin Dagster wrappers: fetching lives in ``maestro_pipeline.market``, the data contract (a great-expectations
suite, severities, quarantine, gaps) in ``maestro_pipeline.quality``. One partitioned asset check per contract
rule: blocking for ``error`` rules, WARN for ``drop``/``warn`` rules.

* A blocking (``error``) failure leaves the validated lake as it was (the previous version of the month, if any,
  stays), sends every row of the month to ``quarantine/asset=validated_bars/…`` with ``rule``/``reason``
  columns, fails the step (so nothing downstream runs in this run) and records the failed check (so
  ``all_deps_blocking_checks_passed`` and the re-optimization sensor hold research back in later runs).
* ``drop`` rules (copied rows by default) quarantine only the offending rows; the rest of the month is validated
  and the check fails with WARN. Missing bars are never invented: gaps travel as metadata.
"""


import time

import dagster as dg
import polars as pl

from maestro_pipeline.config import MaestroConfig
from maestro_pipeline.durations import iso, month_bounds, month_of
from maestro_pipeline.errors import MaestroError
from maestro_pipeline.lake import Lake
from maestro_pipeline.market import ingest_month
from maestro_pipeline.provenance import code_version
from maestro_pipeline.quality import (
    CHECKS,
    ERROR,
    QUARANTINE,
    block_reason,
    checks_of,
    evaluate,
    find_gaps,
    quarantine_partition,
)
from maestro_pipeline.schema import bars_hash
from resources import LakeResource, MarketDataResource

from ._common import lake_url
from .metadata import table, table_facts
from .partitions import Partitions

DATA_DOCS = "data_docs"

#: The tag Dagster reads a materialization's data version from (what ``MaterializeResult(data_version=)`` sets).
DATA_VERSION_TAG = "dagster/data_version"


class RawCandlesConfig(dg.Config):
    full_refresh: bool = False
    """Re-download the whole month instead of appending bars after the newest stored one."""


def _bars_metadata(df: pl.DataFrame, timeframe: str) -> dict:
    if df.height == 0:
        return {"rows": 0}
    gaps = find_gaps(df["timestamp"], timeframe)
    return {
        "rows": df.height,
        "first_bar": iso(int(df["timestamp"].min())),
        "last_bar": iso(int(df["timestamp"].max())),
        "gaps": len(gaps),
        "missing_bars": int(sum(g[2] for g in gaps)),
        "source": ",".join(sorted(df["source"].unique().to_list())),
        "data_version": bars_hash(df),
    }


def outside_span(inst, month: str, now_ms: int) -> str | None:
    """Why a month holds no bars of the instrument (before its start, after its end, in the future), or None."""
    m_start, m_end = month_bounds(month)
    if m_end <= inst.start_ms:
        return f"before the instrument's start ({iso(inst.start_ms)[:10]})"
    if inst.end_ms and m_start >= inst.end_ms:
        return f"after the instrument's end ({iso(inst.end_ms)[:10]})"
    if m_start >= now_ms:
        return "in the future"
    return None


def build_market_data_definitions(cfg: MaestroConfig, parts: Partitions) -> dg.Definitions:
    """``raw_candles`` and ``validated_bars`` (one step for both) with the contract checks."""
    raw_cv = code_version("maestro_pipeline.market.ingest", "maestro_pipeline.market.synthetic",
                          "maestro_pipeline.market.ccxt_source", "maestro_pipeline.market.files",
                          "maestro_pipeline.schema")
    contract_cv = code_version("maestro_pipeline.quality.rules", "maestro_pipeline.quality.derive",
                               "maestro_pipeline.quality.suites", "maestro_pipeline.quality.evaluate")
    severities = cfg.data_contract.severities()
    owners = list(cfg.owners)
    specs = [
        dg.AssetSpec(
            "raw_candles", partitions_def=parts.bars, group_name="market_data", kinds={"polars", "parquet"},
            code_version=raw_cv, skippable=True, owners=owners, tags={"stage": "bars", "layer": "raw"},
            description="OHLCV candles as the source publishes them, one file per month x instrument "
            "(data_lake/raw_candles/exchange=…/symbol=…/timeframe=…/month=…). Appends only new bars. Months outside "
            "an instrument's span are never materialized (the run log says so).",
        ),
        dg.AssetSpec(
            "validated_bars", deps=["raw_candles"], partitions_def=parts.bars, group_name="market_data",
            kinds={"polars", "parquet", "great_expectations"}, code_version=contract_cv, skippable=True,
            owners=owners, tags={"stage": "bars", "layer": "validated"},
            description="Bars that satisfy the data contract (a great-expectations suite). A month failing an error "
            "rule is a failed partition, never a materialization (its rows go to quarantine/, the previous version "
            "stays); rows failing a drop rule are quarantined and the rest validated. Gaps are reported, never "
            "filled. Data Docs: data_lake/data_docs/asset=validated_bars/….",
        ),
        dg.AssetSpec(
            QUARANTINE, deps=["raw_candles"], partitions_def=parts.bars, group_name="market_data",
            kinds={"polars", "parquet"}, code_version=contract_cv, skippable=True, owners=owners,
            tags={"stage": "bars", "layer": "quarantine"},
            description="Rows the data contract rejected, with rule and reason columns "
            "(data_lake/quarantine/asset=validated_bars/…): every row of a blocked month, the offending rows of a "
            "drop rule. Materialized only for months that have any.",
        ),
    ]
    check_specs = [
        dg.AssetCheckSpec(name, asset="validated_bars", blocking=severities[name] == ERROR, partitions_def=parts.bars,
                          description=f"[{severities[name]}] {desc}")
        for name, (_, _, desc) in CHECKS.items()
    ]

    @dg.multi_asset(
        name="market_bars", specs=specs, check_specs=check_specs, can_subset=True, partitions_def=parts.bars,
        # a backfill of any number of months x instruments is one run and one step (a month takes ~0.1-0.5 s:
        # a process per partition would spend 30x that importing the libraries)
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def market_bars(context: dg.AssetExecutionContext, config: RawCandlesConfig, lake: LakeResource,
                    market: MarketDataResource):
        selected = {k.path[-1] for k in context.selected_asset_keys}
        keys = context.partition_keys
        lk, now = lake.lake(), market.now()
        problems: list[str] = []
        in_span = 0
        t_start = time.perf_counter()
        for i, key in enumerate(keys, 1):
            dims = key.keys_by_dimension if isinstance(key, dg.MultiPartitionKey) else dict(
                zip(("instrument", "month"), str(key).split("|"), strict=True))
            try:
                inst, month = cfg.instrument(dims["instrument"]), dims["month"]
            except MaestroError as e:
                problems.append(f"{key}: {e}")
                continue
            why = outside_span(inst, month, now)
            if why:
                context.log.info(f"[{i}/{len(keys)}] {inst.key} {month}: {why}, not a partition of this instrument")
                continue
            in_span += 1
            try:
                if "raw_candles" in selected:
                    yield _raw_month(context, lk, market, inst, month, str(key), raw_cv, config.full_refresh)
                if "validated_bars" in selected:
                    events, blocked = _validate_month(context, cfg, lk, inst, month, str(key), severities,
                                                      QUARANTINE in selected)
                    yield from events
                    if blocked:
                        problems.append(blocked)
            except MaestroError as e:
                context.log.error(f"{inst.key} {month}: {e}")
                problems.append(f"{inst.key} {month}: {e}")
            if i % 12 == 0 or i == len(keys):
                context.log.info(f"[{i}/{len(keys)}] partitions done in {time.perf_counter() - t_start:.1f} s")
        if problems:  # after every other month is done: one bad month does not cost the rest of a backfill
            if in_span <= 1:
                raise dg.Failure(description=problems[0], allow_retries=False)
            raise dg.Failure(description=f"{len(problems)} of {in_span} month partition(s) failed:\n"
                             + "\n".join(problems), allow_retries=False)

    return dg.Definitions(assets=[market_bars])


def _raw_month(context, lk: Lake, market: MarketDataResource, inst, month: str, key: str, cv: str,
               full_refresh: bool) -> dg.AssetMaterialization:
    part = Lake.month_partition(inst, month)
    existing = lk.read_file("raw_candles", part) if lk.exists("raw_candles", part) else None
    res = ingest_month(market.source(inst.exchange), inst, month, existing, market.now(), full_refresh)
    meta = {**_bars_metadata(res.bars, inst.timeframe), "new_rows": res.new_rows, "instrument": inst.key}
    if res.note:
        meta["note"] = res.note
    if res.changed:
        w = lk.write_table(res.bars, "raw_candles", part,
                           lineage={"run_id": context.run_id, "partition": key, "source": inst.exchange,
                                    "code_version": cv})
        meta["path"] = dg.MetadataValue.path(str(w.path))
    if res.bars.height:
        meta.update(table_facts(res.bars))
    context.log.info(f"{inst.key} {month}: fetched {res.new_rows} new bars ({res.note or 'written'})")
    return dg.AssetMaterialization("raw_candles", partition=key, metadata=meta,
                                   tags={DATA_VERSION_TAG: meta.get("data_version", "empty")})


def _validate_month(context, cfg: MaestroConfig, lk: Lake, inst, month: str, key: str,
                    severities: dict[str, str], report_quarantine: bool) -> tuple[list, str | None]:
    """The month's check evaluations, its quarantine's and (unless blocked) its materialization; the block reason,
    if blocked."""
    part, qpart = Lake.month_partition(inst, month), quarantine_partition(inst, month)
    has_raw = lk.exists("raw_candles", part)
    raw = lk.read_file("raw_candles", part) if has_raw else pl.DataFrame()
    m_start, m_end = month_bounds(month)
    policy = cfg.data_contract.policy_for(inst.exchange, inst.key)
    t0 = time.perf_counter()
    res = evaluate(raw, inst.timeframe, policy, m_start, m_end, _previous_last_bar(lk, inst, month),
                   _next_first_bar(lk, inst, month))
    t_contract = time.perf_counter() - t0
    meta: dict = {"instrument": inst.key, "status": res.status, "raw_rows": raw.height}
    if not has_raw:
        meta["note"] = "no raw candles for this month (not fetched yet)"
    lineage = {
        "run_id": context.run_id, "partition": key,
        "upstream": {"raw_candles": Lake.lineage(lk.path("raw_candles", part))} if has_raw else {},
        "contract": res.summary(),
    }
    version, quarantined = None, None
    if raw.height:
        t1 = time.perf_counter()
        html = res.data_docs_html()
        t_docs = time.perf_counter() - t1
        with lk.transaction() as tx:
            if not res.blocked:
                w = lk.write_table(res.valid, "validated_bars", part, lineage=lineage, tx=tx)
                version = bars_hash(res.valid)
                meta["path"] = dg.MetadataValue.path(str(w.path))
            if res.quarantine.height:
                qw = lk.write_table(
                    res.quarantine, QUARANTINE, qpart, tx=tx,
                    lineage={**lineage, "reasons": [f"{k}: {o.message}" for k, o in res.failed.items()
                                                    if o.severity != "warn"]},
                )
                meta["quarantine_path"] = dg.MetadataValue.path(str(qw.path))
                quarantined = dg.AssetMaterialization(
                    QUARANTINE, partition=key,
                    metadata={"rows": res.quarantine.height, "path": dg.MetadataValue.path(str(qw.path)),
                              "rules": ", ".join(sorted(res.quarantine["rule"].unique().to_list()))
                              if "rule" in res.quarantine.columns else "", **table_facts(res.quarantine)})
            docs = lk.write_bytes(html.encode(), DATA_DOCS, qpart, "index.html", tx=tx)
        if not res.quarantine.height and lk.exists(QUARANTINE, qpart):
            lk.delete_partition(QUARANTINE, qpart)  # an earlier run's quarantine no longer applies
        meta["data_docs"] = dg.MetadataValue.path(str(docs))
        meta["data_docs_url"] = dg.MetadataValue.url(lake_url(cfg, lk, docs))
        meta["contract_seconds"] = round(t_contract, 3)
        meta["data_docs_seconds"] = round(t_docs, 3)
    meta.update(_bars_metadata(res.valid, inst.timeframe) if res.valid.height else {"rows": 0})
    meta["quarantined_rows"] = res.quarantine.height
    meta["gaps"] = len(res.gaps)
    meta["missing_bars"] = int(sum(g[2] for g in res.gaps))
    if res.gaps:
        meta["gap_ranges"] = table(pl.DataFrame(
            [{"first_missing": iso(a), "last_missing": iso(b), "missing_bars": n} for a, b, n in res.gaps]))
    meta["contract"] = table(pl.DataFrame([
        {"rule": k, "severity": o.severity,
         "result": "pass" if o.passed else ("not evaluated" if not o.evaluated else "FAIL"),
         "count": o.count, "first": ", ".join(o.first_offenders[:3])} for k, o in res.outcomes.items()]))
    meta["thresholds"] = dg.MetadataValue.json(res.params)
    events: list = [quarantined] if quarantined is not None and report_quarantine else []
    for name, outs in checks_of(res.outcomes).items():
        bad = [o for o in outs if not o.passed]
        desc = ("; ".join(f"{o.rule}: {o.message}" for o in bad) if bad
                else ("ok" if raw.height else "no rows to check"))
        md: dict = {"severity": severities[name], "action": _action(severities[name], bool(bad), res.blocked)}
        for o in outs:
            md[f"{o.rule} (count)"] = o.count
            if o.first_offenders:
                md[f"{o.rule} (first)"] = ", ".join(o.first_offenders)
        events.append(dg.AssetCheckEvaluation(
            asset_key=dg.AssetKey("validated_bars"), check_name=name, passed=not bad, description=desc,
            metadata=md, partition=key, blocking=severities[name] == ERROR,
            severity=dg.AssetCheckSeverity.ERROR if severities[name] == ERROR else dg.AssetCheckSeverity.WARN,
        ))
    if res.blocked:
        kept = lk.path("validated_bars", part)
        kept_version = bars_hash(pl.read_parquet(kept)) if kept.exists() else None
        where = (f"validated_bars keeps its previous version ({kept_version})" if kept_version
                 else "nothing validated for this month")
        reason = block_reason(f"{inst.key} {month}", inst.exchange, res.outcomes)
        context.log.error(f"{reason} [{res.quarantine.height} rows quarantined; {where}]")
        return events, reason
    if res.valid.height:
        meta.update(table_facts(res.valid))
    if version:
        meta["data_version"] = version
    context.log.info(f"{inst.key} {month}: {res.status}, {res.valid.height} bars validated, "
                     f"{res.quarantine.height} quarantined, {len(res.gaps)} gap(s)")
    events.append(dg.AssetMaterialization("validated_bars", partition=key, metadata=meta,
                                          tags={DATA_VERSION_TAG: version or "empty"}))
    return events, None


def _action(severity: str, failed: bool, blocked: bool) -> str:
    if not failed:
        return "none"
    if severity == ERROR:
        return "month blocked: every row quarantined, validated lake unchanged"
    if severity == "drop":
        return "offending rows quarantined" + ("; month blocked by another check" if blocked
                                               else ", the rest validated")
    return "reported only"


def _next_first_bar(lake: Lake, inst, month: str) -> int | None:
    """Open time of the first stored bar of the next month (raw), so a gap running into it is charged to this
    month too; ``None`` when the next month is not ingested yet."""
    nxt = month_of(month_bounds(month)[1])
    p = lake.path("raw_candles", Lake.month_partition(inst, nxt))
    if p.exists():
        ts = pl.read_parquet(p, columns=["timestamp"])["timestamp"]
        if ts.len():
            return int(ts.min())
    return None


def _previous_last_bar(lake: Lake, inst, month: str) -> int | None:
    """Open time of the last bar of the previous month (validated if present, else raw), to see gaps across
    the month boundary; ``None`` when the previous month has no data (e.g. before the instrument's start)."""
    m_start, _ = month_bounds(month)
    prev = month_of(m_start - 1)
    for asset in ("validated_bars", "raw_candles"):
        p = lake.path(asset, Lake.month_partition(inst, prev))
        if p.exists():
            ts = pl.read_parquet(p, columns=["timestamp"])["timestamp"]
            if ts.len():
                return int(ts.max())
    return None
