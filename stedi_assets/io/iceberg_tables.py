"""The lakehouse's Iceberg tables through pyiceberg: publish data files, read one snapshot,
list and expire history. Engine-neutral and Dagster-free (the Glue job uses it too).

An engine writes Parquet data files under `<location>/data/`; `publish` makes them the table's
new snapshot in one catalog commit (an Iceberg overwrite: the previous snapshot's files are
replaced), retried when another writer committed first. Readers take a `TableSnapshot`: the
exact data files of one snapshot, so a reader never sees two versions and never fails because
a writer is busy. Files stay until their snapshot is expired (`expire`).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from stedi_assets.io.check_verdicts import failed_checks
from stedi_assets.io.iceberg_catalog import COMMIT_ATTEMPTS, CatalogConfig, backoff, is_retryable
from stedi_assets.io.iceberg_changes import (
    TableChanges,
    carried_files,
    changed_instants,
    changes_since,
    note_unchanged,
    snapshot_properties,
    summary_properties,
    write_changed_instants,
)
from stedi_assets.io.iceberg_content import align_schema, keep_identical, live_files, replacement
from stedi_assets.io.iceberg_maintenance import (
    ExpiryResult,
    IcebergTableError,
    expire,
    history,
    iso,
    refuse_old_layout,
)
from stedi_assets.io.iceberg_partitions import align_partitions


def table_properties(string_columns: Sequence[str]) -> dict[str, str]:
    """Format v2; string columns (names, emails, phones, keys, raw lines) keep only counts in
    the manifests, never (truncated) values, so metadata holds no personal data."""
    return {
        "format-version": "2",
        "write.parquet.compression-codec": "zstd",
        "write.metadata.delete-after-commit.enabled": "true",
        "write.metadata.previous-versions-max": "20",
        **{f"write.metadata.metrics.column.{name}": "counts" for name in string_columns},
    }


class TableMovedError(Exception):
    """An update computed from one snapshot of a table found another one current at commit."""


class TableNotMaterializedError(Exception):
    """The table has no snapshot yet; the message says what to do."""


@dataclass(frozen=True)
class TableSnapshot:
    """One snapshot of a table: what a reader reads, all of it, and nothing newer."""

    table: str
    snapshot_id: int
    files: tuple[str, ...]
    schema: pa.Schema
    timestamp_ms: int
    rows: int
    #: what the writer recorded (stedi.upstream-snapshots, stedi.table-version, ...)
    properties: dict[str, str] = field(default_factory=dict, compare=False)
    #: the blocking checks this snapshot failed (io/check_verdicts.py); empty: not blocked
    blocked: tuple[str, ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class Published:
    snapshot_id: int
    #: False: the data equalled the current snapshot's, so no snapshot was committed
    committed: bool
    rows: int
    files: int


def commit_metadata(published: Published, reads: dict[str, int], expiry: ExpiryResult,
                    commit_seconds: float) -> dict[str, object]:
    """What a materialization records about its commit, as plain values (the Dagster assets
    and the Glue steps report the same). Snapshot ids travel as text: they exceed the integers
    JavaScript (the UI) represents exactly."""
    return {
        "iceberg/snapshot_id": str(published.snapshot_id),
        "iceberg/new_snapshot": published.committed,
        "iceberg/upstream_snapshots": {t: str(s) for t, s in sorted(reads.items())},
        "iceberg/data_files": published.files,
        "iceberg/commit_seconds": round(commit_seconds, 3),
        "iceberg/snapshots_expired": expiry.snapshots_expired,
        "iceberg/files_deleted": len(expiry.files_deleted),
    }


def _all_optional(schema: pa.Schema) -> pa.Schema:
    return pa.schema([f.with_nullable(True) for f in schema])


class IcebergTables:
    """The STEDI tables of one lakehouse in its Iceberg catalog."""

    def __init__(self, config: CatalogConfig):
        self.config = config
        self._catalog = None

    @property
    def catalog(self):
        if self._catalog is None:
            self._catalog = self.config.load()
        return self._catalog

    def location(self, table: str) -> str:
        return self.config.location(table)

    def new_data_path(self, table: str, write_id: str, index: int = 0) -> str:
        """A fresh data file path for a write (unique per write, so writers never collide)."""
        return f"{self.location(table)}/data/{write_id}-{index:05d}.parquet"

    @staticmethod
    def new_write_id() -> str:
        return f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:12]}"

    # -- reading ----------------------------------------------------------------------------
    def load(self, table: str):
        from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError

        try:
            return self._ours(table, self.catalog.load_table(self.config.identifier(table)))
        except (NoSuchTableError, NoSuchNamespaceError):
            self._refuse_old_layout(table)
            raise TableNotMaterializedError(
                f"table {table} has not been materialized yet: the catalog has no table "
                f"{'.'.join(self.config.identifier(table))}. Materialize it (and its upstream "
                f"assets) first.") from None

    def _ours(self, table: str, iceberg):
        """The catalog's table, when it is this lakehouse's: a catalog database shared by two
        lakehouse roots would otherwise mix their tables."""
        location = iceberg.metadata.location.rstrip("/")
        if location.removeprefix("file://") != self.location(table):
            name = ".".join(self.config.identifier(table))
            raise IcebergTableError(
                f"the catalog's table {name} belongs to another lakehouse (at {location}), "
                f"not to {self.config.root}: give this lakehouse its own catalog database "
                "(STEDI_GLUE_DATABASE) or catalog (STEDI_ICEBERG_CATALOG_URI)")
        return iceberg

    def snapshot(self, table: str, snapshot_id: int | None = None,
                 as_of_ms: int | None = None) -> TableSnapshot:
        """The current snapshot (or the one given, or the one current at `as_of_ms`)."""
        iceberg = self.load(table)
        if as_of_ms is not None:
            older = [s for s in iceberg.metadata.snapshot_log if s.timestamp_ms <= as_of_ms]
            if not older:
                raise IcebergTableError(f"table {table} has no snapshot at or before "
                                        f"{iso(as_of_ms)}")
            snapshot_id = older[-1].snapshot_id
        snapshot = (iceberg.snapshot_by_id(snapshot_id) if snapshot_id is not None
                    else iceberg.current_snapshot())
        if snapshot is None:
            if snapshot_id is not None:
                raise IcebergTableError(
                    f"table {table} has no snapshot {snapshot_id} (expired, or never "
                    f"existed): list them with `stedi-sql --snapshots {table}`")
            raise TableNotMaterializedError(f"table {table} has not been materialized yet "
                                            "(no snapshot). Materialize it first.")
        files, deletes = live_files(iceberg.io, snapshot)
        if deletes:
            raise IcebergTableError(
                f"table {table} has row-level delete files (e.g. from a DELETE run in Athena), "
                "which the STEDI engines do not apply: re-materialize the table (and what "
                "reads it), or compact it first (Athena: OPTIMIZE ... REWRITE DATA)")
        schema_id = snapshot.schema_id
        schema = iceberg.schemas()[schema_id if schema_id is not None else
                                   iceberg.schema().schema_id]
        return TableSnapshot(table, snapshot.snapshot_id,
                             tuple(f.file_path for f in files if f.record_count),
                             schema.as_arrow(), snapshot.timestamp_ms,
                             sum(f.record_count for f in files),
                             snapshot_properties(iceberg, snapshot),
                             failed_checks(iceberg.properties, snapshot.snapshot_id))

    def recorded_properties(self, table: str, snapshot_id: int) -> list[dict[str, str]]:
        """What the commit that made a snapshot recorded (its summary properties), and what
        a later run that recomputed the table to the same rows noted for it, if any: each
        says the rows were computed from what it names."""
        iceberg = self.load(table)
        snapshot = iceberg.snapshot_by_id(snapshot_id)
        if snapshot is None:
            return []
        return [summary_properties(snapshot), snapshot_properties(iceberg, snapshot)]

    def changes(self, table: str, since: int, until: int | None = None
                ) -> TableChanges | None:
        """Data files added and removed between two snapshots (None: cannot be known)."""
        return changes_since(self.load(table), table, since, until)

    def changed_instants(self, table: str, since: int, until: int) -> pa.Array | None:
        """Instants at which the table may have gained or lost a row between two snapshots,
        from its updates' change logs (None: not known; iceberg_changes.changed_instants)."""
        return changed_instants(self.load(table), since, until)

    def carried_files(self, table: str, since: int, until: int, passed: set[str]) -> set[str]:
        """Files written between two snapshots with only rows of `passed` files
        (iceberg_changes.carried_files)."""
        return carried_files(self.load(table), since, until, passed)

    def write_changed_instants(self, table: str, instants: pa.Array) -> str:
        """Write an update's change log; its path, for the snapshot summary."""
        return write_changed_instants(self.load(table), instants)

    # -- writing ----------------------------------------------------------------------------
    def publish(self, table: str, files: Sequence[str], schema: pa.Schema,
                properties: dict[str, str] | None = None, base: int | None = None
                ) -> Published:
        """Make `files` (Parquet, under the table's data folder) the table's whole content as
        its new snapshot, in one atomic commit: live files not listed are removed, listed
        files the current snapshot already holds (by path, or byte for byte) stay as they are
        (the new copies are deleted), the others are added. Nothing is committed when that
        changes nothing. With `base` (an incremental update computed from that snapshot),
        TableMovedError when another snapshot is current."""
        from pyiceberg.io.pyarrow import parquet_file_to_data_file

        schema = _all_optional(schema)
        properties = {k: str(v) for k, v in (properties or {}).items()}
        described: dict[str, object] = {}  # new files' DataFile, computed once
        for attempt in range(COMMIT_ATTEMPTS):
            try:
                iceberg = align_partitions(
                    align_schema(self._load_or_create(table, schema), schema), table)
                current = iceberg.current_snapshot()
                if base is not None and (current is None or current.snapshot_id != base):
                    raise TableMovedError(f"table {table} changed since snapshot {base}, from "
                                          "which this run computed its update.")
                live, deletes = live_files(iceberg.io, current) if current else ([], [])
                live_paths = {f.file_path: f for f in live}
                for path in files:
                    if path not in live_paths and path not in described:
                        described[path] = parquet_file_to_data_file(
                            iceberg.io, iceberg.metadata, path)
                data_files = [live_paths.get(p) or described[p] for p in files]
                kept, added = ([], data_files) if deletes else keep_identical(
                    iceberg.io, live, files, data_files)
                rows = sum(f.record_count for f in data_files)
                if current is not None and not added and len(kept) == len(live) \
                        and not deletes:
                    with iceberg.transaction() as tx:  # what this run read, for the next
                        note_unchanged(tx, iceberg, current, properties)
                    self._delete(iceberg.io, [p for p in files if p not in live_paths])
                    return Published(current.snapshot_id, False, rows, len(files))
                kept_paths = {f.file_path for f in kept}
                removed = [] if deletes else [f for f in live if f.file_path not in kept_paths]
                with iceberg.transaction() as tx:
                    # an overwrite even when it only adds files: pyiceberg re-applies an append
                    # on top of a concurrent writer's commit (the table would hold both), while
                    # an overwrite's validation fails and this loop starts over from the table
                    with replacement(tx, properties, bool(deletes)) as write:
                        for data_file in removed:
                            write.delete_data_file(data_file)
                        for data_file in added:
                            write.append_data_file(data_file)
                published = {f.file_path for f in added}
                self._delete(iceberg.io, [p for p in files
                                          if p not in live_paths and p not in published])
                committed = self.load(table).current_snapshot()
                return Published(committed.snapshot_id, True, rows, len(files))
            except Exception as exc:  # noqa: BLE001 - only commit races are retried
                if not is_retryable(exc) or attempt == COMMIT_ATTEMPTS - 1:
                    if is_retryable(exc):
                        raise IcebergTableError(
                            f"table {table}: other writers committed {COMMIT_ATTEMPTS} times "
                            "while this run tried to; nothing of this run was published. "
                            "Run it again.") from None
                    raise
                backoff(attempt)
        raise AssertionError("unreachable")

    def _load_or_create(self, table: str, schema: pa.Schema):
        from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError

        identifier = self.config.identifier(table)
        try:
            return self._ours(table, self.catalog.load_table(identifier))
        except (NoSuchTableError, NoSuchNamespaceError):
            pass
        self._refuse_old_layout(table)
        self.catalog.create_namespace_if_not_exists(identifier[0])
        strings = [f.name for f in schema if pa.types.is_string(f.type)
                   or pa.types.is_large_string(f.type) or pa.types.is_string_view(f.type)]
        created = self.catalog.create_table(
            identifier, schema=schema, location=self.location(table),
            properties=table_properties(strings))
        with created.transaction() as tx:  # readers of files without field ids map by name
            from pyiceberg.table import TableProperties

            tx.set_properties(**{TableProperties.DEFAULT_NAME_MAPPING:
                                 created.schema().name_mapping.model_dump_json()})
        return self.catalog.load_table(identifier)

    def publish_and_expire(self, table: str, files: Sequence[str], schema: pa.Schema,
                           reads: dict[str, int], run_id: str,
                           retention_seconds: int, properties: dict[str, str] | None = None,
                           base: int | None = None) -> tuple[Published, dict[str, object]]:
        """`publish`, then `expire` what is older than the retention; with the metadata."""
        started = time.perf_counter()
        published = self.publish(table, files, schema, {
            "stedi.run-id": run_id, "stedi.upstream-snapshots": json.dumps(
                {t: str(s) for t, s in reads.items()}, sort_keys=True), **(properties or {})},
            base)
        seconds = time.perf_counter() - started
        expiry = self.expire(table, int(time.time() * 1000) - retention_seconds * 1000)
        return published, commit_metadata(published, reads, expiry, seconds)

    def before_write(self, table: str) -> None:
        """Refuse (before any file is written) a table location in the pre-Iceberg layout."""
        if not self.catalog.table_exists(self.config.identifier(table)):
            self._refuse_old_layout(table)

    def _refuse_old_layout(self, table: str) -> None:
        refuse_old_layout(self.config, table)

    # -- history (io/iceberg_maintenance.py) --------------------------------------------------
    def history(self, table: str) -> list[dict[str, object]]:
        """Every live snapshot, oldest first: id, time, operation, rows, run id."""
        return history(self.load(table))

    def expire(self, table: str, older_than_ms: int) -> ExpiryResult:
        """Expire the snapshots committed before `older_than_ms` (never the current one) and
        delete the files only they referenced; remove files no snapshot ever referenced (a
        killed writer's) once they are older than a day."""
        return expire(self.load(table), older_than_ms)

    def delete_files(self, paths: Sequence[str]) -> None:
        """Delete files a write made but will not publish."""
        from pyiceberg.io.pyarrow import PyArrowFileIO

        self._delete(PyArrowFileIO(self.config.file_io_properties()), paths)

    @staticmethod
    def _delete(io, paths: Sequence[str]) -> None:
        for path in paths:
            try:
                io.delete(path)
            except FileNotFoundError:
                pass
