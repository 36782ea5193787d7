"""Parquet IO managers: one table = one directory <root>/<zone>/<table>/ of Parquet files.

The directory layout is what Spark, Glue and Athena read too, on the local disk or on S3.
Outputs may be Polars LazyFrames (streamed with sink_parquet), DataFrames or ParquetParts (rows
already written as Parquet files, e.g. by the streaming landing reader); inputs are always
LazyFrames so downstream work can stream. After a trusted or curated table is written, the
`catalog` resource registers it (a no-op unless a Glue catalog is configured).
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from dagster import (
    ConfigurableIOManager,
    Failure,
    InputContext,
    MetadataValue,
    OutputContext,
    TableColumn,
    TableSchema,
)
from pydantic import PrivateAttr

from stedi_assets import schemas
from stedi_assets.io.catalog import CatalogError, TableCatalog
from stedi_assets.io.local_paths import OutsideRootError, ensure_inside
from stedi_assets.io.s3 import S3Store, StorageError, split_s3_folder
from stedi_assets.transforms.polars.columns import logical_schema

DATA_FILE = "part-00000.parquet"


@dataclass(frozen=True)
class ParquetParts:
    """Rows already written as Parquet files, in order (landing batches spilled as they were
    parsed). The local IO manager links the files into the new table version as
    part-00000.parquet, part-00001.parquet, ... instead of writing the rows a second time;
    on S3 they are read and written as the table's one object. `schema` describes the rows
    when there are no files."""

    paths: tuple[str, ...]
    schema: pl.Schema

    def scan(self) -> pl.LazyFrame:
        if not self.paths:
            return pl.LazyFrame(schema=self.schema)
        return pl.scan_parquet(list(self.paths))


def _link_or_copy(source: str, target: Path) -> None:
    try:
        os.link(source, target)  # same filesystem: no bytes copied, the source stays intact
    except OSError:
        shutil.copyfile(source, target)


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
    catalog: TableCatalog | None = None

    def table_uri(self, table_name: str) -> str:
        return f"{self.root.rstrip('/')}/{schemas.zone_of(table_name)}/{table_name}"

    def scan_table(self, table_name: str) -> pl.LazyFrame:
        """The stored table as a LazyFrame; a clear error when it was never materialized."""
        uri = self.table_uri(table_name)
        if not self._exists(uri):
            raise TableNotMaterializedError(
                f"table {table_name} has not been materialized yet: nothing at {uri}. "
                f"Materialize it (and its upstream assets) first."
            )
        return self._scan(uri)

    # -- hooks the storage flavours implement ------------------------------------------------
    def _write(self, frame: pl.LazyFrame | pl.DataFrame | ParquetParts,
               table_uri: str) -> None:
        raise NotImplementedError

    def _exists(self, table_uri: str) -> bool:
        raise NotImplementedError

    @property
    def _storage_options(self) -> dict[str, str] | None:
        return None

    def _scan(self, table_uri: str) -> pl.LazyFrame:
        return pl.scan_parquet(f"{table_uri}/*.parquet", storage_options=self._storage_options)

    # -- Dagster IO manager API ---------------------------------------------------------------
    def handle_output(self, context: OutputContext, obj: pl.LazyFrame | pl.DataFrame) -> None:
        if obj is None:
            return
        table_name = context.asset_key.path[-1]
        uri = self.table_uri(table_name)
        try:
            self._write(obj, uri)
            written = self._scan(uri)
            rows = int(written.select(pl.len()).collect().item())
            types = logical_schema(written.collect_schema())
            # Landing tables are registered over their raw JSON by the landing assets instead.
            catalog_table = (
                self.catalog.register_parquet_table(table_name, uri, types)
                if self.catalog and schemas.TABLES[table_name].source is None else None
            )
        except (StorageError, CatalogError, OutsideRootError) as exc:
            raise Failure(description=str(exc)) from None
        metadata = {
            "dagster/row_count": rows,
            "dagster/column_schema": table_schema_metadata(table_name, types),
            "dagster/uri": MetadataValue.path(uri),
        }
        if catalog_table:
            metadata["catalog_table"] = catalog_table
        context.add_output_metadata(metadata)

    def load_input(self, context: InputContext) -> pl.LazyFrame:
        try:
            return self.scan_table(context.asset_key.path[-1])
        except StorageError as exc:
            raise Failure(description=str(exc)) from None


def swap_in_new_version(table_uri: str, write: Callable[[Path], None],
                        root: str | Path) -> None:
    """Write a table as a new version directory, then point `<zone>/<table>` at it with one
    atomic rename of a symbolic link. `write` creates the directory it is given.

    Nothing is written or deleted outside the lakehouse `root`: when the zone folder, the
    versions folder or the table's link leads outside it (a symbolic link to elsewhere), the
    write is refused (OutsideRootError naming the path) before anything is touched."""
    link = Path(table_uri)
    versions = link.parent / f".{link.name}.versions"
    ensure_inside(link.parent, root, "write a table into")
    ensure_inside(versions, root, "write table versions into")
    if link.is_symlink():
        ensure_inside(link, root, "replace the table")
    versions.mkdir(parents=True, exist_ok=True)
    version = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}"
    target = versions / version
    try:
        write(target)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    for stale in link.parent.glob(f".{link.name}.link-*"):  # from a writer killed mid-swap
        stale.unlink()
    previous = os.readlink(link) if link.is_symlink() else None
    if link.exists() and not link.is_symlink():  # a table from before versioning
        shutil.rmtree(link)
    staged_link = link.parent / f".{link.name}.link-{uuid.uuid4().hex}"
    staged_link.symlink_to(target.relative_to(link.parent), target_is_directory=True)
    os.replace(staged_link, link)  # the atomic swap
    keep = {version, Path(previous).name if previous else None}
    for old in versions.iterdir():
        if old.name not in keep:
            shutil.rmtree(old, ignore_errors=True)


class LocalParquetIOManager(ParquetIOManager):
    """Tables on the local disk, replaced all or nothing.

    `<zone>/<table>` is a symbolic link to a version directory
    `<zone>/.<table>.versions/<version>/part-00000.parquet` (more parts when the rows came as
    `ParquetParts`). A write fills a new version
    directory, then swaps the link with one atomic rename: readers that open `<zone>/<table>/`
    see the old version or the new one, never a mix, and a writer killed mid-way leaves the old
    version in place (its partial directory is removed by the next write). The previous
    version is kept until the next write, so a reader still holding it can finish. A zone
    folder or table that is a symbolic link leading outside `root` is refused (Failure naming
    the path): nothing outside the lakehouse root is written or deleted.
    """

    def _write(self, frame: pl.LazyFrame | pl.DataFrame | ParquetParts,
               table_uri: str) -> None:
        def write(version: Path) -> None:
            version.mkdir()
            if isinstance(frame, ParquetParts) and frame.paths:
                for index, part in enumerate(frame.paths):
                    _link_or_copy(part, version / f"part-{index:05d}.parquet")
            elif isinstance(frame, ParquetParts):
                frame.scan().collect().write_parquet(version / DATA_FILE)
            elif isinstance(frame, pl.LazyFrame):
                frame.sink_parquet(version / DATA_FILE)
            else:
                frame.write_parquet(version / DATA_FILE)

        swap_in_new_version(table_uri, write, self.root)

    def _exists(self, table_uri: str) -> bool:
        return any(Path(table_uri).glob("*.parquet"))


class S3ParquetIOManager(ParquetIOManager):
    """Tables under an s3://bucket/prefix/ root, read and written with Polars' cloud I/O.

    Replacing a table: its data is the one object <table>/part-00000.parquet. Polars uploads
    it as a (multipart) PUT, which S3 makes visible in one step only when complete, so readers
    see the old table or the new one, never a half-written file, and a failed write leaves the
    old table in place. Other objects under the table prefix (e.g. part files another writer
    left) are deleted after the new object landed; until then a reader could see both.
    """

    region: str
    endpoint_url: str | None = None
    _store: S3Store | None = PrivateAttr(default=None)

    @property
    def store(self) -> S3Store:
        if self._store is None:
            self._store = S3Store(self.region, self.endpoint_url)
        return self._store

    @property
    def _storage_options(self) -> dict[str, str]:
        return self.store.storage_options

    def _write(self, frame: pl.LazyFrame | pl.DataFrame | ParquetParts,
               table_uri: str) -> None:
        if isinstance(frame, ParquetParts):
            frame = frame.scan()
        store = self.store
        bucket, prefix = split_s3_folder(table_uri)
        # Listing first also gives clear errors (missing bucket, denied, unreachable endpoint).
        previous = store.list_keys(table_uri)
        target = f"{table_uri}/{DATA_FILE}"
        try:
            if isinstance(frame, pl.LazyFrame):
                frame.sink_parquet(target, storage_options=store.storage_options)
            else:
                frame.write_parquet(target, storage_options=store.storage_options)
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise store.explain(exc, target, "writing") from None
        store.delete_keys(bucket, [key for key in previous if key != prefix + DATA_FILE])

    def _exists(self, table_uri: str) -> bool:
        return any(key.endswith(".parquet") for key in self.store.list_keys(table_uri))
