"""The Spark engine resource, imported only when STEDI_ENGINE=spark (PySpark loads slowly)."""

from __future__ import annotations

from types import ModuleType

from dagster_pyspark import PySparkResource

from stedi_assets.io import spark_landing_reader
from stedi_assets.io.landing_reader import check_compression
from stedi_assets.io.s3 import S3Store
from stedi_assets.resources import Engine, LandingBatch
from stedi_assets.schemas import Table
from stedi_assets.transforms import spark_engine


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
    def ops(self) -> ModuleType:
        """The engine module: one function per table plus the check figures."""
        return spark_engine

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
