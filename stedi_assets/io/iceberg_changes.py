"""What changed in a table since a snapshot a reader consumed: the data files added and removed
(a file kept from one snapshot to the next keeps its path, see iceberg_content.keep_identical).

Incremental runs (stedi_assets/increments.py) read only these. `None` means the change cannot
be known: the old snapshot was expired (with its manifests), or the table has row-level delete
files; the caller then rebuilds in full. Dagster-free."""

from __future__ import annotations

from dataclasses import dataclass

from stedi_assets.io.iceberg_content import live_files


@dataclass(frozen=True)
class TableChanges:
    table: str
    since: int
    current: int
    added: tuple[str, ...]
    removed: tuple[str, ...]

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
    old_paths = {f.file_path for f in before if f.record_count}
    new_paths = {f.file_path for f in now if f.record_count}
    return TableChanges(table, since, current.snapshot_id,
                        tuple(sorted(new_paths - old_paths)), tuple(sorted(old_paths - new_paths)))
