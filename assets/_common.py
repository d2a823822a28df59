"""Small helpers shared by the asset modules: code versions, metadata, user errors as readable failures."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import dagster as dg

from maestro_pipeline.errors import MaestroError
from maestro_pipeline.provenance import code_version, library_versions  # noqa: F401  (re-exported to the asset modules)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn a ``MaestroError`` into a Dagster ``Failure`` whose description is the one-line message."""
    try:
        yield
    except MaestroError as e:
        raise dg.Failure(description=str(e), allow_retries=False) from None


def partition_dims(context: dg.AssetExecutionContext) -> dict[str, str]:
    key = context.partition_key
    if isinstance(key, dg.MultiPartitionKey):
        return dict(key.keys_by_dimension)
    return {"instrument": key}


def md_table(df, float_fmt: str = "{:.4g}", max_rows: int = 50) -> str:
    """A polars frame as a markdown table for Dagster's metadata panel."""
    cols = df.columns
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.head(max_rows).iter_rows():
        cells = [float_fmt.format(v) if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    if df.height > max_rows:
        lines.append(f"\n… {df.height - max_rows} more rows in the lake")
    return "\n".join(lines)


def failed_blocking_checks(instance: dg.DagsterInstance, check_keys, partition_keys: list[str]) -> dict[str, list[str]]:
    """Partition key -> names of blocking checks whose latest evaluation there failed (partitioned checks)."""
    from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

    if not check_keys or not partition_keys:
        return {}
    infos = instance.event_log_storage.get_asset_check_partition_info(list(check_keys), partition_keys=list(partition_keys))
    out: dict[str, list[str]] = {}
    for i in infos:
        if i.partition_key in partition_keys and i.latest_execution_status == AssetCheckExecutionRecordStatus.FAILED:
            out.setdefault(i.partition_key, []).append(i.check_key.name)
    return {k: sorted(v) for k, v in sorted(out.items())}
