"""Read-only SQL over the lakehouse: every materialized zone table by name (Polars SQL).

Tables are LazyFrames over one Iceberg snapshot each, scanned through the same IO manager the
graph writes with, so the query runs wherever the lakehouse lives (local disk or S3), only
reads what it needs, and never sees a table half-written (a commit during the query is not
seen). `--as-of` reads an older snapshot (time travel).

A query reads the lakehouse tables and nothing else. Polars SQL opens any file through its
table functions (read_csv, read_parquet, read_ipc, read_json, read_ndjson): a query naming one,
in any spelling, is refused before it is planned (planning already reads a file's header, and
errors quote it). Then, as an allow-list, every scan of the planned query must be the scan of
a lakehouse table the query may read; anything else is refused before a row is read. A Polars
panic becomes a one-line SqlError. Time and memory limits are the CLI's (stedi_assets/cli.py).
"""

from __future__ import annotations

import re

import polars as pl

from stedi_assets import schemas
from stedi_assets.io.iceberg_io import IcebergIOManager, TableNotMaterializedError
from stedi_assets.io.iceberg_tables import IcebergTableError

#: Statements that only read. Polars' SQLContext cannot write files anyway; this keeps
#: in-memory DDL (CREATE/DROP/TRUNCATE of context tables) from suggesting otherwise.
READ_ONLY_STATEMENTS = ("select", "with", "show", "describe", "explain", "table")


class SqlError(Exception):
    """A query that cannot run; the message says why."""


def referenced_tables(query: str) -> list[str]:
    """The STEDI tables a query names (whole words, any case), in schemas order."""
    return [name for name in schemas.TABLES
            if re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", query, re.IGNORECASE)]


#: Polars SQL's file-reading table functions all start with read_ (any case, quoted or not).
_FILE_FUNCTION = re.compile(r"(?<!\w)read_\w*", re.IGNORECASE)
#: A source line of a plan as LazyFrame.explain prints it, e.g. "Parquet SCAN [path, ...]".
_SCAN_LINE = re.compile(r"\bSCAN\b")


def _refuse_file_functions(query: str) -> None:
    found = _FILE_FUNCTION.search(query)
    if found:
        raise SqlError(f"stedi-sql reads only the lakehouse tables: {found.group(0)}(...) and "
                       f"the other file-reading table functions are not allowed")


def _scans(frame: pl.LazyFrame) -> set[str]:
    """The scan lines of the frame's plan (what it reads), as explain() prints them."""
    return {line.strip() for line in frame.explain(optimized=False).splitlines()
            if _SCAN_LINE.search(line)}


def _check_sources(plan: pl.LazyFrame, frames: dict[str, pl.LazyFrame]) -> None:
    """Refuse a planned query that scans anything but the tables it was given."""
    allowed = set().union(*map(_scans, frames.values())) if frames else set()
    foreign = _scans(plan) - allowed
    if foreign:
        raise SqlError(f"stedi-sql reads only the lakehouse tables; the query also reads "
                       f"{sorted(foreign)[0]}")


def _statement_kind(query: str) -> str:
    without_comments = re.sub(r"--[^\n]*|/\*.*?\*/", " ", query, flags=re.DOTALL)
    words = re.findall(r"[A-Za-z_]+", without_comments)
    return words[0].lower() if words else ""


def lakehouse_tables(io_manager: IcebergIOManager, names: list[str],
                     snapshot_id: int | None = None,
                     as_of_ms: int | None = None) -> dict[str, pl.LazyFrame]:
    """name -> LazyFrame over one snapshot of each (the current one, the given one, or the
    one current at `as_of_ms`); TableNotMaterializedError names the first table missing."""
    if snapshot_id is not None and len(names) != 1:
        raise SqlError("--as-of SNAPSHOT_ID reads one table (a snapshot id belongs to one); "
                       "for several tables use --as-of with a time, e.g. 2026-11-25T09:00:00Z")
    return {name: io_manager.scan_table(name, snapshot_id, as_of_ms) for name in names}


def run_sql(io_manager: IcebergIOManager, query: str, snapshot_id: int | None = None,
            as_of_ms: int | None = None) -> pl.DataFrame:
    """Run one read-only SQL statement over the lakehouse tables it references, each read at
    one snapshot (time travel with `snapshot_id` or `as_of_ms`).

    A query that names no STEDI table (e.g. SHOW TABLES) sees every materialized table."""
    kind = _statement_kind(query)
    if kind not in READ_ONLY_STATEMENTS:
        raise SqlError(
            f"only read-only statements are allowed ({', '.join(READ_ONLY_STATEMENTS)}), "
            f"got {kind.upper() or 'an empty query'!r}"
        )
    _refuse_file_functions(query)
    names = referenced_tables(query)
    if names or snapshot_id is not None:
        frames = lakehouse_tables(io_manager, names, snapshot_id, as_of_ms)
    else:
        frames = {}
        for name in schemas.TABLES:
            try:
                frames[name] = io_manager.scan_table(name, as_of_ms=as_of_ms)
            except (TableNotMaterializedError, IcebergTableError):
                continue
    try:
        plan = pl.SQLContext(frames).execute(query, eager=False)
        _check_sources(plan, frames)
        return plan.collect()
    except (pl.exceptions.PolarsError, OSError, pl.exceptions.PanicException) as exc:
        # PanicException (a BaseException) is a bug or a race in Polars, e.g. a table being
        # rewritten while it is read: one line, not a Rust backtrace
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        kind = ("Polars failed (internal error)" if isinstance(exc, pl.exceptions.PanicException)
                else type(exc).__name__)
        raise SqlError(f"{kind}: {message}") from None
