"""Read-only SQL over the lakehouse: every materialized zone table by name (Polars SQL).

Tables are LazyFrames scanned through the same IO manager the graph writes with, so the query
runs wherever the lakehouse lives (local disk or S3) and only reads what it needs.
"""

from __future__ import annotations

import re

import polars as pl

from stedi_assets import schemas
from stedi_assets.io.parquet import ParquetIOManager, TableNotMaterializedError

#: Statements that only read. Polars' SQLContext cannot write files anyway; this keeps
#: in-memory DDL (CREATE/DROP/TRUNCATE of context tables) from suggesting otherwise.
READ_ONLY_STATEMENTS = ("select", "with", "show", "describe", "explain", "table")


class SqlError(Exception):
    """A query that cannot run; the message says why."""


def referenced_tables(query: str) -> list[str]:
    """The STEDI tables a query names (whole words, any case), in schemas order."""
    return [name for name in schemas.TABLES
            if re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", query, re.IGNORECASE)]


def _statement_kind(query: str) -> str:
    without_comments = re.sub(r"--[^\n]*|/\*.*?\*/", " ", query, flags=re.DOTALL)
    words = re.findall(r"[A-Za-z_]+", without_comments)
    return words[0].lower() if words else ""


def lakehouse_tables(io_manager: ParquetIOManager, names: list[str]) -> dict[str, pl.LazyFrame]:
    """name -> LazyFrame; TableNotMaterializedError names the first table that is missing."""
    return {name: io_manager.scan_table(name) for name in names}


def run_sql(io_manager: ParquetIOManager, query: str) -> pl.DataFrame:
    """Run one read-only SQL statement over the lakehouse tables it references.

    A query that names no STEDI table (e.g. SHOW TABLES) sees every materialized table."""
    kind = _statement_kind(query)
    if kind not in READ_ONLY_STATEMENTS:
        raise SqlError(
            f"only read-only statements are allowed ({', '.join(READ_ONLY_STATEMENTS)}), "
            f"got {kind.upper() or 'an empty query'!r}"
        )
    names = referenced_tables(query)
    if names:
        frames = lakehouse_tables(io_manager, names)
    else:
        frames = {}
        for name in schemas.TABLES:
            try:
                frames[name] = io_manager.scan_table(name)
            except TableNotMaterializedError:
                continue
    try:
        return pl.SQLContext(frames).execute(query, eager=False).collect()
    except (pl.exceptions.PolarsError, OSError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SqlError(f"{type(exc).__name__}: {message}") from None
