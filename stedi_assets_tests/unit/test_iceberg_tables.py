"""The Iceberg tables through pyiceberg's SQL catalog on a real local lakehouse: commits,
pinned snapshots, unchanged input, time travel, expiry that erases, the old layout refused."""

from __future__ import annotations

import time
from pathlib import Path

import polars as pl
import pytest
from dagster import Failure, build_output_context

from stedi_assets.io.iceberg_catalog import LOCAL_CATALOG_FILE, CatalogConfig
from stedi_assets.io.iceberg_io import LocalIcebergIOManager
from stedi_assets.io.iceberg_tables import IcebergTableError, IcebergTables

TABLE = "customer_trusted"


def _rows(*emails: str) -> pl.DataFrame:
    return pl.DataFrame({"email": list(emails), "lastUpdateDate": list(range(len(emails)))})


def _write(io: LocalIcebergIOManager, frame: pl.DataFrame | pl.LazyFrame,
           table: str = TABLE) -> dict:
    context = build_output_context(asset_key=table, run_id="test-run")
    io.handle_output(context, frame)
    return {k: getattr(v, "value", v) for k, v in context.get_logged_metadata().items()}


def _bytes_under(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


def test_a_commit_is_a_snapshot_and_readers_keep_theirs(tmp_path):
    io = LocalIcebergIOManager(root=str(tmp_path))
    first = _write(io, _rows("a@x", "b@x"))
    pinned = io.snapshot(TABLE)
    second = _write(io, _rows("c@x").lazy())

    assert (tmp_path / LOCAL_CATALOG_FILE).is_file()
    assert first["iceberg/snapshot_id"] != second["iceberg/snapshot_id"]
    assert first["dagster/row_count"] == 2 and second["dagster/row_count"] == 1
    assert str(io.snapshot(TABLE).snapshot_id) == second["iceberg/snapshot_id"]
    # a reader holding the first snapshot still reads all of it, and only it
    assert io.scan_snapshot(pinned).collect()["email"].to_list() == ["a@x", "b@x"]
    assert io.scan_table(TABLE).collect()["email"].to_list() == ["c@x"]
    # the catalog knows the table where the layout says, in namespace stedi
    table = IcebergTables(CatalogConfig(root=str(tmp_path))).load(TABLE)
    assert table.metadata.location == f"{tmp_path}/trusted/{TABLE}"
    assert table.metadata.format_version == 2


def test_unchanged_input_commits_no_new_snapshot(tmp_path):
    io = LocalIcebergIOManager(root=str(tmp_path))
    first = _write(io, _rows("a@x", "b@x"))
    again = _write(io, _rows("a@x", "b@x"))
    assert again["iceberg/new_snapshot"] is False
    assert again["iceberg/snapshot_id"] == first["iceberg/snapshot_id"]
    assert len(io.tables.history(TABLE)) == 1
    # the discarded write left no file behind
    assert len(list((tmp_path / "trusted" / TABLE / "data").iterdir())) == 1
    changed = _write(io, _rows("a@x", "B@x"))  # same size and count, other bytes
    assert changed["iceberg/new_snapshot"] is True
    assert len(io.tables.history(TABLE)) == 2


def test_time_travel_by_snapshot_id_and_by_time(tmp_path):
    io = LocalIcebergIOManager(root=str(tmp_path))
    old = int(_write(io, _rows("a@x"))["iceberg/snapshot_id"])
    time.sleep(0.01)
    between = int(time.time() * 1000)
    time.sleep(0.01)
    _write(io, _rows("b@x"))
    assert io.scan_table(TABLE, snapshot_id=old).collect()["email"].to_list() == ["a@x"]
    assert io.scan_table(TABLE, as_of_ms=between).collect()["email"].to_list() == ["a@x"]
    with pytest.raises(IcebergTableError, match="no snapshot at or before"):
        io.snapshot(TABLE, as_of_ms=between - 3_600_000)
    with pytest.raises(IcebergTableError, match="no snapshot 42"):
        io.snapshot(TABLE, snapshot_id=42)


def test_expiry_with_zero_retention_erases_older_snapshots_files(tmp_path):
    keep = LocalIcebergIOManager(root=str(tmp_path))
    _write(keep, _rows("withdrawn@example.com", "stays@example.com"))
    _write(keep, _rows("stays@example.com"))
    table_folder = tmp_path / "trusted" / TABLE
    assert b"withdrawn@example.com" in _bytes_under(table_folder)  # history keeps it

    erase = LocalIcebergIOManager(root=str(tmp_path), snapshot_retention_seconds=0)
    metadata = _write(erase, _rows("stays@example.com", "new@example.com"))
    assert metadata["iceberg/snapshots_expired"] == 2
    assert b"withdrawn@example.com" not in _bytes_under(table_folder)
    assert b"withdrawn@example.com" not in (tmp_path / LOCAL_CATALOG_FILE).read_bytes()
    assert [h["current"] for h in erase.tables.history(TABLE)] == [True]
    assert erase.scan_table(TABLE).collect()["email"].to_list() == [
        "stays@example.com", "new@example.com"]


def test_manifests_hold_no_string_values(tmp_path):
    io = LocalIcebergIOManager(root=str(tmp_path))
    _write(io, _rows("someone@example.com"))
    metadata = tmp_path / "trusted" / TABLE / "metadata"
    assert b"someone@" not in _bytes_under(metadata)


def test_columns_added_or_dropped_follow_the_data(tmp_path):
    io = LocalIcebergIOManager(root=str(tmp_path))
    _write(io, _rows("a@x"))
    _write(io, _rows("b@x").with_columns(pl.lit(1.5).alias("extra")).drop("lastUpdateDate"))
    assert io.scan_table(TABLE).collect_schema().names() == ["email", "extra"]
    empty = io.tables.snapshot(TABLE)
    assert [f.name for f in empty.schema] == ["email", "extra"]


def test_an_empty_table_reads_with_its_schema(tmp_path):
    io = LocalIcebergIOManager(root=str(tmp_path))
    _write(io, _rows("a@x").clear().lazy())
    frame = io.scan_table(TABLE).collect()
    assert frame.height == 0 and frame.columns == ["email", "lastUpdateDate"]


def test_a_lakehouse_in_the_old_layout_gets_a_clear_message(tmp_path):
    old = tmp_path / "trusted" / TABLE
    old.mkdir(parents=True)
    _rows("a@x").write_parquet(old / "part-00000.parquet")
    io = LocalIcebergIOManager(root=str(tmp_path))
    with pytest.raises(IcebergTableError, match="pre-Iceberg layout.*move that lakehouse"):
        io.snapshot(TABLE)
    with pytest.raises(Failure, match="pre-Iceberg layout"):
        _write(io, _rows("b@x"))
    assert sorted(p.name for p in old.iterdir()) == ["part-00000.parquet"]


def test_a_missing_table_names_what_to_do(tmp_path):
    from stedi_assets.io.iceberg_tables import TableNotMaterializedError

    with pytest.raises(TableNotMaterializedError, match="stedi.customer_trusted.*Materialize"):
        LocalIcebergIOManager(root=str(tmp_path)).snapshot(TABLE)


def test_landing_tables_live_in_their_own_namespace(tmp_path):
    config = CatalogConfig(root=str(tmp_path), database="lake")
    assert config.identifier("customer_landing") == ("lake_landing", "customer_landing")
    assert config.identifier("customer_landing_rejects") == ("lake_landing",
                                                             "customer_landing_rejects")
    assert config.identifier("machine_learning_curated") == ("lake", "machine_learning_curated")
    assert CatalogConfig(root="s3://b/p").kind == "glue"
    assert CatalogConfig(root="s3://b/p", uri="https://rest.example").kind == "rest"


def test_a_catalog_table_of_another_lakehouse_is_refused(tmp_path):
    shared_catalog = f"sqlite:///{tmp_path / 'shared.db'}"
    one = LocalIcebergIOManager(root=str(tmp_path / "one"), catalog_uri=shared_catalog)
    two = LocalIcebergIOManager(root=str(tmp_path / "two"), catalog_uri=shared_catalog)
    _write(one, _rows("a@x"))
    with pytest.raises(IcebergTableError, match="belongs to another lakehouse"):
        two.snapshot(TABLE)
    with pytest.raises(Failure, match="its own catalog database"):
        _write(two, _rows("b@x"))
    assert one.scan_table(TABLE).collect()["email"].to_list() == ["a@x"]


def _add_position_delete(io: LocalIcebergIOManager, table: str) -> None:
    """What a merge-on-read DELETE (e.g. Athena's) leaves: a position-delete file in a delete
    manifest of a new snapshot. pyiceberg writes only copy-on-write deletes, so the snapshot
    is made with its manifest writer set to delete content."""
    import os

    import pyarrow as pa
    import pyarrow.parquet as pq
    from pyiceberg.manifest import (
        DataFile,
        DataFileContent,
        FileFormat,
        ManifestContent,
        ManifestWriterV2,
    )
    from pyiceberg.table.snapshots import Operation as SnapshotOperation
    from pyiceberg.table.update.snapshot import _FastAppendFiles
    from pyiceberg.typedef import Record

    class DeleteManifestWriter(ManifestWriterV2):
        def content(self) -> ManifestContent:
            return ManifestContent.DELETES

    class AppendDeletes(_FastAppendFiles):
        def new_manifest_writer(self, spec):
            return DeleteManifestWriter(spec, self.schema(), self.new_manifest_output(),
                                        self._snapshot_id, self._compression)

    iceberg = io.tables.load(table)
    target = io.snapshot(table).files[0]
    path = f"{iceberg.metadata.location}/data/delete-00000.parquet"
    pq.write_table(pa.table({"file_path": [target], "pos": pa.array([0], pa.int64())}), path)
    delete_file = DataFile.from_args(
        content=DataFileContent.POSITION_DELETES, file_path=path,
        file_format=FileFormat.PARQUET, partition=Record(), record_count=1,
        file_size_in_bytes=os.path.getsize(path))
    delete_file.spec_id = iceberg.spec().spec_id
    with iceberg.transaction() as tx:
        producer = AppendDeletes(SnapshotOperation.DELETE, tx, iceberg.io)
        producer.append_data_file(delete_file)
        producer.commit()


def test_a_table_with_row_level_delete_files_is_refused(tmp_path):
    io = LocalIcebergIOManager(root=str(tmp_path))
    _write(io, _rows("a@x", "b@x"))
    _add_position_delete(io, TABLE)
    with pytest.raises(IcebergTableError, match="row-level delete files .* OPTIMIZE"):
        io.scan_table(TABLE)
    # re-materializing replaces the files and the deletes with them: readable again
    _write(io, _rows("c@x"))
    assert io.scan_table(TABLE).collect()["email"].to_list() == ["c@x"]
