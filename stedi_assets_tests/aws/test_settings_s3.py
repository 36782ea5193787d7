"""STEDI_ENV and the S3/Glue settings: what `definitions` builds from the environment."""

from __future__ import annotations

import pytest
from dagster import EnvVar

from stedi_assets.definitions import Settings, build_resources
from stedi_assets.deployments import build_storage
from stedi_assets.io.catalog import GlueCatalog, TableCatalog
from stedi_assets.io.iceberg_io import LocalIcebergIOManager, S3IcebergIOManager
from stedi_assets.resources import LandingSource, S3LandingSource
from stedi_assets.settings import LOCAL_PSEUDONYM_SECRET

S3_ENV = {"STEDI_ENV": "s3", "STEDI_LANDING_ROOT": "s3://cd0030bucket/",
          "STEDI_LAKEHOUSE_ROOT": "s3://lake/stedi/", "STEDI_PSEUDONYM_SECRET": "k"}


def test_local_is_the_default_and_has_no_catalog(tmp_path):
    landing, io_manager, catalog = build_storage(Settings.from_env(
        {"STEDI_LANDING_ROOT": str(tmp_path), "STEDI_LAKEHOUSE_ROOT": str(tmp_path / "lh")}))
    assert type(landing) is LandingSource and type(catalog) is TableCatalog
    assert isinstance(io_manager, LocalIcebergIOManager)
    assert io_manager.tables.config.kind == "sql"  # SQLite inside the lakehouse root


def test_s3_environment_builds_s3_storage_and_glue():
    settings = Settings.from_env({
        **S3_ENV, "STEDI_LANDING_PREFIXES": " customer = customers ,step_trainer=steps",
        "STEDI_LANDING_ANONYMOUS": "1", "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL": "http://minio:9000", "AWS_ENDPOINT_URL_GLUE": "http://glue:1"})
    landing, io_manager, catalog = build_storage(settings)

    assert isinstance(landing, S3LandingSource) and landing.anonymous
    assert landing.folder("customer") == "s3://cd0030bucket/customers"
    assert landing.folder("step_trainer") == "s3://cd0030bucket/steps"
    assert landing.folder("accelerometer") == "s3://cd0030bucket/accelerometer"
    assert isinstance(io_manager, S3IcebergIOManager)
    assert io_manager.table_uri("customer_trusted") == "s3://lake/stedi/trusted/customer_trusted"
    assert (io_manager.region, io_manager.endpoint_url) == ("eu-west-1", "http://minio:9000")
    assert isinstance(catalog, GlueCatalog)
    assert (catalog.database, catalog.endpoint_url) == ("stedi", "http://glue:1")
    config = io_manager.tables.config  # the Iceberg tables: the Glue Data Catalog too
    assert (config.kind, config.database, config.glue_endpoint_url) == (
        "glue", "stedi", "http://glue:1")
    assert config.file_io_properties()["s3.endpoint"] == "http://minio:9000"
    assert landing.store.storage_options == {
        "aws_region": "eu-west-1", "aws_endpoint_url": "http://minio:9000",
        "aws_allow_http": "true", "aws_skip_signature": "true"}


def test_without_a_glue_database_the_iceberg_tables_need_another_catalog():
    with pytest.raises(ValueError, match="set STEDI_GLUE_DATABASE .* STEDI_ICEBERG_CATALOG_URI"):
        build_storage(Settings.from_env({**S3_ENV, "STEDI_GLUE_DATABASE": ""}))
    _, io_manager, catalog = build_storage(Settings.from_env({
        **S3_ENV, "STEDI_GLUE_DATABASE": "", "STEDI_ICEBERG_CATALOG_URI": "sqlite:////tmp/c.db"}))
    assert type(catalog) is TableCatalog  # no raw-landing registration either
    assert io_manager.tables.config.kind == "sql"
    assert io_manager.tables.config.catalog_properties()["uri"] == "sqlite:////tmp/c.db"


@pytest.mark.parametrize(("env", "message"), [
    ({"STEDI_ENV": "gcs"}, r"STEDI_ENV must be one of \('local', 's3', 'glue'\), got 'gcs'"),
    ({"STEDI_ENV": "local"}, "STEDI_LAKEHOUSE_ROOT is on S3: set STEDI_ENV=s3 as well"),
    ({"STEDI_LAKEHOUSE_ROOT": "/tmp/lake"}, "STEDI_ENV=s3 needs STEDI_LAKEHOUSE_ROOT=s3://"),
    ({"STEDI_LANDING_PREFIXES": "customers=customers"}, "source in"),
    ({"STEDI_LANDING_PREFIXES": "customer"}, "source=folder pairs"),
])
def test_inconsistent_settings_are_refused(env, message):
    with pytest.raises(ValueError, match=message):
        build_storage(Settings.from_env({**S3_ENV, **env}))


def test_pseudonym_secret_is_required_outside_local(monkeypatch):
    monkeypatch.delenv("STEDI_PSEUDONYM_SECRET", raising=False)
    env = {k: v for k, v in S3_ENV.items() if k != "STEDI_PSEUDONYM_SECRET"}
    settings = Settings.from_env(env)
    build_storage(settings)  # storage (and so stedi-sql / stedi-ddl) needs no secret
    with pytest.raises(ValueError, match="STEDI_PSEUDONYM_SECRET must be set when STEDI_ENV=s3"):
        build_resources(settings)
    local = Settings.from_env({})
    assert build_resources(local)["privacy"].pseudonym_secret == LOCAL_PSEUDONYM_SECRET


def test_secret_from_the_environment_is_never_shown_as_a_value(monkeypatch):
    monkeypatch.setenv("STEDI_PSEUDONYM_SECRET", "very-secret")
    privacy = build_resources(Settings.from_env({**S3_ENV, "STEDI_PSEUDONYM_SECRET":
                                                 "very-secret"}))["privacy"]
    assert privacy.pseudonym_secret == EnvVar("STEDI_PSEUDONYM_SECRET")
    assert "very-secret" not in repr(privacy)
