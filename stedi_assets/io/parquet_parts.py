"""Rows already written as Parquet files (landing batches spilled as they were parsed)."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl


@dataclass(frozen=True)
class ParquetParts:
    """Rows already written as Parquet files, in order. The IO manager publishes the files
    themselves (linked into the table's data folder on a local disk, uploaded byte for byte to
    S3) instead of writing the rows a second time. `schema` describes the rows when there are
    no files."""

    paths: tuple[str, ...]
    schema: pl.Schema

    def scan(self) -> pl.LazyFrame:
        if not self.paths:
            return pl.LazyFrame(schema=self.schema)
        return pl.scan_parquet(list(self.paths))
