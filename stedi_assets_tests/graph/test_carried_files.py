"""A withdrawal rewrites the data files holding the customer's rows; the other rows of those
files are not new, and an incremental consent check treats them as checked — but only when
every file they were made from had passed (io/iceberg_changes.carried_files)."""

from __future__ import annotations

import json

import pytest
from dagster import AssetSelection

from stedi_assets.io.iceberg_catalog import CatalogConfig
from stedi_assets.io.iceberg_changes import CARRIED_FILES_PROPERTY
from stedi_assets.io.iceberg_tables import IcebergTables
from stedi_assets_tests.graph.test_check_verdicts import LeaksReadings
from stedi_assets_tests.support.graph import run_graph
from stedi_assets_tests.support.tiny_landing import CUSTOMERS, write_tiny_landing

pytest_plugins = ["stedi_assets_tests.support.spark_session"]


def withdraw(landing, name: str, file: str = "customer-3.json") -> None:
    record = next(c for c in CUSTOMERS if c["customerName"] == name)
    (landing / "customer" / file).write_text(json.dumps(
        {**record, "lastUpdateDate": 5000, "shareWithResearchAsOfDate": None}) + "\n")


@pytest.mark.parametrize("engine", [
    "polars", pytest.param("spark", marks=[pytest.mark.spark, pytest.mark.slow])])
def test_a_withdrawal_sends_no_rewritten_row_to_be_checked_as_new(engine, tmp_path, request):
    if engine == "spark":
        request.getfixturevalue("spark")
    landing, lake = write_tiny_landing(tmp_path / "landing"), tmp_path / "lake"
    tables = IcebergTables(CatalogConfig(root=str(lake)))
    # accelerometer_trusted, what it is made from and its checks: half a graph run on Spark
    selection = (AssetSelection.assets("accelerometer_trusted").upstream()
                 .required_multi_asset_neighbors()
                 | AssetSelection.checks_for_assets("accelerometer_trusted"))
    assert run_graph(landing, lake, engine_name=engine, selection=selection).result.success

    withdraw(landing, "ann")  # ann's readings share their files with bob's
    run = run_graph(landing, lake, engine_name=engine, selection=selection)
    assert run.metadata("accelerometer_trusted")["incremental"].value is True
    assert run.metadata("accelerometer_trusted")["incremental/data_files_rewritten"].value
    assert CARRIED_FILES_PROPERTY in tables.snapshot("accelerometer_trusted").properties
    consent = run.checks()[("accelerometer_trusted", "consent")]
    assert consent.passed
    assert consent.metadata["verification"].value == "incremental"
    # bob's row was rewritten, not added; ann's rows are gone (her kept rows checked: none)
    assert consent.metadata["rows_checked"].value == 0
    assert consent.metadata["rows_in_table"].value == 1
    assert run.table("accelerometer_trusted")["user"].to_list() == ["bob@example.com"]


def test_rows_rewritten_from_a_file_no_check_passed_on_are_checked_as_new(tmp_path):
    """A leaking writer's rows committed without their check (a run that left the checks
    out), then rewritten by a correct withdrawal: the rewrite is made from a file that never
    passed, so its rows are checked — and the leak is still found."""
    landing, lake = write_tiny_landing(tmp_path / "landing"), tmp_path / "lake"
    assert run_graph(landing, lake).result.success

    # dee (no consent) and bob read at the same instant, in one new file
    (landing / "accelerometer" / "accelerometer-2.json").write_text("".join(
        json.dumps({"user": f"{name}@example.com", "timestamp": 7000, "x": 9.0, "y": 0.0,
                    "z": 0.0}) + "\n" for name in ("dee", "bob")))
    unchecked = (AssetSelection.assets("accelerometer_trusted").upstream()
                 .required_multi_asset_neighbors()
                 - AssetSelection.checks_for_assets("accelerometer_trusted"))
    leaked = run_graph(landing, lake, engine=LeaksReadings(), selection=unchecked)
    assert leaked.metadata("accelerometer_trusted")["incremental"].value is True
    assert "dee@example.com" in leaked.table("accelerometer_trusted")["user"].to_list()

    withdraw(landing, "bob")  # rewrites the leaked file (and the first one) without bob
    run = run_graph(landing, lake, raise_on_error=False)
    assert run.metadata("accelerometer_trusted")["incremental"].value is True
    assert run.metadata("accelerometer_trusted")["incremental/data_files_rewritten"].value
    consent = run.checks()[("accelerometer_trusted", "consent")]
    assert consent.metadata["verification"].value == "incremental"
    assert not consent.passed
    assert consent.metadata["violations"].value == 1  # dee's leaked reading
