"""The Spark flavour of the Iceberg IO manager: Spark writes the data files, pyiceberg commits
them (io/spark_files.py), so a table written by one engine is read by the other. Outputs and
inputs are Spark DataFrames over exactly one snapshot's files."""

from __future__ import annotations

from dagster import Failure, InputContext
from dagster_pyspark import PySparkResource
from pyspark.sql import DataFrame

from stedi_assets.io import spark_files
from stedi_assets.io.iceberg_io import _TABLE_ERRORS, LocalIcebergIOManager
from stedi_assets.io.local_paths import ensure_table_inside
from stedi_assets.transforms.spark.columns import logical_schema


class SparkIcebergIOManager(LocalIcebergIOManager):
    """Iceberg tables under a local (or cluster-shared) root, written and read by Spark."""

    pyspark: PySparkResource

    def _write_files(self, frame: DataFrame, table_name: str) -> list[str]:
        location = self.tables.location(table_name)
        if "://" not in location:  # never write through a link leading outside the root
            ensure_table_inside(location, self.root)
        return spark_files.write_data_files(self.pyspark.spark_session, frame, self.tables,
                                             table_name)

    def _schemas(self, frame: DataFrame, files: list[str]):
        from pyspark.sql.pandas.types import to_arrow_schema

        return to_arrow_schema(frame.schema), logical_schema(frame.schema)

    def scan_snapshot(self, snapshot) -> DataFrame:
        from pyspark.sql import SparkSession

        spark = self.pyspark.spark_session or SparkSession.getActiveSession()
        return spark_files.read_snapshot(spark, snapshot)

    def load_input(self, context: InputContext) -> DataFrame:
        try:
            return super().load_input(context)
        except _TABLE_ERRORS as exc:
            raise Failure(description=str(exc)) from None
