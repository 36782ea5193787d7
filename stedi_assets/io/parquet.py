"""Parquet IO managers: one table = one directory <root>/<zone>/<table>/ of Parquet files.

The directory layout is what Spark, Glue and Athena read too. Outputs may be Polars LazyFrames
(streamed to disk with sink_parquet) or DataFrames; inputs are always LazyFrames so downstream
work can stream.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import polars as pl
from dagster import (
    ConfigurableIOManager,
    InputContext,
    MetadataValue,
    OutputContext,
    TableColumn,
    TableSchema,
)

from stedi_assets import schemas
from stedi_assets.transforms.polars_engine import logical_schema

DATA_FILE = "part-00000.parquet"


def table_schema_metadata(table_name: str, actual: dict[str, str] | None = None) -> TableSchema:
    """Column schema for the UI: declared descriptions, actual types when known."""
    table = schemas.TABLES[table_name]
    actual = actual or {}
    return TableSchema(
        columns=[
            TableColumn(c.name, actual.get(c.name, c.type), description=c.description)
            for c in table.columns
        ]
    )


class TableNotMaterializedError(Exception):
    pass


class ParquetIOManager(ConfigurableIOManager):
    """Stores each STEDI table as Parquet under <root>/<zone>/<table>/."""

    root: str

    def table_uri(self, table_name: str) -> str:
        return f"{self.root.rstrip('/')}/{schemas.zone_of(table_name)}/{table_name}"

    # -- hooks the storage flavours implement ------------------------------------------------
    def _write(self, frame: pl.LazyFrame | pl.DataFrame, table_uri: str) -> None:
        raise NotImplementedError

    def _exists(self, table_uri: str) -> bool:
        raise NotImplementedError

    def _scan(self, table_uri: str) -> pl.LazyFrame:
        return pl.scan_parquet(f"{table_uri}/*.parquet")

    # -- Dagster IO manager API ---------------------------------------------------------------
    def handle_output(self, context: OutputContext, obj: pl.LazyFrame | pl.DataFrame) -> None:
        if obj is None:
            return
        table_name = context.asset_key.path[-1]
        uri = self.table_uri(table_name)
        self._write(obj, uri)
        written = self._scan(uri)
        rows = int(written.select(pl.len()).collect().item())
        context.add_output_metadata(
            {
                "dagster/row_count": rows,
                "dagster/column_schema": table_schema_metadata(
                    table_name, logical_schema(written.collect_schema())
                ),
                "dagster/uri": MetadataValue.path(uri),
            }
        )

    def load_input(self, context: InputContext) -> pl.LazyFrame:
        table_name = context.asset_key.path[-1]
        uri = self.table_uri(table_name)
        if not self._exists(uri):
            raise TableNotMaterializedError(
                f"table {table_name} has not been materialized yet: nothing at {uri}. "
                f"Materialize it (and its upstream assets) first."
            )
        return self._scan(uri)


class LocalParquetIOManager(ParquetIOManager):
    """Tables on the local disk. A table is swapped in whole: written beside, then renamed."""

    def _write(self, frame: pl.LazyFrame | pl.DataFrame, table_uri: str) -> None:
        final = Path(table_uri)
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = final.parent / f".{final.name}.{uuid.uuid4().hex}.staging"
        staging.mkdir()
        try:
            if isinstance(frame, pl.LazyFrame):
                frame.sink_parquet(staging / DATA_FILE)
            else:
                frame.write_parquet(staging / DATA_FILE)
            retired = final.parent / f".{final.name}.{uuid.uuid4().hex}.retired"
            if final.exists():
                final.rename(retired)
            staging.rename(final)
            shutil.rmtree(retired, ignore_errors=True)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _exists(self, table_uri: str) -> bool:
        return any(Path(table_uri).glob("*.parquet"))
