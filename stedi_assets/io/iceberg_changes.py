"""What changed in a table since a snapshot a reader consumed: the data files added and removed
(a file kept from one snapshot to the next keeps its path, see iceberg_content.keep_identical).

Incremental runs (stedi_assets/increments.py) read only these. `None` means the change cannot
be known: the old snapshot was expired (with its manifests), or the table has row-level delete
files; the caller then rebuilds in full. Dagster-free."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import pyarrow as pa

from stedi_assets.io.iceberg_content import live_files


@dataclass(frozen=True)
class TableChanges:
    table: str
    since: int
    current: int
    added: tuple[str, ...]
    removed: tuple[str, ...]
    #: rows of the files added, of the files removed (the manifests' record counts)
    rows_added: int = 0
    rows_removed: int = 0

    @property
    def unchanged(self) -> bool:
        return not self.added and not self.removed


def changes_since(iceberg, table: str, since: int, until: int | None = None
                  ) -> TableChanges | None:
    """The data files added and removed between snapshot `since` and `until` (default: the
    current one)."""
    current = iceberg.current_snapshot() if until is None else iceberg.snapshot_by_id(until)
    old = iceberg.snapshot_by_id(since)
    if current is None or old is None:
        return None
    if old.snapshot_id == current.snapshot_id:
        return TableChanges(table, since, since, (), ())
    try:
        before, old_deletes = live_files(iceberg.io, old)
    except FileNotFoundError:  # its manifests are gone (expired under another writer)
        return None
    now, deletes = live_files(iceberg.io, current)
    if deletes or old_deletes:
        return None
    old_rows = {f.file_path: f.record_count for f in before if f.record_count}
    new_rows = {f.file_path: f.record_count for f in now if f.record_count}
    added, removed = new_rows.keys() - old_rows.keys(), old_rows.keys() - new_rows.keys()
    return TableChanges(table, since, current.snapshot_id, tuple(sorted(added)),
                        tuple(sorted(removed)), sum(new_rows[f] for f in added),
                        sum(old_rows[f] for f in removed))


#: Snapshot summary property of an incremental update: the path of its change log, a Parquet
#: file of the instants (column `_time`) at which the update may have added or removed a row
#: (a superset: an instant recomputed to the same rows is harmless). Readers of the table take
#: the instants that changed between two snapshots from these logs instead of comparing the
#: rows of every data file an update rewrote — a withdrawal rewrites a file per day.
CHANGED_INSTANTS_PROPERTY = "stedi.changed-instants"
CHANGES_FOLDER = "data/_changes"

#: Snapshot summary property of an incremental update that wrote data files holding only rows
#: of its base snapshot (a file rewritten without the rows the update removed, a day's files
#: compacted into one): JSON {"from": [the base files they were made from], "to": [the files
#: written]}, paths relative to the table's location. A consent check that passed on the
#: base treats those rows as checked (`carried_files`) instead of checking them as new: a
#: withdrawal rewrites a file per day, and their rows are not new.
CARRIED_FILES_PROPERTY = "stedi.carried-files"


#: Table property: what a run that recomputed a table to the same rows read (no snapshot is
#: committed for it, so no summary can say so): {"snapshot": id, "properties": {...}}, read
#: as part of that snapshot's properties. Without it the table would keep pointing at the
#: upstream snapshots (and the version) of the run that last changed it, and every later run
#: would see the same "removed landing files" again and rebuild in full.
SNAPSHOT_NOTE_PROPERTY = "stedi.snapshot-note"
#: properties that belong to the commit that made a snapshot, never noted
_NOT_NOTED = ("stedi.run-id", CHANGED_INSTANTS_PROPERTY, CARRIED_FILES_PROPERTY)


def summary_properties(snapshot) -> dict[str, str]:
    return dict(snapshot.summary.additional_properties) if snapshot.summary else {}


def snapshot_properties(iceberg, snapshot) -> dict[str, str]:
    """A snapshot's summary properties, with what a later run that changed nothing noted."""
    properties = summary_properties(snapshot)
    try:
        note = json.loads(iceberg.properties.get(SNAPSHOT_NOTE_PROPERTY, ""))
        if str(note["snapshot"]) == str(snapshot.snapshot_id):
            properties.update({str(k): str(v) for k, v in note["properties"].items()
                               if k not in _NOT_NOTED})
    except (ValueError, KeyError, TypeError, AttributeError):
        pass  # no note, or not for this snapshot
    return properties


