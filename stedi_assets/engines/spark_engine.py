"""The Spark engine resource and its session, imported only when STEDI_ENGINE=spark (PySpark
loads slowly): nothing outside this module imports it at the package level.

Which Python runs Spark's Python workers: PySpark 3.5 takes it from the PYSPARK_PYTHON
environment variable when the SparkContext starts (default `python3` from PATH), not from the
`spark.pyspark.python` setting. For a local master the workers are this machine's processes, so
LakehouseSpark points PYSPARK_PYTHON (and PYSPARK_DRIVER_PYTHON) at this interpreter before the
session starts. A cluster's workers need a matching Python of their own: set PYSPARK_PYTHON in
the environment Dagster runs in to its path on the workers (see the README).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

from dagster import InitResourceContext
from dagster_pyspark import PySparkResource

from stedi_assets.engines.base import Engine, LandingBatch
from stedi_assets.engines.protocol import EngineOps
from stedi_assets.io import spark_landing_reader
from stedi_assets.io.landing_reader import check_compression
from stedi_assets.io.s3 import S3Store
from stedi_assets.schemas import Table
from stedi_assets.transforms import spark as spark_ops


def use_this_python(spark_config: Mapping[str, Any]) -> None:
    """For a local master, make Spark's Python workers run this interpreter (call before the
    SparkContext starts; a later call changes nothing for a running context)."""
    master = str(spark_config.get("spark.master", "local[*]"))
    if "spark.remote" not in spark_config and master.startswith("local"):
        os.environ["PYSPARK_PYTHON"] = sys.executable
        os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable


class LakehouseSpark(PySparkResource):
    """dagster-pyspark's session resource, with the Python workers chosen before it starts."""

    def setup_for_execution(self, context: InitResourceContext) -> None:
        use_this_python(self.spark_config)
        super().setup_for_execution(context)


class SparkEngine(Engine):
    """Computes every table with Spark on the session of `pyspark` (dagster-pyspark's
    PySparkResource): local[*] by default, or any master URL / Spark Connect (`spark.remote`)
    given in its spark_config. Frames stay Spark DataFrames between IO manager and transforms;
    only rejected landing lines are brought to the driver, as the Polars frame the landing
    assets report from."""

    pyspark: PySparkResource

    @property
    def kind(self) -> str:
        return "spark"

    @property
    def ops(self) -> EngineOps:
        """transforms/spark: one function per table plus the check figures."""
        return spark_ops

    def read_landing(self, files: list[str], table: Table,
                     store: S3Store | None = None) -> LandingBatch:
        if store is not None:
            raise ValueError("the Spark engine reads local landing files here; on AWS run it "
                             "as Glue jobs (STEDI_ENV=glue)")
        for path in files:
            check_compression(path)  # gzip only, named .gz: what both engines read alike
        lines = spark_landing_reader.read_landing_lines(self.pyspark.spark_session, files)
        rows, rejects, unknown = self.ops.parse_landing(lines, table)
        return LandingBatch(rows=rows, rejects=rejects, files=files, lines_read=lines.count(),
                            unknown_keys=unknown)
