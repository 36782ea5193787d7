"""Which landing files are read, and how: gzip files are landed with every line accounted for,
nothing outside the landing root is read, nothing outside the lakehouse root is written
(issue 11, items 6 and 7). Both engines, local disk and S3."""

from __future__ import annotations

import bz2
import gzip
from pathlib import Path

import polars as pl
import pytest
from dagster import DagsterInstance, materialize

from stedi_assets import definitions, schemas
from stedi_assets.definitions import Settings
from stedi_assets.engines.landing_cache import LandingCache
from stedi_assets.engines.polars_engine import PolarsEngine
from stedi_assets.io.iceberg_io import LocalIcebergIOManager
from stedi_assets.io.landing_files import count_lines, landing_fingerprint, scan_landing_folder
from stedi_assets.io.landing_reader import LandingError, check_compression, read_landing_lines
from stedi_assets.io.local_paths import OutsideRootError
from stedi_assets.resources import LandingSource
from stedi_assets_tests.support.graph_runs import check_metadata, read_table, run_graph
from stedi_assets_tests.support.graph_runs import settings as graph_settings
from stedi_assets_tests.support.s3_helpers import (
    failure_messages,
    materialize_lakehouse,
    new_bucket,
    row_counts,
    s3_settings,
    upload_landing,
)
from stedi_assets_tests.support.tiny_landing import EXPECTED_COUNTS, write_tiny_landing

pytest_plugins = ["stedi_assets_tests.support.spark_session",
                  "stedi_assets_tests.support.s3_server"]

SECRET = '{"email":"root-secret@shadow.test","serialNumber":"hunter2"}'
LANDING_TABLES = [t.name for t in schemas.LANDING_TABLES]
LANDING_OUTPUTS = [*LANDING_TABLES, *(schemas.rejects_table(t).name
                                      for t in schemas.LANDING_TABLES)]


