"""The whole graph in the s3 environment against a real S3/Glue HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
from pyiceberg.table import StaticTable

from stedi_assets import schemas
from stedi_assets.cli import sql_main
from stedi_assets.definitions import Settings
from stedi_assets.deployments import build_storage
from stedi_assets.engines.polars_engine import PolarsEngine
from stedi_assets.io.iceberg_io import scan_local_table
from stedi_assets_tests.support.paths import REPO_ROOT as REPO
from stedi_assets_tests.support.s3_helpers import (
    REAL_2023_LANDING,
    SEEDS_FOLDERS,
    failure_messages,
    materialize_lakehouse,
    new_bucket,
    row_counts,
    s3_settings,
    upload_landing,
)
from stedi_assets_tests.support.tiny_landing import (
    CUSTOMERS_WITHOUT_CONSENT,
    EXPECTED_COUNTS,
    write_tiny_landing,
)

pytest_plugins = ["stedi_assets_tests.support.s3_server"]

REAL_2023_COUNTS = {
    "customer_landing": 956, "accelerometer_landing": 81273, "step_trainer_landing": 28680,
    "customer_trusted": 482, "accelerometer_trusted": 40981, "step_trainer_trusted": 14460,
    "customer_curated": 482, "machine_learning_curated": 43681,
    "customer_landing_rejects": 0, "accelerometer_landing_rejects": 0,
    "step_trainer_landing_rejects": 0,
}
LANDING_PREFIXES = "customer=customers"  # the seeds' bucket layout, see SEEDS_FOLDERS


@dataclass
class S3Run:
    name: str
    local_landing: Path
    bucket: str
    settings: Settings
    counts: dict[str, int]
    local_counts: dict[str, int]
    local_lakehouse: Path


def _landing_folder(name: str, tmp: Path) -> Path:
    if name == "tiny":
        return write_tiny_landing(tmp / "tiny-landing")
    folder = {"sample": REPO / "data" / "landing", "real-2023": REAL_2023_LANDING}[name]
    if not folder.is_dir():
        if os.environ.get("CI"):  # as in the other graph tests: CI must run, not skip
            pytest.fail(f"{name} landing data is missing at {folder}")
        pytest.skip(f"{name} landing data not found at {folder}")
    return folder


@pytest.fixture(scope="module", params=["tiny", "sample", "real-2023"])
def s3_run(request, s3_endpoint, s3_client, tmp_path_factory) -> S3Run:
    """Upload a landing data set in the seeds' layout, materialize the graph on S3 and locally."""
    tmp = tmp_path_factory.mktemp(request.param)
    landing = _landing_folder(request.param, tmp)
    bucket = new_bucket(s3_client)
    assert upload_landing(s3_client, landing, bucket, "landing", SEEDS_FOLDERS) > 0
    settings = s3_settings(s3_endpoint, f"s3://{bucket}/landing/", f"s3://{bucket}/lakehouse",
                           STEDI_LANDING_PREFIXES=LANDING_PREFIXES)
    result = materialize_lakehouse(settings)
    assert result.success, failure_messages(result)
    local = materialize_lakehouse(Settings.from_env({
        "STEDI_LANDING_ROOT": str(landing), "STEDI_LAKEHOUSE_ROOT": str(tmp / "lakehouse")}))
    assert local.success, failure_messages(local)
    return S3Run(request.param, landing, bucket, settings, row_counts(result), row_counts(local),
                 tmp / "lakehouse")


def test_s3_counts_equal_local_counts(s3_run: S3Run):
    assert set(s3_run.counts) == set(schemas.TABLES)
    assert s3_run.counts == s3_run.local_counts
    expected = {"tiny": EXPECTED_COUNTS, "real-2023": REAL_2023_COUNTS}.get(s3_run.name)
    if expected:
        assert s3_run.counts == expected


def _iceberg_table(glue_client, database: str, table: schemas.Table) -> dict:
    database = f"{database}_landing" if table.zone == "landing" else database
    return glue_client.get_table(DatabaseName=database, Name=table.name)["Table"]


def test_every_table_is_an_iceberg_table_in_the_bucket(s3_run: S3Run, s3_client, glue_client):
    listed = s3_client.list_objects_v2(Bucket=s3_run.bucket, Prefix="lakehouse/")
    keys = [obj["Key"] for obj in listed.get("Contents", [])]
    _, io_manager, _ = build_storage(s3_run.settings)
    for table in schemas.TABLES.values():
        prefix = f"lakehouse/{table.zone}/{table.name}/"
        assert any(k.startswith(prefix + "metadata/") and k.endswith(".metadata.json")
                   for k in keys), table.name
        assert all(k.startswith((prefix + "metadata/", prefix + "data/"))
                   for k in keys if k.startswith(prefix)), table.name
        # the Glue entry points at metadata Polars reads on its own (as Athena would)
        glue = _iceberg_table(glue_client, s3_run.settings.aws.glue_database, table)
        metadata_location = glue["Parameters"]["metadata_location"]
        assert metadata_location.startswith(f"s3://{s3_run.bucket}/{prefix}metadata/")
        static = StaticTable.from_metadata(metadata_location,
                                           io_manager.tables.config.file_io_properties())
        rows = pl.scan_iceberg(static, storage_options=io_manager.store.storage_options).select(
            pl.len()).collect().item()
        assert rows == s3_run.local_counts[table.name], table.name
        # and through the IO manager (pinned snapshot), independent of the run's metadata
        assert io_manager.scan_table(table.name).select(pl.len()).collect().item() == rows


