"""Rows that failed a blocking check are never read downstream later (io/check_verdicts.py).

Dagster stops a failed blocking check's downstream assets in that run; these tests prove the
failure also holds across runs: a later run selecting only a downstream table is refused, and
the next run of the failed table rebuilds it in full instead of updating rows that failed."""

from __future__ import annotations

import json
from types import SimpleNamespace

import polars as pl
import pytest
from dagster import AssetSelection
from polars.testing import assert_frame_equal

from stedi_assets.engines.polars_engine import PolarsEngine
from stedi_assets.io.check_verdicts import (
    BLOCKED_PROPERTY,
    BlockedSnapshotError,
    failed_checks,
    record_verdict,
    refuse_blocked,
)
from stedi_assets.io.iceberg_catalog import CatalogConfig
from stedi_assets.io.iceberg_tables import IcebergTables
from stedi_assets.transforms import polars as pe
from stedi_assets_tests.support.graph import run_graph
from stedi_assets_tests.support.tiny_landing import write_tiny_landing

pytest_plugins = ["stedi_assets_tests.support.spark_session"]

CURATED = ("customer_curated", "step_trainer_trusted", "machine_learning_curated")


class LeaksReadings(PolarsEngine):
    """accelerometer_trusted lets every reading through, consenting or not."""

    @property
    def ops(self):
        ops = SimpleNamespace(**{n: getattr(pe, n) for n in dir(pe) if not n.startswith("_")})
        ops.accelerometer_trusted = lambda landing, _customers, **kw: pe.accelerometer_trusted(
            landing, landing.select(email=pl.col("user"),
                                    shareWithResearchAsOfDate=pl.lit(0, pl.Int64)), **kw)
        return ops


def test_a_failed_blocking_check_keeps_its_rows_out_of_later_runs(tmp_path):
    landing, lake = write_tiny_landing(tmp_path / "landing"), tmp_path / "lake"
    tables = IcebergTables(CatalogConfig(root=str(lake)))
    assert run_graph(landing, lake).result.success
    curated_before = {t: tables.snapshot(t).snapshot_id for t in CURATED}

    # dee never consented; a leaking transform lets her new readings into the incremental update
    (landing / "accelerometer" / "accelerometer-2.json").write_text(json.dumps(
        {"user": "dee@example.com", "timestamp": 7000, "x": 9.0, "y": 0.0, "z": 0.0}) + "\n")
    leaked = run_graph(landing, lake, raise_on_error=False, engine=LeaksReadings())
    assert leaked.metadata("accelerometer_trusted")["incremental"].value is True
    assert not leaked.checks()[("accelerometer_trusted", "consent")].passed
    blocked = tables.snapshot("accelerometer_trusted")
    assert blocked.blocked == ("consent",)
    assert {t: tables.snapshot(t).snapshot_id for t in CURATED} == curated_before

    # a later run of a downstream table alone, with a correct engine, is refused
    alone = run_graph(landing, lake, raise_on_error=False,
                      selection=AssetSelection.assets("machine_learning_curated"))
    assert not alone.result.success
    failures = [e.step_failure_data.error.message for e in alone.result.all_events
                if e.is_step_failure]
    assert any(f"accelerometer_trusted snapshot {blocked.snapshot_id}, which failed its "
               "blocking check(s) consent" in message for message in failures), failures
    assert {t: tables.snapshot(t).snapshot_id for t in CURATED} == curated_before

    # the next full run rebuilds the blocked table from its inputs, passes, and moves on
    fixed = run_graph(landing, lake)
    assert fixed.metadata("accelerometer_trusted")["incremental"].value is False
    assert "failed the blocking check(s) consent" in \
        fixed.metadata("accelerometer_trusted")["incremental/full_reason"].value
    assert all(e.passed for e in fixed.checks().values())
    assert tables.snapshot("accelerometer_trusted").blocked == ()
    fresh = run_graph(landing, tmp_path / "fresh")
    for table in ("accelerometer_trusted", *CURATED):
        assert_frame_equal(fixed.table(table), fresh.table(table), check_row_order=False)
    assert "dee@example.com" not in fixed.table("accelerometer_trusted")["user"].to_list()