def _gzip_in_place(path: Path, members: int = 1) -> Path:
    """path -> path.gz; with `members` > 1, as concatenated gzip members (as Firehose writes)."""
    data = path.read_bytes()
    step = -(-len(data) // members)
    target = path.with_name(path.name + ".gz")
    target.write_bytes(b"".join(gzip.compress(data[i:i + step])
                                for i in range(0, len(data), step)))
    path.unlink()
    return target


def _compressed_landing(root: Path) -> Path:
    """The tiny landing with some files gzipped, plus a gzipped file with a broken line and no
    final newline, in two members."""
    write_tiny_landing(root)
    _gzip_in_place(root / "customer" / "customer-1.json")
    _gzip_in_place(root / "accelerometer" / "accelerometer-0.json", members=2)
    extra = root / "step_trainer" / "step_trainer-2.json"
    extra.write_text('{"sensorReadingTime": 9000, "serialNumber": "serial-a", '
                     '"distanceFromObject": 1}\n{"sensorReadingTime": oops}\n'
                     '{"sensorReadingTime": 9001, "serialNumber": "serial-b"}')
    _gzip_in_place(extra, members=3)
    return root


def _outside_secret(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "shadow"
    secret.write_text(SECRET + "\n")
    (outside / "folder").mkdir()
    (outside / "folder" / "more.json").write_text(SECRET + "\n")
    return secret


def _landing_with_links(root: Path, secret: Path) -> Path:
    write_tiny_landing(root)
    (root / "customer" / "leak.json").symlink_to(secret)  # a "file" leading outside
    (root / "customer" / "linked-folder").symlink_to(secret.parent / "folder")
    (root / "customer" / "inside.json").symlink_to(root / "customer" / "customer-0.json")
    return root


# --- compressed files -------------------------------------------------------------------------

def test_gzip_lines_are_read_and_counted_from_the_decompressed_bytes(tmp_path):
    landing = _compressed_landing(tmp_path / "landing")
    for path in sorted(landing.rglob("*.gz")):
        plain = gzip.decompress(path.read_bytes())
        expected = plain.count(b"\n") + (not plain.endswith(b"\n"))
        assert count_lines(str(path)) == expected
        assert read_landing_lines(str(path)).height == expected
        check_compression(str(path))
    lines = read_landing_lines(str(landing / "step_trainer" / "step_trainer-2.json.gz"))
    assert lines["line_number"].to_list() == [1, 2, 3]
    assert lines["line"][1] == '{"sensorReadingTime": oops}'


def test_other_codecs_and_misnamed_files_are_a_clear_error(tmp_path):
    plain = b'{"user": "a@x", "timestamp": 1}\n'
    cases = {
        "a.json.bz2": (bz2.compress(plain), "bzip2-compressed landing files are not read"),
        "b.json.zst": (b"\x28\xb5\x2f\xfd" + b"\x00" * 8, "zstd-compressed landing files"),
        "c.json": (gzip.compress(plain), "holds gzip data but its name does not end in .gz"),
        "d.json": (bz2.compress(plain), "holds bzip2-compressed data"),
        "e.json.gz": (plain, "is named .gz but does not hold gzip data"),
        "f.zip": (b"PK\x03\x04rest", "zip-compressed landing files are not read"),
    }
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(LandingError, match=message):
            check_compression(str(tmp_path / name))
    # in the landing asset: the step fails naming the file, nothing is landed from its bytes
    landing = write_tiny_landing(tmp_path / "landing")
    (landing / "customer" / "customer-9.json.bz2").write_bytes(bz2.compress(plain))
    result = run_graph("polars", landing, tmp_path / "lake", selection="group:landing",
                       raise_on_error=False)
    failures = " ".join(e.step_failure_data.error.message for e in result.all_events
                        if e.is_step_failure)
    assert "customer-9.json.bz2: bzip2-compressed landing files are not read" in failures


def test_gzip_landing_gives_the_same_tables_on_both_engines(spark, tmp_path):
    landing = _compressed_landing(tmp_path / "landing")
    plain = write_tiny_landing(tmp_path / "plain")
    results = {engine: run_graph(engine, landing, tmp_path / engine, selection="group:landing")
               for engine in ("polars", "spark")}
    reference = run_graph("polars", plain, tmp_path / "plain-lake", selection="group:landing")
    for engine, result in results.items():
        assert result.success, engine
        checks = check_metadata(result)
        for table in LANDING_TABLES:
            figures = checks[f"{table}/conservation"]
            assert figures["unaccounted"] == 0, (engine, table)
        assert checks["step_trainer_landing/conservation"]["lines_in_files"] == 4 + 3
        assert checks["step_trainer_landing/conservation"]["lines_rejected"] == 1
    for table in LANDING_OUTPUTS:
        polars_table = read_table(tmp_path / "polars", table)
        assert polars_table.equals(read_table(tmp_path / "spark", table)), table
    for table in ("customer_landing", "accelerometer_landing"):  # the gzipped files' rows
        assert read_table(tmp_path / "polars", table).equals(
            read_table(tmp_path / "plain-lake", table)), table
    assert reference.success
    rejects = read_table(tmp_path / "spark", "step_trainer_landing_rejects")
    assert rejects.select("line_number", "line").to_dicts() == [
        {"line_number": 2, "line": '{"sensorReadingTime": oops}'}]
    assert rejects["file"][0].endswith("step_trainer-2.json.gz")


def test_landing_cache_reuses_gzip_files(tmp_path):
    landing = _compressed_landing(tmp_path / "landing")
    engine = PolarsEngine(landing_cache=str(tmp_path / "cache"))
    source = LandingSource(root=str(landing))
    table = schemas.TABLES["accelerometer_landing"]
    first = engine.land(source, table)
    again = engine.land(source, table)
    assert again.files_reused == len(again.files) == 2 and first.files_reused == 0
    assert again.row_frame().collect().equals(first.row_frame().collect())
    assert again.lines_read == sum(count_lines(f) for f in again.files) == 4


def test_gzip_landing_on_s3(s3_endpoint, s3_client, tmp_path, monkeypatch):
    monkeypatch.setenv("STEDI_PSEUDONYM_SECRET", "s3-test-secret")  # the resources' EnvVar
    landing = _compressed_landing(tmp_path / "landing")
    bucket = new_bucket(s3_client)
    upload_landing(s3_client, landing, bucket, "landing")
    result = materialize_lakehouse(s3_settings(s3_endpoint, f"s3://{bucket}/landing",
                                               f"s3://{bucket}/lakehouse"))
    assert result.success, failure_messages(result)
    counts = row_counts(result)
    assert {t: counts[t] for t in LANDING_TABLES} == {
        "customer_landing": 4, "accelerometer_landing": 4, "step_trainer_landing": 6}
    assert counts["step_trainer_landing_rejects"] == 1
    figures = check_metadata(result)["step_trainer_landing/conservation"]
    assert figures["lines_in_files"] == 7 and figures["unaccounted"] == 0
    local = materialize_lakehouse(Settings.from_env({
        "STEDI_LANDING_ROOT": str(landing), "STEDI_LAKEHOUSE_ROOT": str(tmp_path / "lake")}))
    assert row_counts(local) == counts


# --- symbolic links in the landing folder ----------------------------------------------------

def test_links_leading_outside_the_landing_root_are_skipped(tmp_path):
    secret = _outside_secret(tmp_path)
    landing = _landing_with_links(tmp_path / "landing", secret)
    listing = scan_landing_folder(str(landing), "customer")
    assert [Path(f).name for f in listing.files] == [
        "customer-0.json", "customer-1.json", "inside.json"]
    assert listing.skipped == [
        f"{landing}/customer/leak.json: symbolic link leading outside the landing root",
        f"{landing}/customer/linked-folder: symbolic link leading outside the landing root"]
    # the sensor's fingerprint ignores them too: changing what they point to changes nothing
    before = landing_fingerprint(str(landing), "customer")
    secret.write_text(SECRET + "\n" + SECRET + "\n")
    assert landing_fingerprint(str(landing), "customer") == before
    # a source folder that is itself a link leading outside is not read at all
    (landing / "elsewhere").symlink_to(secret.parent / "folder")
    with pytest.raises(LandingError, match="leading outside the landing root"):
        scan_landing_folder(str(landing), "elsewhere")
    assert landing_fingerprint(str(landing), "elsewhere") == ""


@pytest.mark.parametrize("engine", ["polars", "spark"])
def test_landing_step_never_reads_outside_the_landing_root(engine, request, tmp_path):
    if engine == "spark":
        request.getfixturevalue("spark")
    secret = _outside_secret(tmp_path)
    landing = _landing_with_links(tmp_path / "landing", secret)
    instance = DagsterInstance.ephemeral()
    run_settings = graph_settings(engine, landing, tmp_path / "lake")
    result = materialize([*definitions.build_definitions(run_settings).assets,
                          *definitions.all_asset_checks],
                         resources=definitions.build_resources(run_settings),
                         selection="group:landing", instance=instance)
    assert result.success
    for table in LANDING_OUTPUTS:
        text = read_table(tmp_path / "lake", table).write_csv()
        assert "root-secret" not in text and "hunter2" not in text, table
    customers = read_table(tmp_path / "lake", "customer_landing")
    assert customers.height == EXPECTED_COUNTS["customer_landing"] + 2  # inside.json: 2 lines
    metadata = {e.asset_key.path[-1]: e.materialization.metadata
                for e in result.get_asset_materialization_events()}
    assert metadata["customer_landing"]["files_skipped"].value == 2
    assert metadata["accelerometer_landing"]["files_skipped"].value == 0
    logged = [e.user_message for e in instance.all_logs(result.run_id)]
    warning = [m for m in logged if "skipped (not read)" in m]
    assert len(warning) == 1 and f"{landing}/customer/leak.json" in warning[0]
    assert not any("root-secret" in m or "hunter2" in m for m in logged)


# --- the lakehouse writers never write or delete outside the lakehouse root -----------------

def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _elsewhere(tmp_path: Path) -> Path:
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "customer_trusted").mkdir(parents=True)
    (elsewhere / "precious.txt").write_text("keep me")
    (elsewhere / "customer_trusted" / "part-00000.parquet").write_text("not a table")
    return elsewhere


@pytest.mark.parametrize("link", ["trusted", "trusted/customer_trusted",
                                  "trusted/customer_trusted/data",
                                  "trusted/customer_trusted/metadata"])
def test_polars_writer_refuses_links_leading_outside(tmp_path, link):
    lake, elsewhere = tmp_path / "lake", _elsewhere(tmp_path)
    (lake / link).parent.mkdir(parents=True, exist_ok=True)
    (lake / link).symlink_to(elsewhere if link == "trusted" else elsewhere / "customer_trusted")
    before = _tree(elsewhere)
    io = LocalIcebergIOManager(root=str(lake))
    with pytest.raises(OutsideRootError, match=f"refusing to .* {lake}/trusted"):
        io._write_files(pl.DataFrame({"email": ["a@x"]}), "customer_trusted")
    assert _tree(elsewhere) == before
    assert sorted(p.name for p in elsewhere.rglob("*")) == sorted(
        ["customer_trusted", "precious.txt", "part-00000.parquet"])


def test_landing_step_with_a_linked_lakehouse_folder_fails_clearly(tmp_path):
    lake, elsewhere = tmp_path / "lake", _elsewhere(tmp_path)
    lake.mkdir()
    (lake / "landing").symlink_to(elsewhere)
    before = _tree(elsewhere)
    landing = write_tiny_landing(tmp_path / "landing")
    result = run_graph("polars", landing, lake, selection="group:landing",
                       raise_on_error=False)
    assert not result.success
    failures = [e.step_failure_data.error.message for e in result.all_events
                if e.is_step_failure]
    assert failures and all(f"refusing to write a table into {lake}/landing" in m
                            for m in failures)
    assert _tree(elsewhere) == before


def test_landing_cache_refuses_a_linked_table_folder(tmp_path):
    elsewhere = _elsewhere(tmp_path)
    cache = tmp_path / "lake" / "_landing_cache"
    cache.mkdir(parents=True)
    (cache / "customer_landing").symlink_to(elsewhere)
    before = _tree(elsewhere)
    landing = write_tiny_landing(tmp_path / "landing")
    with pytest.raises(OutsideRootError, match="customer_landing"):
        LandingCache(cache).land(PolarsEngine(), LandingSource(root=str(landing)),
                                 schemas.TABLES["customer_landing"],
                                 [str(p) for p in sorted((landing / "customer").iterdir())])
    assert _tree(elsewhere) == before


def test_spark_writers_refuse_links_leading_outside(spark, tmp_path):
    from dagster_pyspark import PySparkResource

    from stedi_assets.aws.glue_job import SparkTableIO
    from stedi_assets.io.iceberg_catalog import CatalogConfig
    from stedi_assets.io.iceberg_tables import IcebergTables
    from stedi_assets.io.spark_iceberg import SparkIcebergIOManager

    lake, elsewhere = tmp_path / "lake", _elsewhere(tmp_path)
    lake.mkdir()
    (lake / "trusted").symlink_to(elsewhere)
    before = _tree(elsewhere)
    frame = spark.createDataFrame([("a@x",)], "email string")
    io = SparkIcebergIOManager(root=str(lake), pyspark=PySparkResource(spark_config={}))
    with pytest.raises(OutsideRootError, match=f"{lake}/trusted"):
        io._write_files(frame, "customer_trusted")
    tables = IcebergTables(CatalogConfig(root=str(lake)))
    with pytest.raises(OutsideRootError, match=f"{lake}/trusted"):
        SparkTableIO(spark, tables, 0).write("customer_trusted", frame)
    assert _tree(elsewhere) == before
