"""Polars column types of the STEDI tables, and the empty frames every engine step starts from."""

from __future__ import annotations

import polars as pl

from stedi_assets import schemas
from stedi_assets.schemas import Table

POLARS_TYPES: dict[str, pl.DataType] = {
    schemas.STRING: pl.String(),
    schemas.INT64: pl.Int64(),
    schemas.FLOAT64: pl.Float64(),
}

REJECT_COLUMNS = {"file": pl.String, "line_number": pl.Int64, "line": pl.String,
                  "reason": pl.String}


def polars_schema(table: Table) -> pl.Schema:
    return pl.Schema({c.name: POLARS_TYPES[c.type] for c in table.columns})


def logical_schema(schema: pl.Schema) -> dict[str, str]:
    """{column: logical type} of a Polars schema (unknown types keep their Polars name)."""
    reverse = {repr(v): k for k, v in POLARS_TYPES.items()}
    return {name: reverse.get(repr(dtype), str(dtype)) for name, dtype in schema.items()}



def typed_columns(table: Table) -> list[pl.Expr]:
    """The table's columns cast to their declared types, in declared order (for rows that
    arrive already typed, e.g. Parquet landing files)."""
    return [pl.col(c.name).cast(POLARS_TYPES[c.type]) for c in table.columns]


def empty_rows(table: Table) -> pl.DataFrame:
    return pl.DataFrame(schema=polars_schema(table))


def empty_rejects() -> pl.DataFrame:
    return pl.DataFrame(schema=REJECT_COLUMNS)

