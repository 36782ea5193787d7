"""What a snapshot holds (its live files, read from its manifests), how a write replaces it
(the snapshot producer, the schema following the files), and which of a write's files the
current snapshot already holds byte for byte: `publish` keeps those live files as they are
(same path, same sequence number) and deletes the new copies, so a landing table that gained
one file gains one data file (what incremental readers see as new, io/iceberg_changes.py),
and re-materializing unchanged input commits nothing at all. Row count and byte size decide
first (from the manifests, free); only when both match are two files compared byte for byte
(hard links to the same file are recognised without reading it)."""

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


def keep_identical(io, live: Sequence, new_files: Sequence[str], new_data) -> tuple[list, list]:
    """Match each new file with a live data file holding the same bytes (each live file at most
    once): (the live data files matched, the new files' data files left unmatched). A new file
    that *is* a live file (same path: an incremental update listing what it keeps) matches it."""
    by_path = {f.file_path: f for f in live}
    twins: dict[tuple[int, int], list] = {}
    for data_file in live:
        twins.setdefault((data_file.record_count, data_file.file_size_in_bytes),
                         []).append(data_file)
    taken: set[str] = set()
    kept, added = [], []
    digests: dict[str, str] = {}

    def same_bytes(a: str, b: str) -> bool:
        if _same_local_file(a, b):
            return True
        for path in (a, b):
            if path not in digests:
                digests[path] = digest(io, [path])
        return digests[a] == digests[b]

    for path, data_file in zip(new_files, new_data, strict=True):
        match = by_path.get(path)
        if match is None or match.file_path in taken:
            match = next((f for f in twins.get((data_file.record_count,
                                                data_file.file_size_in_bytes), [])
                          if f.file_path not in taken and same_bytes(f.file_path, path)), None)
        if match is None:
            added.append(data_file)
        else:
            taken.add(match.file_path)
            kept.append(match)
    return kept, added


def _same_local_file(a: str, b: str) -> bool:
    import os

    if "://" in a.removeprefix("file://") or "://" in b.removeprefix("file://"):
        return False
    try:
        return os.path.samefile(a.removeprefix("file://"), b.removeprefix("file://"))
    except OSError:
        return False


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