def test_glue_catalog_has_iceberg_tables_and_the_raw_landing_json(s3_run: S3Run, glue_client):
    for table in schemas.TABLES.values():
        glue = _iceberg_table(glue_client, s3_run.settings.aws.glue_database, table)
        assert glue["Parameters"]["table_type"].upper() == "ICEBERG", table.name
        assert glue["StorageDescriptor"]["Location"] == (
            f"s3://{s3_run.bucket}/lakehouse/{table.zone}/{table.name}")
        assert [c["Name"] for c in glue["StorageDescriptor"]["Columns"]] == table.column_names
    database = s3_run.settings.aws.glue_database
    raw = {t["Name"]: t for t in glue_client.get_tables(DatabaseName=database)["TableList"]
           if t["StorageDescriptor"]["Location"].startswith(f"s3://{s3_run.bucket}/landing/")}
    assert set(raw) == {t.name for t in schemas.LANDING_TABLES}
    for table in schemas.LANDING_TABLES:  # raw landing data, as the seeds' DDL has it
        storage = raw[table.name]["StorageDescriptor"]
        assert storage["Location"] == f"s3://{s3_run.bucket}/landing/{SEEDS_FOLDERS[table.source]}/"
        assert storage["SerdeInfo"]["SerializationLibrary"] == "org.openx.data.jsonserde.JsonSerDe"
        assert [(c["Name"], c["Type"]) for c in storage["Columns"]] == [
            (c.name, schemas.CATALOG_TYPES[c.type]) for c in table.columns]


def test_stedi_sql_reads_the_s3_lakehouse(s3_run: S3Run, s3_endpoint, monkeypatch, capsys):
    for name, value in {"STEDI_ENV": "s3", "STEDI_LAKEHOUSE_ROOT": f"s3://{s3_run.bucket}/lakehouse",
                        "STEDI_GLUE_DATABASE": s3_run.settings.aws.glue_database,
                        "AWS_ENDPOINT_URL": s3_endpoint,
                        "STEDI_PSEUDONYM_SECRET": "s3-test-secret"}.items():
        monkeypatch.setenv(name, value)
    query = ("SELECT count(*) AS n FROM customer_landing "
             "WHERE shareWithResearchAsOfDate IS NULL")
    assert sql_main([query, "--format", "csv"]) == 0
    no_consent = int(capsys.readouterr().out.splitlines()[1])
    local = scan_local_table(s3_run.local_lakehouse, "customer_landing").collect()
    assert no_consent == local["shareWithResearchAsOfDate"].null_count()
    if s3_run.name == "tiny":
        assert no_consent == CUSTOMERS_WITHOUT_CONSENT
    assert sql_main(["--snapshots", "customer_trusted", "--format", "csv"]) == 0
    history = capsys.readouterr().out.splitlines()
    assert history[0].startswith("snapshot_id,committed_at") and len(history) == 2


def _data_keys(s3_client, bucket: str, prefix: str) -> list[str]:
    """The objects under a data folder (not the folder markers pyarrow's S3 filesystem leaves
    after deleting a file)."""
    listed = s3_client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return [o["Key"] for o in listed if not o["Key"].endswith("/")]


def test_rematerializing_unchanged_input_commits_nothing_and_ignores_stray_files(
        s3_endpoint, s3_client, tmp_path):
    bucket = new_bucket(s3_client)
    upload_landing(s3_client, write_tiny_landing(tmp_path / "landing"), bucket, "landing")
    settings = s3_settings(s3_endpoint, f"s3://{bucket}/landing", f"s3://{bucket}/lake/house/")
    first = materialize_lakehouse(settings)
    assert first.success, failure_messages(first)
    data = "lake/house/trusted/customer_trusted/data/"
    committed = _data_keys(s3_client, bucket, data)
    stray = data + "left-by-a-killed-writer.parquet"
    s3_client.copy_object(Bucket=bucket, Key=stray,
                          CopySource={"Bucket": bucket, "Key": committed[0]})

    result = materialize_lakehouse(settings)

    assert result.success, failure_messages(result)
    assert row_counts(result) == EXPECTED_COUNTS
    for event in result.get_asset_materialization_events():
        metadata = event.materialization.metadata
        assert metadata["iceberg/new_snapshot"].value is False, event.asset_key
    keys = sorted(_data_keys(s3_client, bucket, data))
    assert keys == sorted([*committed, stray])  # the unchanged writes left nothing behind
    _, io_manager, _ = build_storage(settings)
    assert f"s3://{bucket}/{stray}" not in io_manager.snapshot("customer_trusted").files


