"""Catalog descriptions come from schemas.py: Glue TableInput, DDL text, stedi-ddl, updates."""

from __future__ import annotations

import re

import pytest

from stedi_assets import schemas
from stedi_assets.cli import ddl_main
from stedi_assets.io.catalog import (
    CatalogError,
    GlueCatalog,
    catalog_columns,
    create_table_ddl,
    iceberg_table_comment,
    table_input,
)
from stedi_assets_tests.support.s3_helpers import REGION

pytest_plugins = ["stedi_assets_tests.support.s3_server"]


def _ddl_columns(ddl: str) -> list[tuple[str, str]]:
    return re.findall(r"^  `(\w+)` (\w+) COMMENT", ddl, flags=re.MULTILINE)


@pytest.mark.parametrize("table", schemas.LANDING_TABLES, ids=lambda t: t.name)
def test_ddl_columns_and_format_follow_schemas(table: schemas.Table):
    ddl = create_table_ddl("stedi", table.name, f"s3://bucket/{table.name}")

    assert ddl.startswith(f"CREATE EXTERNAL TABLE IF NOT EXISTS `stedi`.`{table.name}` (")
    assert _ddl_columns(ddl) == [(c.name, schemas.CATALOG_TYPES[c.type]) for c in table.columns]
    assert f"LOCATION 's3://bucket/{table.name}/'" in ddl
    # raw landing data, catalogued as JSON lines
    assert "ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'" in ddl
    assert "'case.insensitive' = 'TRUE'" in ddl
    assert "TBLPROPERTIES ('classification' = 'json');" in ddl


@pytest.mark.parametrize("table", [t for t in schemas.TABLES.values() if not t.source],
                         ids=lambda t: t.name)
def test_iceberg_tables_are_described_in_comments_only(table: schemas.Table):
    text = iceberg_table_comment("stedi", table.name, f"s3://bucket/{table.name}")
    assert all(line.startswith("--") for line in text.splitlines())  # nothing to execute
    assert f"`stedi`.`{table.name}`: Apache Iceberg table" in text
    assert [line.split("`")[1] for line in text.splitlines()[3:]] == table.column_names


def test_ddl_escapes_quotes_in_descriptions():
    ddl = create_table_ddl("stedi", "customer_landing", "s3://b/t")
    assert "COMMENT 'Customer\\'s full name (direct identifier)'" in ddl


def test_catalog_types_come_from_the_stored_parquet_schema():
    stored = {c.name: c.type for c in schemas.TABLES["step_trainer_trusted"].columns}
    stored["distanceFromObject"] = schemas.FLOAT64  # what the file really holds wins

    columns = catalog_columns("step_trainer_trusted", stored)

    assert {c["Name"]: c["Type"] for c in columns}["distanceFromObject"] == "double"


def test_catalog_refuses_types_and_columns_it_cannot_describe():
    with pytest.raises(CatalogError, match=r"sensorReadingTime is stored as 'Int32'"):
        catalog_columns("step_trainer_trusted", {"sensorReadingTime": "Int32"})
    with pytest.raises(CatalogError, match=r"columns not in schemas.py: \['email'\]"):
        catalog_columns("machine_learning_curated", {"email": schemas.STRING})


def test_stedi_ddl_prints_every_table_at_the_configured_locations(monkeypatch, capsys):
    monkeypatch.setenv("STEDI_ENV", "s3")
    monkeypatch.setenv("STEDI_LANDING_ROOT", "s3://cd0030bucket/")
    monkeypatch.setenv("STEDI_LANDING_PREFIXES", "customer=customers")
    monkeypatch.setenv("STEDI_LAKEHOUSE_ROOT", "s3://my-lake/stedi/")
    monkeypatch.setenv("STEDI_GLUE_DATABASE", "stedi_prod")

    assert ddl_main([]) == 0
    out = capsys.readouterr().out

    assert out.startswith("CREATE DATABASE IF NOT EXISTS `stedi_prod`;")
    created = re.findall(r"CREATE EXTERNAL TABLE IF NOT EXISTS `stedi_prod`.`(\w+)`", out)
    assert created == [t.name for t in schemas.LANDING_TABLES]
    assert "LOCATION 's3://cd0030bucket/customers/'" in out
    described = re.findall(r"^-- `(\w+)`.`(\w+)`: Apache Iceberg table", out, re.MULTILINE)
    assert described == [("stedi_prod_landing" if t.zone == "landing" else "stedi_prod", t.name)
                         for t in schemas.TABLES.values() if not t.source]
    assert "at s3://my-lake/stedi/curated/machine_learning_curated\n" in out


def test_glue_registration_creates_then_updates(s3_endpoint, glue_client):
    catalog = GlueCatalog(database="stedi_updates", region=REGION, endpoint_url=s3_endpoint)

    assert catalog.register_json_table("customer_landing", "s3://a/old") == \
        "stedi_updates.customer_landing"
    catalog.register_json_table("customer_landing", "s3://a/new/")

    table = glue_client.get_table(DatabaseName="stedi_updates", Name="customer_landing")["Table"]
    assert table["StorageDescriptor"]["Location"] == "s3://a/new/"
    assert table["StorageDescriptor"]["Columns"] == \
        table_input("customer_landing", "s3://a/new/")["StorageDescriptor"]["Columns"]
    assert table["Parameters"]["classification"] == "json"


def test_landing_json_tables_need_an_s3_location(s3_endpoint, aws_env):
    catalog = GlueCatalog(database="stedi_local", region=REGION, endpoint_url=s3_endpoint)
    assert catalog.register_json_table("customer_landing", "/home/me/data/landing/customer") \
        is None