def test_a_conservation_failure_blocks_the_landing_snapshot(tmp_path):
    from stedi_assets_tests.support.leaky import LossyEngine

    landing, lake = write_tiny_landing(tmp_path / "landing"), tmp_path / "lake"
    run = run_graph(landing, lake, raise_on_error=False, engine=LossyEngine())
    assert not run.checks()[("accelerometer_landing", "conservation")].passed
    tables = IcebergTables(CatalogConfig(root=str(lake)))
    assert tables.snapshot("accelerometer_landing").blocked == ("conservation",)
    assert tables.snapshot("customer_landing").blocked == ()
    # read correctly, the same files land as a new snapshot, whose checks pass
    assert run_graph(landing, lake).result.success
    assert tables.snapshot("accelerometer_landing").blocked == ()


def test_a_pass_on_the_same_snapshot_lifts_the_block_and_bad_records_block(tmp_path):
    landing, lake = write_tiny_landing(tmp_path / "landing"), tmp_path / "lake"
    run_graph(landing, lake, selection=AssetSelection.assets("customer_trusted").upstream())
    tables = IcebergTables(CatalogConfig(root=str(lake)))
    snapshot = tables.snapshot("customer_trusted").snapshot_id
    record_verdict(tables, "customer_trusted", snapshot, "consent", False, "run-1")
    record_verdict(tables, "customer_trusted", snapshot, "schema", False, "run-1")
    assert tables.snapshot("customer_trusted").blocked == ("consent", "schema")
    with pytest.raises(BlockedSnapshotError, match="customer_trusted snapshot .* consent, "
                                                   "schema.*materialize customer_trusted"):
        refuse_blocked(tables, {"customer_trusted": snapshot}, "accelerometer_trusted")
    refuse_blocked(tables, {"customer_trusted": snapshot + 1}, "x")  # another snapshot: free
    record_verdict(tables, "customer_trusted", snapshot, "consent", True)
    record_verdict(tables, "customer_trusted", snapshot, "schema", True)
    assert tables.snapshot("customer_trusted").blocked == ()
    assert BLOCKED_PROPERTY not in tables.load("customer_trusted").properties
    # a record nobody can read blocks: when in doubt, the data stays out
    assert failed_checks({BLOCKED_PROPERTY: "{not json"}, snapshot)
    assert failed_checks({BLOCKED_PROPERTY: json.dumps({"snapshot": "1"})}, 1)


def test_the_glue_jobs_spark_writer_records_verdicts_and_refuses_blocked_inputs(spark, tmp_path):
    """The Glue job (Spark, no Dagster) keeps the same record and the same refusal."""
    from stedi_assets.aws.glue_job import SparkTableIO
    from stedi_assets.aws.glue_steps import CheckReport

    tables = IcebergTables(CatalogConfig(root=str(tmp_path / "lake")))
    first = SparkTableIO(spark, tables, 3600, "run-1")
    first.write("customer_trusted", spark.createDataFrame(
        [("a@x.com", 5)], "email string, shareWithResearchAsOfDate long"))
    first.write("step_trainer_trusted", spark.createDataFrame(
        [("s-1", 1000)], "serialNumber string, sensorReadingTime long"))
    first.record_verdicts([
        CheckReport("customer_trusted", "consent", False, "ERROR", None, {}),
        # a non-blocking check's failure blocks nothing
        CheckReport("step_trainer_trusted", "join_coverage", False, "WARN", None, {})])
    snapshot = tables.snapshot("customer_trusted")
    assert snapshot.blocked == ("consent",)
    assert tables.snapshot("step_trainer_trusted").blocked == ()

    second = SparkTableIO(spark, tables, 3600, "run-2")
    second.read("customer_trusted")
    with pytest.raises(BlockedSnapshotError, match=f"customer_trusted snapshot "
                                                   f"{snapshot.snapshot_id}, which failed"):
        second.write("accelerometer_trusted", spark.createDataFrame(
            [("a@x.com", 1000)], "user string, timestamp long"))
    assert not (tmp_path / "lake" / "trusted" / "accelerometer_trusted").exists()

    first.record_verdicts([CheckReport("customer_trusted", "consent", True, "ERROR", None, {})])
    assert tables.snapshot("customer_trusted").blocked == ()
