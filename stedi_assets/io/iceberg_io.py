"""Iceberg IO managers: every STEDI table is an Apache Iceberg table (format v2) at
`<root>/<zone>/<table>`, committed through pyiceberg (see io/iceberg_tables.py).

Outputs may be Polars LazyFrames (streamed with sink_parquet), DataFrames or ParquetParts (rows
already written as Parquet files by the streaming landing reader, published without writing
the rows again); each output becomes one new snapshot in one catalog commit. Inputs are
LazyFrames over exactly one snapshot's data files (pinned when loaded), so downstream work can
stream and never sees a half-written table. Each materialization records the snapshot it
committed and the snapshots its step read; snapshots older than the retention are expired (and
their files deleted) after each commit.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import polars as pl
import pyarrow as pa
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
from stedi_assets.increments import INCREMENTAL_PROPERTY, VERSION_PROPERTY, TableUpdate
from stedi_assets.io.check_verdicts import refuse_blocked
from stedi_assets.io.iceberg_catalog import CatalogConfig
from stedi_assets.io.iceberg_changes import (
    CARRIED_FILES_PROPERTY,
    CHANGED_INSTANTS_PROPERTY,
    carried_record,
)
from stedi_assets.io.iceberg_partitions import (
    DAY_MS,
    PARTITION_KEY,
    files_on_days,
    files_to_compact,
    partition_column,
)
from stedi_assets.io.iceberg_tables import (
    IcebergTableError,
    IcebergTables,
    TableMovedError,
    TableNotMaterializedError,
    TableSnapshot,
)
from stedi_assets.io.local_paths import OutsideRootError, ensure_table_inside
from stedi_assets.io.parquet_parts import ParquetParts
from stedi_assets.io.s3 import S3Store, StorageError, split_s3_uri
from stedi_assets.transforms.polars.columns import logical_schema
from stedi_assets.variables import default, duration_seconds

__all__ = ["IcebergIOManager", "LocalIcebergIOManager", "S3IcebergIOManager",
           "TableNotMaterializedError", "table_schema_metadata"]

_TABLE_ERRORS = (StorageError, IcebergTableError, OutsideRootError, TableNotMaterializedError)


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


class IcebergIOManager(ConfigurableIOManager):
    """Stores each STEDI table as an Iceberg table at <root>/<zone>/<table>."""

    root: str
    #: catalog database of trusted/curated tables (landing tables: <database>_landing)
    database: str = default("STEDI_GLUE_DATABASE")
    #: None: SQLite inside a local root, the Glue Data Catalog for an s3:// root
    catalog_uri: str | None = None
    region: str = default("AWS_REGION")
    endpoint_url: str | None = None
    glue_endpoint_url: str | None = None
    #: snapshots older than this are expired and their files deleted after each commit
    snapshot_retention_seconds: int = duration_seconds(
        "STEDI_SNAPSHOT_RETENTION", default("STEDI_SNAPSHOT_RETENTION"))
    _tables: IcebergTables | None = PrivateAttr(default=None)

    @property
    def tables(self) -> IcebergTables:
        if self._tables is None:
            self._tables = IcebergTables(CatalogConfig(
                root=self.root, database=self.database, uri=self.catalog_uri,
                region=self.region, s3_endpoint_url=self.endpoint_url,
                glue_endpoint_url=self.glue_endpoint_url))
        return self._tables

    def table_uri(self, table_name: str) -> str:
        return self.tables.location(table_name)

    def snapshot(self, table_name: str, snapshot_id: int | None = None,
                 as_of_ms: int | None = None) -> TableSnapshot:
        return self.tables.snapshot(table_name, snapshot_id, as_of_ms)

    def scan_table(self, table_name: str, snapshot_id: int | None = None,
                   as_of_ms: int | None = None) -> pl.LazyFrame:
        """One snapshot of the table (the current one by default) as a LazyFrame."""
        return self.scan_snapshot(self.snapshot(table_name, snapshot_id, as_of_ms))

    def scan_snapshot(self, snapshot: TableSnapshot) -> pl.LazyFrame:
        if not snapshot.files:
            return pl.from_arrow(snapshot.schema.empty_table()).lazy()
        return pl.scan_parquet(list(snapshot.files), storage_options=self._storage_options,
                               hive_partitioning=False)

    def instants_frame(self, instants: pa.Array) -> pl.DataFrame:
        """Instants (a change log's) as the engine's frame of `_time`, once each."""
        return pl.DataFrame({"_time": pl.Series(instants, dtype=pl.Int64)}).unique()

    # -- hooks the storage flavours implement ------------------------------------------------
    @property
    def _storage_options(self) -> dict[str, str] | None:
        return None

    def _write_files(self, frame: pl.LazyFrame | pl.DataFrame | ParquetParts,
                     table_name: str) -> list[str]:
        """Write the rows as new data files of the table; their paths, in order."""
        raise NotImplementedError

    def _write_frame(self, frame: pl.LazyFrame | pl.DataFrame, table_name: str,
                     target: str) -> list[str]:
        """The rows as data files: one file at `target`, or, for a table partitioned by day
        (io/iceberg_partitions.py), one folder per day next to it."""
        options = self._storage_options
        column = partition_column(table_name)
        if column is not None:
            written: list[str] = []
            frame.lazy().sink_parquet(
                pl.PartitionBy(target.removesuffix("-00000.parquet"), include_key=False,
                               key={PARTITION_KEY: pl.col(column) // DAY_MS}),
                storage_options=options, mkdir="://" not in target,
                sinked_paths_callback=lambda sunk: written.extend(p.path for p in sunk.paths))
            if written:
                return written
            # no row at all: one empty file still carries the schema
        if isinstance(frame, pl.LazyFrame):
            frame.sink_parquet(target, storage_options=options)
        else:
            frame.write_parquet(target, storage_options=options)
        return [target]

    def _schemas(self, frame, files: list[str], base: TableSnapshot | None = None
                 ) -> tuple[pa.Schema, dict[str, str]]:
        """The written rows' Arrow schema (for the catalog) and logical column types."""
        if not files and base is not None:  # an update that only removed rows
            schema = pl.from_arrow(base.schema.empty_table()).schema
        else:
            schema = pl.scan_parquet(files, storage_options=self._storage_options,
                                     hive_partitioning=False).collect_schema()
        return pl.DataFrame(schema=schema).to_arrow().schema, logical_schema(schema)

    # -- Dagster IO manager API ---------------------------------------------------------------
    def handle_output(self, context: OutputContext, obj) -> None:
        if obj is None:
            return
        table_name = context.asset_key.path[-1]
        reads = _READS.pop(_step_reads_key(context), {})
        update = obj if isinstance(obj, TableUpdate) else None
        properties = {VERSION_PROPERTY: update.version,
                      INCREMENTAL_PROPERTY: str(update.incremental).lower()} if update else {}
        extra: dict[str, object] = {}
        try:
            # nothing computed from rows that failed a blocking check is committed
            refuse_blocked(self.tables, reads, table_name)
            self.tables.before_write(table_name)
            try:
                files, base, extra, commit = self._files_of(obj, table_name)
                properties.update(commit)
                change_log = commit.get(CHANGED_INSTANTS_PROPERTY)
                rows = obj if update is None else (
                    update.slice if update.incremental else update.rows)
                arrow_schema, types = self._schemas(rows, files, base)
                published, commit = self.tables.publish_and_expire(
                    table_name, files, arrow_schema, reads, context.run_id,
                    self.snapshot_retention_seconds, properties,
                    base=base.snapshot_id if base else None)
                if change_log and not published.committed:  # no snapshot carries it
                    self.tables.delete_files([change_log])
            except TableMovedError as moved:  # another run wrote it meanwhile: rebuild
                context.log.warning(f"{moved} Rebuilding {table_name} in full.")
                unpublished = [f for f in files if f not in base.files]
                if change_log:  # an update's log; a rebuild has none
                    unpublished.append(properties.pop(CHANGED_INSTANTS_PROPERTY))
                properties.pop(CARRIED_FILES_PROPERTY, None)  # a rebuild carries nothing
                self.tables.delete_files(unpublished)
                properties[INCREMENTAL_PROPERTY] = "false"
                files, _, _, _ = self._files_of(update.full(), table_name)
                arrow_schema, types = self._schemas(None, files, None)
                published, commit = self.tables.publish_and_expire(
                    table_name, files, arrow_schema, reads, context.run_id,
                    self.snapshot_retention_seconds, properties)
                extra = {"incremental/rebuilt_in_full":
                         "another run changed the table meanwhile"}
        except _TABLE_ERRORS as exc:
            raise Failure(description=str(exc)) from None
        if key := _step_reads_key(context):
            _WRITES.setdefault(key, {})[table_name] = published.snapshot_id
        context.add_output_metadata({
            "dagster/row_count": published.rows,
            "dagster/column_schema": table_schema_metadata(table_name, types),
            "dagster/uri": MetadataValue.path(self.table_uri(table_name)),
            **commit, **extra,
        })

    def _files_of(self, obj, table_name: str):
        """(the data files of the table's new content, the snapshot an update applies to,
        figures, the update's own snapshot properties: its change log, the files it carried
        over from its base): new files for rows, kept and rewritten ones for an update."""
        if not isinstance(obj, TableUpdate):
            return self._write_files(obj, table_name), None, {}, {}
        if not obj.incremental:
            return self._write_files(obj.rows, table_name), None, {}, {}
        if obj.unchanged:  # its inputs did not move: the same files, nothing committed
            return list(obj.base.files), obj.base, {"incremental/unchanged": True}, {}
        kept, rewritten, sources, dropped, removed = self._apply_update(obj, table_name)
        added = self._written_rows(self._write_files(obj.slice, table_name))
        # the instants of the rows removed and of the rows added: where the table changed
        commit = {CHANGED_INSTANTS_PROPERTY: self.tables.write_changed_instants(
            table_name, pa.concat_arrays([removed, self._instants(
                added, obj.affected.time_column)]))}
        if rewritten:
            commit[CARRIED_FILES_PROPERTY] = carried_record(
                self.tables.location(table_name), sources, rewritten)
        return [*kept, *rewritten, *added], obj.base, {
            "incremental/data_files_kept": len(kept),
            "incremental/data_files_rewritten": len(rewritten) + dropped,
            "incremental/data_files_added": len(added)}, commit

    def _instants(self, files: list[str], column: str) -> pa.Array:
        if not files:
            return pa.array([], pa.int64())
        return pl.scan_parquet(files, storage_options=self._storage_options,
                               hive_partitioning=False).select(
            pl.col(column).cast(pl.Int64)).unique().collect()[column].to_arrow()

    def _apply_update(self, update: TableUpdate, table_name: str
                      ) -> tuple[list[str], list[str], list[str], int, pa.Array]:
        """(base files kept as they are, files written again — without the affected slices'
        rows, or a day's many files compacted into one —, the base files those were made
        from, how many base files held only affected rows and were dropped, the instants of
        the rows removed)."""
        from stedi_assets.transforms.polars import increments

        affected = update.affected.in_base()  # new groups hold no row of the base
        frames = {path: pl.scan_parquet(path, storage_options=self._storage_options,
                                        hive_partitioning=False) for path in update.base.files}
        spellings = (increments.group_spellings(pl.concat(list(frames.values())), affected)
                     if frames else None)
        # only the files of the days the change touches are read (the others are kept)
        candidates = files_on_days(frames, increments.affected_days(affected, DAY_MS))
        counts = dict(zip(candidates, increments.affected_counts(
            [frames[path] for path in candidates], affected, spellings), strict=True))
        kept, rewrite, dropped = split_base_files(update.base.files, counts)
        removed, rewritten = [], []
        for path in update.base.files:  # a file with affected rows is read once more, in full
            if counts.get(path, (0, 0))[1]:
                kept_rows, instants = increments.split_file(frames[path], affected, spellings)
                removed.append(instants.to_arrow())
                if path in rewrite:
                    rewritten += self._write_files(kept_rows, table_name)
        if compact := files_to_compact(kept):  # days with many files become one file each
            kept = [path for path in kept if path not in compact]
            rewritten += self._write_files(pl.concat([frames[p] for p in compact]), table_name)
        return (kept, rewritten, [*rewrite, *compact], dropped,
                pa.concat_arrays(removed) if removed else pa.array([], pa.int64()))

    def _written_rows(self, files: list[str]) -> list[str]:
        """The files that hold rows (an empty slice writes an empty file: deleted)."""
        full = []
        for path in files:
            if pl.scan_parquet(path, storage_options=self._storage_options).select(
                    pl.len()).collect().item():
                full.append(path)
            else:
                self.tables.delete_files([path])
        return full

    def load_input(self, context: InputContext) -> pl.LazyFrame:
        table_name = context.asset_key.path[-1]
        try:
            snapshot = self.snapshot(table_name)
        except _TABLE_ERRORS as exc:
            raise Failure(description=str(exc)) from None
        key = _step_reads_key(context)
        if key:
            _READS.setdefault(key, {})[table_name] = snapshot.snapshot_id
        return self.scan_snapshot(snapshot)


def split_base_files(files: tuple[str, ...], counts: dict[str, tuple[int, int]]
                     ) -> tuple[list[str], list[str], int]:
    """An update's base files by their (rows, rows in an affected slice): (kept as they are,
    to rewrite without the affected rows, how many held only affected rows and are dropped)."""
    kept, rewrite, dropped = [], [], 0
    for path in files:
        rows, hits = counts.get(path, (0, 0))
        if not hits:
            kept.append(path)
        elif hits == rows:
            dropped += 1
        else:
            rewrite.append(path)
    return kept, rewrite, dropped


def step_reads(step: tuple[str, str]) -> dict[str, int]:
    """{table: snapshot id} of the inputs step (run id, step key) loaded so far."""
    return dict(_READS.get(step, {}))


def step_writes(step: tuple[str, str]) -> dict[str, int]:
    """{table: snapshot id} of the outputs step (run id, step key) stored so far."""
    return dict(_WRITES.get(step, {}))


#: (run id, step key) -> {table: snapshot id} the step loaded, recorded with what it writes.
#: Module-level, keyed by run and step, so it does not rely on load_input and handle_output
#: being called on the same IO manager object; a step loads and writes in one process with
#: every executor. A step that writes nothing (an asset check) leaves its entry behind until
#: the process ends (a few ids per step; run processes are short-lived).
_READS: dict[tuple[str, str], dict[str, int]] = {}
#: (run id, step key) -> {table: snapshot id} the step stored (what its in-step checks judge)
_WRITES: dict[tuple[str, str], dict[str, int]] = {}


def _step_reads_key(context: InputContext | OutputContext) -> tuple[str, str] | None:
    try:
        step = context.step_context  # an InputContext knows its step only through it
        return (step.run_id, step.step.key)
    except Exception:  # noqa: BLE001 - a context built outside a run has no run or step
        return None


def _link_or_copy(source: str, target: Path) -> None:
    try:
        os.link(source, target)  # same filesystem: no bytes copied, the source stays intact
    except OSError:
        shutil.copyfile(source, target)


class LocalIcebergIOManager(IcebergIOManager):
    """Tables on the local disk with a SQLite catalog inside the root. Nothing is written
    through a symbolic link leading outside the root (Failure naming the path)."""

    def _write_files(self, frame, table_name: str) -> list[str]:
        write_id = self.tables.new_write_id()
        first = Path(self.tables.new_data_path(table_name, write_id))
        ensure_table_inside(self.tables.location(table_name), self.root)
        first.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(frame, ParquetParts) and frame.paths:
            paths = [self.tables.new_data_path(table_name, write_id, i)
                     for i in range(len(frame.paths))]
            for part, path in zip(frame.paths, paths, strict=True):
                _link_or_copy(part, Path(path))
            return paths
        if isinstance(frame, ParquetParts):
            frame = frame.scan()
        return self._write_frame(frame, table_name, str(first))


class S3IcebergIOManager(IcebergIOManager):
    """Tables under an s3://bucket/prefix/ root, data files written with Polars' cloud I/O,
    tables in the Glue Data Catalog (or STEDI_ICEBERG_CATALOG_URI)."""

    _store: S3Store | None = PrivateAttr(default=None)

    @property
    def store(self) -> S3Store:
        if self._store is None:
            self._store = S3Store(self.region, self.endpoint_url)
        return self._store

    @property
    def _storage_options(self) -> dict[str, str]:
        return self.store.storage_options

    def _write_files(self, frame, table_name: str) -> list[str]:
        write_id = self.tables.new_write_id()
        target = self.tables.new_data_path(table_name, write_id)
        try:
            if isinstance(frame, ParquetParts) and frame.paths:
                paths = [self.tables.new_data_path(table_name, write_id, i)
                         for i in range(len(frame.paths))]
                for part, path in zip(frame.paths, paths, strict=True):
                    self.store.client.upload_file(part, *split_s3_uri(path))
                return paths
            if isinstance(frame, ParquetParts):
                frame = frame.scan()
            return self._write_frame(frame, table_name, target)
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise self.store.explain(exc, target, "writing") from None
        except Exception as exc:  # boto3 upload errors
            if type(exc).__module__.startswith(("boto", "s3transfer")):
                raise self.store.explain(exc, target, "writing") from None
            raise


def scan_local_table(root: str, table_name: str) -> pl.LazyFrame:
    """The current snapshot of a local lakehouse's table (for scripts, benchmarks, tests)."""
    return LocalIcebergIOManager(root=str(root)).scan_table(table_name)
