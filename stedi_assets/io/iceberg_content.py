"""What a snapshot holds (its live files, read from its manifests), how a write replaces it
(the snapshot producer, the schema following the files), and whether a write holds exactly
the current snapshot's data: then `publish` commits nothing, so re-materializing
unchanged input leaves the table's history as it was (the new files are deleted). Row count
and byte size decide first (from the snapshot summary, free); only when both match are the
files compared byte for byte, in part order."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pyarrow as pa


def live_files(io, snapshot) -> tuple[list, list]:
    """The snapshot's live data files (empty ones too: a scan plan skips those) and its live
    delete files, read from its manifests."""
    from pyiceberg.manifest import ManifestContent

    data, deletes = [], []
    for manifest in snapshot.manifests(io):
        entries = manifest.fetch_manifest_entry(io, discard_deleted=True)
        target = deletes if manifest.content == ManifestContent.DELETES else data
        target.extend(entry.data_file for entry in entries)
    return data, deletes


def same_content(iceberg, current, files: Sequence[str], data_files) -> bool:
    summary = current.summary.additional_properties if current.summary else {}
    if int(summary.get("total-records", 0)) != sum(f.record_count for f in data_files):
        return False
    if int(summary.get("total-files-size", 0)) != sum(f.file_size_in_bytes
                                                       for f in data_files):
        return False
    old = [f.file_path for f in live_files(iceberg.io, current)[0]]
    return digest(iceberg.io, sorted(old, key=_part_order)) == digest(
        iceberg.io, sorted(files, key=_part_order))


def _part_order(path: str) -> str:
    """A write's files in part order, without the write id (which differs between writes):
    `data/<id>-00003.parquet` (Polars) or `data/<id>/part-00003-….parquet` (Spark)."""
    after = path.rsplit("/data/", 1)[-1]
    return after.split("/", 1)[1] if "/" in after else after.split("-", 2)[-1]


def digest(io, paths: Sequence[str]) -> str:
    digest = hashlib.blake2b(digest_size=32)
    for path in paths:
        with io.new_input(path).open() as stream:
            while chunk := stream.read(8 << 20):
                digest.update(chunk)
        digest.update(b"\0file\0")
    return digest.hexdigest()


def replacement(tx, properties: dict[str, str], drop_delete_files: bool):
    """The snapshot producer of a whole-table replacement: an Iceberg overwrite that deletes the
    current data files. pyiceberg's overwrite cannot remove delete files (left by a
    merge-on-read DELETE elsewhere, e.g. Athena): then the new snapshot simply lists none of
    the previous manifests, data or delete."""
    if not drop_delete_files:
        return tx.update_snapshot(snapshot_properties=properties).overwrite()
    from pyiceberg.table.snapshots import Operation
    from pyiceberg.table.update.snapshot import _FastAppendFiles

    class ReplaceEverything(_FastAppendFiles):
        def _existing_manifests(self):
            return []

    return ReplaceEverything(Operation.OVERWRITE, tx, tx._table.io,
                             snapshot_properties=properties)


def align_schema(iceberg, schema: pa.Schema):
    """The table's schema becomes the written files' schema before they are added (columns
    added, dropped or widened as the data files say; an incompatible change fails with
    Iceberg's message); the name mapping (for files without field ids) follows."""
    from pyiceberg.io.pyarrow import pyarrow_to_schema
    from pyiceberg.table import TableProperties

    current = iceberg.schema()
    if [f.name for f in current.fields] == schema.names:
        wanted = pyarrow_to_schema(schema, name_mapping=current.name_mapping)
        if [f.field_type for f in current.fields] == [f.field_type for f in wanted.fields]:
            return iceberg
    with iceberg.transaction() as tx:
        with tx.update_schema() as update:
            update.union_by_name(schema)
            for name in {f.name for f in current.fields} - set(schema.names):
                update.delete_column(name)
        tx.set_properties(**{TableProperties.DEFAULT_NAME_MAPPING:
                             tx.table_metadata.schema().name_mapping.model_dump_json()})
    return iceberg.refresh()
