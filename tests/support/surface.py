"""The Dagster surface of a ``Definitions`` as plain JSON: what a user sees in the UI and what automation targets.

Asset keys (group, kinds, partitions, deps with their partition mappings, automation condition label, pool,
backfill policy, owners and tags), asset checks (blocking flags), jobs, schedules and sensors. Code versions and
descriptions are left out: they change with any edit of the source, which is exactly what a refactor does.
"""

from __future__ import annotations

from typing import Any

import dagster as dg


def _partitions(pd: Any) -> Any:
    if pd is None:
        return None
    if isinstance(pd, dg.MultiPartitionsDefinition):
        return {"multi": {d.name: _partitions(d.partitions_def) for d in pd.partitions_defs}}
    if isinstance(pd, dg.StaticPartitionsDefinition):
        return {"static": list(pd.get_partition_keys())}
    if isinstance(pd, dg.TimeWindowPartitionsDefinition):
        return {"time": {"cron": pd.cron_schedule, "start": pd.start.isoformat(), "fmt": pd.fmt,
                         "end_offset": pd.end_offset, "timezone": pd.timezone}}
    return {"other": type(pd).__name__}


def _mapping(m: Any) -> Any:
    if m is None:
        return None
    name = type(m).__name__
    dim = getattr(m, "partition_dimension_name", None)
    return f"{name}({dim})" if dim else name


def surface(defs: dg.Definitions) -> dict[str, Any]:
    assets: dict[str, Any] = {}
    checks: dict[str, Any] = {}
    graph = defs.resolve_asset_graph()
    for spec in sorted(defs.resolve_all_asset_specs(), key=lambda s: s.key.to_user_string()):
        key = spec.key.to_user_string()
        ad = defs.resolve_assets_def(spec.key)
        node = graph.get(spec.key)
        assets[key] = {
            "group": spec.group_name,
            "kinds": sorted(spec.kinds),
            "partitions": _partitions(spec.partitions_def),
            "deps": sorted(f"{d.asset_key.to_user_string()} [{_mapping(d.partition_mapping)}]" for d in spec.deps),
            "automation": spec.automation_condition.get_label() if spec.automation_condition else None,
            "pool": getattr(ad.op, "pool", None) if ad.is_executable else None,
            "backfill_policy": str(ad.backfill_policy) if ad.backfill_policy else None,
            "owners": sorted(spec.owners),
            "tags": {k: v for k, v in sorted(spec.tags.items()) if not k.startswith("dagster/kind/")},
            "is_materializable": node.is_materializable,
        }
        for check in ad.check_specs:
            checks[f"{key}:{check.name}"] = {"blocking": check.blocking,
                                             "partitioned": check.partitions_def is not None}
    jobs = {}
    for job in sorted(defs.resolve_all_job_defs(), key=lambda j: j.name):
        if job.name.startswith("__"):
            continue
        sel = sorted(k.to_user_string() for k in job.asset_layer.selected_asset_keys)
        jobs[job.name] = {"assets": sel, "partitions": _partitions(job.partitions_def)}
    schedules = {
        s.name: {"cron": s.cron_schedule, "timezone": s.execution_timezone, "job": s.job_name,
                 "default_status": s.default_status.value}
        for s in sorted(defs.schedules or [], key=lambda s: s.name)
    }
    sensors = {
        s.name: {"type": type(s).__name__, "default_status": s.default_status.value,
                 "minimum_interval_seconds": s.minimum_interval_seconds,
                 "jobs": sorted(j.name for j in s.jobs) if s.has_jobs else []}
        for s in sorted(defs.sensors or [], key=lambda s: s.name)
    }
    return {"assets": assets, "checks": checks, "jobs": jobs, "schedules": schedules, "sensors": sensors}