def test_landing_prefix_with_many_files_is_read_completely(s3_endpoint, s3_client, tmp_path):
    """More objects than one ListObjectsV2 page (1000) under one prefix, none dropped."""
    bucket = new_bucket(s3_client)
    for index in range(1005):
        s3_client.put_object(
            Bucket=bucket, Key=f"landing/step_trainer/part-{index:05d}.json",
            Body=(f'{{"sensorReadingTime": {index}, "serialNumber": "s", '
                  f'"distanceFromObject": 1}}\n').encode())
    s3_client.put_object(Bucket=bucket, Key="landing/step_trainer/_SUCCESS", Body=b"")
    landing, _, _ = build_storage(
        s3_settings(s3_endpoint, f"s3://{bucket}/landing", f"s3://{bucket}/lakehouse"))

    files = landing.files("step_trainer")
    batch = PolarsEngine().read_landing(files[:3], schemas.TABLES["step_trainer_landing"],
                                        landing.store)

    assert len(files) == 1005 and files[0].endswith("part-00000.json")
    assert batch.rows["sensorReadingTime"].to_list() == [0, 1, 2]


def scan_table(io_manager, name: str) -> list[str]:
    return io_manager.scan_table(name).collect().to_dict(as_series=False)


def test_time_travel_then_erasure_on_s3(s3_endpoint, s3_client, tmp_path):
    """On S3 and the Glue catalog: the withdrawal run updates the reading tables incrementally;
    an older snapshot stays readable within the retention; with
    retention 0 the next run deletes its objects, and no object under the consented zones holds
    the withdrawn customer."""
    from stedi_assets.io.iceberg_tables import IcebergTableError

    bucket = new_bucket(s3_client)
    landing = write_tiny_landing(tmp_path / "landing")
    upload_landing(s3_client, landing, bucket, "landing")
    roots = (s3_endpoint, f"s3://{bucket}/landing", f"s3://{bucket}/lake")
    assert materialize_lakehouse(s3_settings(*roots)).success
    _, io_manager, _ = build_storage(s3_settings(*roots))
    before = io_manager.snapshot("customer_trusted").snapshot_id

    withdrawal = {"customerName": "ann", "email": "ann@example.com", "lastUpdateDate": 9000,
                  "serialNumber": "serial-a", "shareWithResearchAsOfDate": None}
    s3_client.put_object(Bucket=bucket, Key="landing/customer/customer-2.json",
                         Body=(json.dumps(withdrawal) + "\n").encode())
    second = materialize_lakehouse(s3_settings(*roots))
    assert second.success, failure_messages(second)
    for event in second.get_asset_materialization_events():  # incremental on S3 as well
        if event.asset_key.path[-1] in ("accelerometer_trusted", "step_trainer_trusted",
                                        "machine_learning_curated"):
            assert event.materialization.metadata["incremental"].value is True, event.asset_key
    assert "ann@example.com" not in scan_table(io_manager, "accelerometer_trusted")["user"]
    old = io_manager.scan_table("customer_trusted", snapshot_id=before).collect()
    assert "ann@example.com" in old["email"].to_list()  # time travel within the retention
    assert "ann@example.com" not in io_manager.scan_table("customer_trusted").collect()[
        "email"].to_list()

    erased = materialize_lakehouse(s3_settings(*roots, STEDI_SNAPSHOT_RETENTION="0"))
    assert erased.success, failure_messages(erased)
    with pytest.raises(IcebergTableError, match=f"no snapshot {before}"):
        io_manager.snapshot("customer_trusted", snapshot_id=before)
    for zone in ("trusted", "curated"):
        for obj in s3_client.list_objects_v2(Bucket=bucket, Prefix=f"lake/{zone}/")["Contents"]:
            body = s3_client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            assert b"ann@example.com" not in body, obj["Key"]
        for name in (t.name for t in schemas.TABLES.values() if t.zone == zone):
            data = {f"s3://{bucket}/{key}"
                    for key in _data_keys(s3_client, bucket, f"lake/{zone}/{name}/data/")}
            current = io_manager.snapshot(name)
            logs = {path for path in data if "/data/_changes/" in path}
            assert logs <= {current.properties.get("stedi.changed-instants")}, name
            assert data - logs == set(current.files) or not current.rows, name
            # only the current snapshot's files (and its change log) are left
