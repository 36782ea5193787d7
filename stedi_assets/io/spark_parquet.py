"""The Spark flavour of the Parquet IO manager: same <root>/<zone>/<table>/ layout, so a table
written by one engine is read by the other. Outputs and inputs are Spark DataFrames."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from dagster import Failure, InputContext, MetadataValue, OutputContext
from dagster_pyspark import PySparkResource
from pyspark.sql import DataFrame
from pyspark.sql.utils import AnalysisException

from stedi_assets.io.local_paths import OutsideRootError
from stedi_assets.io.parquet import (
    ParquetIOManager,
    swap_in_new_version,
    table_schema_metadata,
)
from stedi_assets.transforms.spark.columns import logical_schema


def _local_path(uri: str) -> Path | None:
    """The local path of a plain path or file:// URI; None for s3a://, hdfs://, ..."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return Path(parsed.path if parsed.scheme else uri)
    return None


class SparkParquetIOManager(ParquetIOManager):
    """Stores each STEDI table as Parquet under <root>/<zone>/<table>/, written and read by
    Spark. On a local root a table is swapped in whole (a new version directory behind an
    atomically swapped link, as LocalParquetIOManager does); on a cluster file system Spark's
    overwrite replaces it."""

    pyspark: PySparkResource

    def _write(self, frame: DataFrame, table_uri: str) -> None:
        local = _local_path(table_uri)
        if local is None:
            frame.write.mode("overwrite").parquet(table_uri)
            return
        # the same atomic version swap as the Polars IO manager, so both read each other's;
        # like it, refuses to write through a link that leads outside the lakehouse root
        swap_in_new_version(str(local), lambda version: frame.write.parquet(str(version)),
                            _local_path(self.root) or self.root)

    def _exists(self, table_uri: str) -> bool:
        local = _local_path(table_uri)
        if local is not None:
            return any(local.glob("*.parquet"))
        try:
            self._scan(table_uri).schema  # noqa: B018 - resolving the path is the check
        except AnalysisException:
            return False
        return True

    def _scan(self, table_uri: str) -> DataFrame:
        # Only the layout's data files: Spark's _SUCCESS and .crc files are not tables.
        return self.pyspark.spark_session.read.option("pathGlobFilter", "*.parquet").parquet(
            table_uri)

    def handle_output(self, context: OutputContext, obj: DataFrame) -> None:
        if obj is None:
            return
        table_name = context.asset_key.path[-1]
        uri = self.table_uri(table_name)
        try:
            self._write(obj, uri)
        except OutsideRootError as exc:
            raise Failure(description=str(exc)) from None
        written = self._scan(uri)
        context.add_output_metadata(
            {
                "dagster/row_count": int(written.count()),
                "dagster/column_schema": table_schema_metadata(
                    table_name, logical_schema(written.schema)
                ),
                "dagster/uri": MetadataValue.path(uri),
            }
        )

    def load_input(self, context: InputContext) -> DataFrame:
        return self.scan_table(context.asset_key.path[-1])  # a Spark DataFrame here