def note_unchanged(tx, iceberg, snapshot, properties: dict[str, str]) -> bool:
    """In transaction `tx`, note `properties` for `snapshot` (a run recomputed the table to the
    rows it holds); False when they are what it says already."""
    noted = {k: v for k, v in properties.items() if k not in _NOT_NOTED}
    current = snapshot_properties(iceberg, snapshot)
    if all(current.get(k) == v for k, v in noted.items()):
        return False
    tx.set_properties(**{SNAPSHOT_NOTE_PROPERTY: json.dumps(
        {"snapshot": str(snapshot.snapshot_id), "properties": noted}, sort_keys=True)})
    return True


def write_changed_instants(iceberg, instants: pa.Array) -> str:
    """Write a change log (the instants given, once each) beside the table's data files;
    its path, for the snapshot's summary. Files of snapshots that are expired are deleted
    with them (iceberg_maintenance.referenced_files)."""
    import pyarrow.parquet as pq

    path = f"{iceberg.metadata.location.rstrip('/')}/{CHANGES_FOLDER}/{uuid.uuid4().hex}.parquet"
    values = pa.table({"_time": instants.cast(pa.int64())}).group_by("_time").aggregate([])
    with iceberg.io.new_output(path).create(overwrite=True) as stream:
        pq.write_table(values, stream)
    return path


def changed_instants(iceberg, since: int, until: int) -> pa.Array | None:
    """The instants at which the table may have gained or lost a row between snapshot `since`
    and `until`, from the change logs of the snapshots in between; None when one of them has
    none (a full rebuild, another writer) or the history between them is not known."""
    import pyarrow.parquet as pq

    if since == until:
        return pa.array([], pa.int64())
    paths, snapshot = [], iceberg.snapshot_by_id(until)
    while snapshot is not None and snapshot.snapshot_id != since:
        path = summary_properties(snapshot).get(CHANGED_INSTANTS_PROPERTY)
        if not path or snapshot.parent_snapshot_id is None:
            return None
        paths.append(path)
        snapshot = iceberg.snapshot_by_id(snapshot.parent_snapshot_id)
    if snapshot is None:
        return None
    try:
        parts = []
        for path in paths:
            with iceberg.io.new_input(path).open() as stream:
                parts.append(pq.read_table(stream).column("_time").combine_chunks())
    except (FileNotFoundError, OSError, KeyError):
        return None
    return pa.concat_arrays(parts) if parts else pa.array([], pa.int64())


def carried_record(location: str, sources: list[str], written: list[str]) -> str:
    """The CARRIED_FILES_PROPERTY value of an update that made `written` from `sources`."""
    prefix = location.rstrip("/") + "/"

    def relative(paths: list[str]) -> list[str]:
        return sorted(p.removeprefix(prefix) for p in paths)

    return json.dumps({"from": relative(sources), "to": relative(written)})


def carried_files(iceberg, since: int, until: int, passed: set[str]) -> set[str]:
    """The data files the updates after snapshot `since` up to `until` wrote with only rows of
    `passed` files (since's files, whose rows a check passed), following rewrites of rewrites;
    a commit whose sources were not all passed carries nothing (its rows are checked as new),
    and so does any history that is not known (empty set)."""
    chain, snapshot = [], iceberg.snapshot_by_id(until)
    while snapshot is not None and snapshot.snapshot_id != since:
        chain.append(summary_properties(snapshot).get(CARRIED_FILES_PROPERTY))
        parent = snapshot.parent_snapshot_id
        snapshot = iceberg.snapshot_by_id(parent) if parent is not None else None
    if snapshot is None:
        return set()
    prefix = iceberg.metadata.location.rstrip("/") + "/"
    good, carried = set(passed), set()
    for record in reversed(chain):  # oldest first
        try:
            moved = json.loads(record) if record else None
            sources = {prefix + p for p in moved["from"]} if moved else None
            written = {prefix + p for p in moved["to"]} if moved else set()
        except (ValueError, KeyError, TypeError):
            sources, written = None, set()
        if sources is not None and sources <= good:
            good |= written
            carried |= written
    return carried
