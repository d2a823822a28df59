"""Typed Dagster metadata from lake tables: sortable tables with a column schema, row counts, rounded numbers.

Every table the UI shows goes through :func:`table`: a ``MetadataValue.table`` whose ``TableSchema`` names each
column's type, with floats rounded to significant digits (a 16-digit float is noise to a reader) and structures as
compact JSON text. :func:`table_facts` is the ``dagster/row_count`` + ``dagster/column_schema`` pair Dagster's
catalog reads for an asset.
"""

from __future__ import annotations

import json
import math
from typing import Any

import dagster as dg
import polars as pl

ROW_COUNT = "dagster/row_count"
COLUMN_SCHEMA = "dagster/column_schema"

#: Rows shown at most in one metadata table (the lake holds all of them).
MAX_ROWS = 200


def _type(dtype: pl.DataType) -> str:
    if dtype.is_integer():
        return "int"
    if dtype.is_float():
        return "float"
    if dtype == pl.Boolean:
        return "bool"
    if dtype.is_temporal():
        return "timestamp" if isinstance(dtype, pl.Datetime) else str(dtype).lower()
    if isinstance(dtype, (pl.List, pl.Struct, pl.Array)):
        return "json"
    return "string"


def schema(df: pl.DataFrame, descriptions: dict[str, str] | None = None) -> dg.TableSchema:
    """The table's columns with Dagster's type names (``int``, ``float``, ``string``, ``timestamp``, ...)."""
    d = descriptions or {}
    return dg.TableSchema(columns=[dg.TableColumn(c, _type(t), description=d.get(c))
                                   for c, t in df.schema.items()])


def rounded(v: float, digits: int = 4) -> float:
    """``v`` to ``digits`` significant digits (NaN and inf unchanged)."""
    if not math.isfinite(v) or v == 0:
        return v
    return round(v, digits - 1 - int(math.floor(math.log10(abs(v)))))


def _cell(v: Any, digits: int) -> Any:
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return rounded(v, digits) if math.isfinite(v) else None
    if isinstance(v, (list, dict)):
        return json.dumps(v, separators=(",", ":"), default=str)
    return str(v)


def table(df: pl.DataFrame, *, digits: int = 4, descriptions: dict[str, str] | None = None) -> dg.TableMetadataValue:
    """A sortable table for the UI (at most :data:`MAX_ROWS` rows) with its schema; NaN shows as empty."""
    shown = df.head(MAX_ROWS)
    records = [dg.TableRecord({k: _cell(v, digits) for k, v in row.items()}) for row in shown.iter_rows(named=True)]
    return dg.MetadataValue.table(records=records, schema=schema(df, descriptions))


def table_facts(df: pl.DataFrame) -> dict[str, Any]:
    """``dagster/row_count`` and ``dagster/column_schema`` of a table an asset wrote."""
    return {ROW_COUNT: dg.MetadataValue.int(df.height), COLUMN_SCHEMA: dg.MetadataValue.table_schema(schema(df))}
