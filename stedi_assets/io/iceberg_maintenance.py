"""History of the Iceberg tables: list snapshots, expire old ones and erase their files, and
recognise a lakehouse written in the pre-Iceberg layout.

Erasure: pyiceberg's expire_snapshots only edits metadata, so `expire` also deletes every file
(data files, manifests, manifest lists) that only expired snapshots referenced, and files no
snapshot ever referenced (a killed writer's) once they are a day old. After it, the rows of
the expired snapshots exist nowhere under the table. Dagster-free (the Glue job uses it too).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from stedi_assets.io.iceberg_catalog import CatalogConfig, is_local
from stedi_assets.io.iceberg_changes import CHANGED_INSTANTS_PROPERTY, summary_properties

#: A data file no snapshot references is a killed or losing writer's once it is this old
#: (younger ones may belong to a write that is still running).
ORPHAN_AGE_SECONDS = 24 * 3600


class IcebergTableError(Exception):
    """A table the engines cannot read or write as it is; the message says why and what to do."""


@dataclass
class ExpiryResult:
    snapshots_expired: int = 0
    files_deleted: list[str] = field(default_factory=list)


def iso(timestamp_ms: int) -> str:
    return datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC).isoformat(
        timespec="milliseconds")


def history(iceberg) -> list[dict[str, object]]:
    current = iceberg.current_snapshot()
    rows = []
    for snap in sorted(iceberg.snapshots(), key=lambda s: s.timestamp_ms):
        summary = snap.summary.additional_properties if snap.summary else {}
        rows.append({
            "snapshot_id": snap.snapshot_id,
            "committed_at": iso(snap.timestamp_ms),
            "operation": snap.summary.operation.value if snap.summary else "",
            "rows": int(summary.get("total-records", 0)),
            "current": current is not None and snap.snapshot_id == current.snapshot_id,
            "run_id": summary.get("stedi.run-id", ""),
        })
    return rows


def expire(iceberg, older_than_ms: int) -> ExpiryResult:
    from pyiceberg.exceptions import CommitFailedException

    current = iceberg.current_snapshot()
    if current is None:
        return ExpiryResult()
    snapshots = iceberg.snapshots()
    expired = [s for s in snapshots
               if s.timestamp_ms < older_than_ms and s.snapshot_id != current.snapshot_id]
    live = [s for s in snapshots if s not in expired]
    live_files = referenced_files(iceberg.io, live)
    doomed: set[str] = set()
    if expired:
        doomed = referenced_files(iceberg.io, expired) - live_files
        try:
            iceberg.maintenance.expire_snapshots().by_ids(
                [s.snapshot_id for s in expired]).commit()
        except CommitFailedException:
            return ExpiryResult()  # another writer committed meanwhile: the next run expires
    orphans = _orphans(iceberg, live_files | doomed, time.time() - ORPHAN_AGE_SECONDS)
    deleted = sorted(doomed | orphans)
    for path in deleted:
        try:
            iceberg.io.delete(path)
        except FileNotFoundError:
            pass
    return ExpiryResult(len(expired), deleted)


def referenced_files(io, snapshots) -> set[str]:
    """Every file the snapshots reference: manifest lists, manifests, live data files, the
    change logs of incremental updates."""
    files: set[str] = set()
    for snapshot in snapshots:
        files.add(snapshot.manifest_list)
        if log := summary_properties(snapshot).get(CHANGED_INSTANTS_PROPERTY):
            files.add(log)
        for manifest in snapshot.manifests(io):
            files.add(manifest.manifest_path)
            files.update(entry.data_file.file_path
                         for entry in manifest.fetch_manifest_entry(io, discard_deleted=True))
    return files


def _orphans(iceberg, known: set[str], older_than: float) -> set[str]:
    """Data files under the table's data folder that no live snapshot references and that
    were last written before `older_than` (epoch seconds)."""
    from pyarrow.fs import FileSelector, FileType
    from pyiceberg.io.pyarrow import PyArrowFileIO

    data = f"{iceberg.metadata.location.rstrip('/')}/data"
    io = iceberg.io
    if not isinstance(io, PyArrowFileIO):
        return set()
    scheme, netloc, path = io.parse_location(data)
    filesystem = io.fs_by_scheme(scheme, netloc)
    infos = filesystem.get_file_info(FileSelector(path, recursive=True, allow_not_found=True))
    prefix = "" if scheme == "file" else f"{scheme}://"
    found = {}
    for info in infos:
        if info.type == FileType.File and info.path.endswith(".parquet"):
            found[prefix + info.path] = info.mtime.timestamp() if info.mtime else time.time()
    known = {k.removeprefix("file://") for k in known}
    return {p for p, mtime in found.items() if p not in known and mtime < older_than}


def _old_layout_message(table: str, where: str) -> str:
    return (f"table {table}: {where} holds a table in the pre-Iceberg layout (plain Parquet "
            "files). This version keeps every table as Apache Iceberg: move that lakehouse "
            "aside (or delete its landing/, trusted/ and curated/ folders) and materialize "
            "every asset again (`dagster asset materialize -m stedi_assets.definitions "
            "--select '*'`). See docs/tables.md.")


def refuse_old_layout(config: CatalogConfig, table: str) -> None:
    """IcebergTableError when the table's location holds the pre-Iceberg Parquet layout (a
    link to a version folder or Parquet files at its top; on S3 `part-00000.parquet`)."""
    location = config.location(table)
    if is_local(config.root):
        folder = Path(location)
        if folder.is_symlink() or any(folder.glob("*.parquet")) or folder.parent.joinpath(
                f".{folder.name}.versions").exists():
            raise IcebergTableError(_old_layout_message(table, location))
        return
    from pyiceberg.io.pyarrow import PyArrowFileIO

    io = PyArrowFileIO(config.file_io_properties())
    if io.new_input(f"{location}/part-00000.parquet").exists():
        raise IcebergTableError(_old_layout_message(table, location))
