"""The IO manager's side of incremental runs, on real Iceberg tables: identical files are kept
(a new landing file only adds its parts), an update rewrites only the data files holding an
affected slice, and an update whose base moved is dropped for a full rebuild."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
from dagster import build_output_context

from stedi_assets.increments import Affected, TableUpdate
from stedi_assets.io.iceberg_io import LocalIcebergIOManager
from stedi_assets.io.iceberg_maintenance import referenced_files
from stedi_assets.io.parquet_parts import ParquetParts

TABLE = "accelerometer_trusted"


def readings(users: list[str], times: list[int]) -> pl.DataFrame:
    return pl.DataFrame({"user": users, "timestamp": times, "x": [1.0] * len(users),
                         "y": [0.0] * len(users), "z": [0.0] * len(users)})


def write(io: LocalIcebergIOManager, obj) -> dict[str, object]:
    context = build_output_context(asset_key=TABLE, step_key="s")
    io.handle_output(context, obj)
    return {k: getattr(v, "value", v) for k, v in context.get_logged_metadata().items()}


def test_publishing_the_same_files_again_keeps_them_and_adds_only_new_ones(tmp_path):
    io = LocalIcebergIOManager(root=str(tmp_path))
    write(io, readings(["a@x"], [1]))
    before = io.snapshot(TABLE)
    copy = tmp_path / "copy.parquet"  # the same bytes in another file (not a link)
    shutil.copyfile(before.files[0], copy)
    new = tmp_path / "new.parquet"
    readings(["b@x"], [2]).write_parquet(new)

    write(io, ParquetParts((str(copy),), copy_schema(copy)))
    assert io.snapshot(TABLE).snapshot_id == before.snapshot_id  # same bytes: no commit
    write(io, ParquetParts((str(copy), str(new)), copy_schema(copy)))
    after = io.snapshot(TABLE)
    change = io.tables.changes(TABLE, before.snapshot_id)
    assert change.removed == () and len(change.added) == 1  # the old file kept, one added
    assert before.files[0] in after.files
    assert io.tables.changes(TABLE, after.snapshot_id).unchanged
    write(io, ParquetParts((str(new),), copy_schema(new)))
    assert io.tables.changes(TABLE, after.snapshot_id).removed == before.files


def copy_schema(path: Path) -> pl.Schema:
    return pl.read_parquet_schema(path)


def test_an_update_rewrites_only_the_files_holding_an_affected_slice(tmp_path):
    io = LocalIcebergIOManager(root=str(tmp_path))
    write(io, readings(["a@x", "b@x"], [1, 2]))
    write(io, TableUpdate("v", base=io.snapshot(TABLE), affected=Affected(TABLE),
                          slice=readings(["c@x"], [9])))  # an append: nothing touched
    base = io.snapshot(TABLE)
    assert len(base.files) == 2
    metadata = write(io, TableUpdate(
        "v", base=base,
        affected=Affected(TABLE, pairs=pl.DataFrame({"_group": ["b@x"], "_time": [2]})),
        slice=readings(["B@x"], [2])))
    assert metadata["incremental/data_files_kept"] == 1  # c@x's file: its time is out of range
    assert metadata["incremental/data_files_rewritten"] == 1
    assert metadata["incremental/data_files_added"] == 1
    table = io.scan_table(TABLE).collect().sort("timestamp")
    assert table["user"].to_list() == ["a@x", "B@x", "c@x"]
    assert io.snapshot(TABLE).properties["stedi.table-version"] == "v"


def test_an_update_whose_base_moved_becomes_a_full_rebuild_and_leaves_no_file(tmp_path):
    io = LocalIcebergIOManager(root=str(tmp_path))
    write(io, readings(["a@x"], [1]))
    stale = io.snapshot(TABLE)
    write(io, readings(["a@x", "b@x"], [1, 2]))  # another run commits meanwhile
    metadata = write(io, TableUpdate(
        "v", base=stale, affected=Affected(TABLE, groups=pl.DataFrame({"_group": ["a@x"]})),
        slice=readings(["a@x"], [5]), full=lambda: readings(["z@x"], [7])))
    assert metadata["incremental/rebuilt_in_full"]
    assert io.scan_table(TABLE).collect()["user"].to_list() == ["z@x"]
    iceberg = io.tables.load(TABLE)
    data = {str(p) for p in (tmp_path / "trusted" / TABLE / "data").rglob("*.parquet")}
    assert data == {p.removeprefix("file://") for p in referenced_files(
        iceberg.io, iceberg.snapshots()) if p.endswith(".parquet")}  # the update's files gone


DAY = 86_400_000


def _partitions(io: LocalIcebergIOManager) -> dict[str, object]:
    """data file -> its Iceberg partition value (the day's first instant)."""
    from stedi_assets.io.iceberg_content import live_files

    iceberg = io.tables.load(TABLE)
    return {f.file_path: f.partition[0]
            for f in live_files(iceberg.io, iceberg.current_snapshot())[0]}


def test_reading_tables_are_partitioned_by_day_one_day_per_data_file(tmp_path):
    io = LocalIcebergIOManager(root=str(tmp_path))
    write(io, readings(["a@x", "b@x", "c@x", "d@x"], [5, DAY + 1, DAY + 2, 3 * DAY - 1]))
    field = io.tables.load(TABLE).spec().fields[0]
    assert (field.name, str(field.transform)) == ("timestamp_day", "truncate[86400000]")
    days = _partitions(io)
    assert sorted(days.values()) == [0, DAY, 2 * DAY]
    for path, day in days.items():  # every row of a file on the file's day
        times = pl.read_parquet(path)["timestamp"]
        assert times.min() >= day and times.max() < day + DAY
    # an update touching one day rewrites that day's file only
    metadata = write(io, TableUpdate(
        "v", base=io.snapshot(TABLE),
        affected=Affected(TABLE, pairs=pl.DataFrame({"_group": ["b@x"], "_time": [DAY + 1]})),
        slice=readings(["b@x"], [DAY + 7])))
    assert (metadata["incremental/data_files_kept"],
            metadata["incremental/data_files_rewritten"]) == (2, 1)
    assert sorted(io.scan_table(TABLE).collect()["timestamp"].to_list()) == [
        5, DAY + 2, DAY + 7, 3 * DAY - 1]


def test_a_day_that_gathered_many_files_is_compacted_by_the_next_update(tmp_path):
    from stedi_assets.io.iceberg_partitions import COMPACT_AT

    io = LocalIcebergIOManager(root=str(tmp_path))
    write(io, readings(["a@x", "z@x"], [0, DAY]))
    for n in range(1, COMPACT_AT):  # appends to day 0, one data file each
        write(io, TableUpdate("v", base=io.snapshot(TABLE), affected=Affected(TABLE),
                              slice=readings([f"u{n}@x"], [n])))
    assert list(_partitions(io).values()).count(0) == COMPACT_AT
    write(io, TableUpdate("v", base=io.snapshot(TABLE), affected=Affected(TABLE),
                          slice=readings(["late@x"], [DAY + 5])))
    days = list(_partitions(io).values())
    assert days.count(0) == 1 and days.count(DAY) == 2  # day 0 compacted; day 1 untouched
    users = io.scan_table(TABLE).collect()["user"].to_list()
    assert sorted(users) == sorted(["a@x", "z@x", "late@x",
                                    *(f"u{n}@x" for n in range(1, COMPACT_AT))])


def test_an_update_keeps_a_change_log_of_the_instants_it_touched(tmp_path):
    """Readers take the instants an update changed from its log, not from comparing every
    row of the files it rewrote; the log goes with its snapshot when that expires."""
    import time

    io = LocalIcebergIOManager(root=str(tmp_path))
    write(io, readings(["a@x", "b@x", "b@x", "c@x"], [1, 2, 3, DAY + 3]))
    base = io.snapshot(TABLE)
    write(io, TableUpdate(  # b withdraws; a reading of c arrives
        "v", base=base, affected=Affected(TABLE, groups=pl.DataFrame({"_group": ["b@x"]}),
                                          pairs=pl.DataFrame({"_group": ["c@x"],
                                                              "_time": [DAY + 9]})),
        slice=readings(["c@x"], [DAY + 9])))
    update = io.snapshot(TABLE)
    log = update.properties["stedi.changed-instants"]
    assert sorted(io.tables.changed_instants(TABLE, base.snapshot_id,
                                             update.snapshot_id).to_pylist()) == [2, 3, DAY + 9]
    write(io, readings(["a@x"], [1]))  # a full rebuild keeps no log: readers compare files
    rebuilt = io.snapshot(TABLE)
    assert "stedi.changed-instants" not in rebuilt.properties
    assert io.tables.changed_instants(TABLE, update.snapshot_id, rebuilt.snapshot_id) is None
    assert io.tables.changed_instants(TABLE, base.snapshot_id, rebuilt.snapshot_id) is None
    assert Path(log).is_file()
    io.tables.expire(TABLE, int(time.time() * 1000) + 1)
    assert not Path(log).exists()


def test_a_run_that_changes_nothing_still_records_what_it_read(tmp_path):
    """Recomputing a table to the rows it holds commits no snapshot; what the run read (its
    upstream snapshots, the table's version) is noted for the current one, so the next run
    plans from it (else a rewritten landing file that changed nothing here would make every
    later run rebuild the table in full)."""
    io = LocalIcebergIOManager(root=str(tmp_path))
    write(io, TableUpdate("v1", rows=readings(["a@x"], [1])))
    first = io.snapshot(TABLE)
    write(io, TableUpdate("v2", rows=readings(["a@x"], [1])))
    again = io.snapshot(TABLE)
    assert again.snapshot_id == first.snapshot_id
    assert again.properties["stedi.table-version"] == "v2"
    assert again.properties["stedi.run-id"] == first.properties["stedi.run-id"]
    write(io, TableUpdate("v2", rows=readings(["b@x"], [1])))  # a new snapshot: its own
    assert io.snapshot(TABLE).properties["stedi.table-version"] == "v2"
    assert io.snapshot(TABLE, first.snapshot_id).properties["stedi.table-version"] == "v2"


def test_an_update_reads_only_the_files_of_the_days_it_touches(tmp_path):
    from stedi_assets.io.iceberg_partitions import files_on_days
    from stedi_assets.transforms.polars.increments import affected_days

    io = LocalIcebergIOManager(root=str(tmp_path))
    write(io, readings(["a@x", "b@x", "c@x"], [5, DAY + 1, 2 * DAY + 3]))
    base = io.snapshot(TABLE)
    (other,) = [p for p, day in _partitions(io).items() if day == 2 * DAY]
    Path(other).write_bytes(b"not parquet")  # any read of day 2's file fails
    affected = Affected(TABLE, pairs=pl.DataFrame({"_group": ["b@x"], "_time": [DAY + 1]}))
    assert affected_days(affected, DAY) == {1}
    assert other not in files_on_days(base.files, {1})
    metadata = write(io, TableUpdate("v", base=base, affected=affected,
                                     slice=readings(["b@x"], [DAY + 9])))
    assert (metadata["incremental/data_files_kept"],
            metadata["incremental/data_files_rewritten"]) == (2, 1)
    # a whole customer (any day) or a file written without day folders: every file is read
    assert affected_days(Affected(TABLE, groups=pl.DataFrame({"_group": ["a@x"]})), DAY) is None
    assert files_on_days(["/t/data/w/00000.parquet"], set()) == ["/t/data/w/00000.parquet"]
    # floor division, as the writers name their folders; a null instant is on no day
    times = pl.DataFrame({"_time": [-1, None, 3 * DAY]}, schema={"_time": pl.Int64})
    assert affected_days(Affected(TABLE, times=times), DAY) == {-1, 3}
