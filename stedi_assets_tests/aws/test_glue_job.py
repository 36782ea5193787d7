"""The Glue job script really runs: every step of the glue environment's graph executes
stedi_assets/aws/glue_job.py on local Spark through Dagster Pipes (PipesSubprocessClient, the
Pipes defaults), over local paths (the bundled sample); the materializations and check results
that come back match the Polars graph.

The script runs in its own process with its own Spark driver, as on Glue: this module starts no
SparkSession in the test process.
"""

import os
import sys

from dagster import AssetExecutionContext, PipesSubprocessClient, materialize

from stedi_assets import schemas
from stedi_assets.assets.glue import glue_assets
from stedi_assets.aws import glue_job
from stedi_assets.aws.glue_launch import GlueJobs
from stedi_assets.definitions import all_asset_checks, all_assets
from stedi_assets.io.catalog import TableCatalog
from stedi_assets.io.iceberg_io import LocalIcebergIOManager, scan_local_table
from stedi_assets.resources import LandingSource
from stedi_assets.settings import LOCAL_PSEUDONYM_SECRET
from stedi_assets_tests.support.graph import run_graph
from stedi_assets_tests.support.paths import REPO_ROOT
from stedi_assets_tests.support.spark_session import QUICK_JVM_CONF, SPARK_TEST_CONF

#: the test session's settings the job script's Spark takes too (not its time zone or
#: addresses: the job runs with Glue's), and the quick JIT of a short-lived JVM
GLUE_TEST_CONF = {**{k: SPARK_TEST_CONF[k] for k in (
    "spark.sql.shuffle.partitions", "spark.default.parallelism", "spark.sql.adaptive.enabled",
    "spark.ui.enabled")}, **QUICK_JVM_CONF}


class LocalGlueJobs(GlueJobs):
    """GlueJobs whose 'Glue' is the job script in a local subprocess (PipesSubprocessClient)."""

    def run(self, context: AssetExecutionContext, step: str) -> list:
        argv = [arg for key, value in self.run_arguments.items() for arg in (key, value)]
        command = [sys.executable, glue_job.__file__, "--stedi-step", step, *argv]
        env = {"PYTHONPATH": str(REPO_ROOT), "SPARK_LOCAL_IP": "127.0.0.1",
               "PYSPARK_PYTHON": sys.executable,
               # small local Spark, as the test session uses (Glue sets its own)
               "PYSPARK_SUBMIT_ARGS": " ".join(
                   [f"--master {SPARK_TEST_CONF['spark.master']}",
                    *(f"--conf '{k}={v}'" for k, v in GLUE_TEST_CONF.items()),
                    "pyspark-shell"])}
        invocation = PipesSubprocessClient(env={**os.environ, **env}).run(
            context=context, command=command, extras={"pseudonym_secret": self.pseudonym_secret})
        return list(invocation.get_results(implicit_materializations=False))


def run_glue_graph(landing, lakehouse):
    jobs = LocalGlueJobs(pipes_bucket="unused", pseudonym_secret=LOCAL_PSEUDONYM_SECRET,
                         run_arguments={"--stedi-lakehouse-root": str(lakehouse),
                                        "--stedi-landing-root": str(landing)})
    resources = {"glue": jobs, "catalog": TableCatalog(),
                 "landing": LandingSource(root=str(landing))}
    return materialize(glue_assets(all_assets, all_asset_checks), resources=resources)


def test_glue_script_runs_every_step_on_local_spark_through_pipes(sample_landing, tmp_path):
    polars = run_graph(sample_landing, tmp_path / "polars")
    result = run_glue_graph(sample_landing, tmp_path / "spark")
    assert result.success

    counts = {e.asset_key.path[-1]: e.materialization.metadata["dagster/row_count"].value
              for e in result.get_asset_materialization_events()}
    assert set(counts) == set(schemas.TABLES)
    assert counts == {name: polars.metadata(name)["dagster/row_count"].value for name in counts}
    for name in counts:  # committed as Iceberg snapshots by the jobs, equal to Polars' tables
        metadata = {e.asset_key.path[-1]: e.materialization.metadata
                    for e in result.get_asset_materialization_events()}[name]
        glue_table = scan_local_table(tmp_path / "spark", name).collect()
        assert metadata["iceberg/snapshot_id"].value == str(
            LocalIcebergIOManager(root=str(tmp_path / "spark")).snapshot(name).snapshot_id)
        local = polars.table(name)
        assert glue_table.sort(glue_table.columns, nulls_last=True).equals(
            local.sort(local.columns, nulls_last=True)), name
    checks = {(e.asset_key.path[-1], e.check_name): e for e in result.get_asset_check_evaluations()}
    expected = polars.checks()
    assert set(checks) == set(expected) and len(checks) == 17
    for key, check in checks.items():
        assert check.passed == expected[key].passed, key
        figures = {k: v.value for k, v in expected[key].metadata.items()
                   if k != "violating_keys_sample"}  # which 5 examples come first may differ
        assert {k: check.metadata[k].value for k in figures} == figures, key
