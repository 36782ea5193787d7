"""Spark's side of the Iceberg tables without the Iceberg Spark runtime (no Maven here): Spark
writes a write's Parquet data files, pyiceberg commits them (io/iceberg_tables.py), and Spark
reads exactly the data files of one snapshot. Dagster-free: the Glue job uses it too."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from stedi_assets.io.iceberg_partitions import DAY_MS, PARTITION_KEY, partition_column
from stedi_assets.io.iceberg_tables import IcebergTables, TableSnapshot


def _spark_path(path: str) -> str:
    # Spark's Hadoop S3 connector outside EMR/Glue speaks s3a://; Glue reads s3:// natively
    return path


def write_data_files(spark: Any, frame: Any, tables: IcebergTables, table: str) -> list[str]:
    """Write the frame as new Parquet data files of `table` (a fresh folder under its data
    folder, never an overwrite); their paths, in part order."""
    if spark is None:  # e.g. an IO manager used outside a run: the frame's own session
        from pyspark.sql import SparkSession

        spark = SparkSession.getActiveSession()
    folder = tables.new_data_path(table, tables.new_write_id()).removesuffix("-00000.parquet")
    column = partition_column(table)
    if column is None:
        frame.write.mode("errorifexists").parquet(_spark_path(folder))
    else:  # one folder per day, each day written by one task: one file per day
        from pyspark.sql import functions as F

        day = F.expr(f"({column} - pmod({column}, {DAY_MS})) div {DAY_MS}")
        frame.withColumn(PARTITION_KEY, day).repartition(PARTITION_KEY).write.mode(
            "errorifexists").partitionBy(PARTITION_KEY).parquet(_spark_path(folder))
    written = _files_in(spark, folder)
    if not written:  # no row at all: one empty file still carries the schema
        folder += "-empty"
        frame.write.mode("errorifexists").parquet(_spark_path(folder))
        written = _files_in(spark, folder)
    local = "://" not in folder
    paths = sorted(urlparse(p).path if local else p for p in written)
    if local:  # Spark's _SUCCESS and .crc files are not table files
        from pathlib import Path

        for extra in Path(folder).rglob("*"):
            if extra.is_file() and not extra.name.endswith(".parquet"):
                extra.unlink()
    return paths


def _files_in(spark: Any, folder: str) -> list[str]:
    from pyspark.errors import AnalysisException

    try:
        return spark.read.parquet(_spark_path(folder)).inputFiles()
    except AnalysisException:  # nothing written (Spark cannot infer a schema from no file)
        return []


def read_snapshot(spark: Any, snapshot: TableSnapshot) -> Any:
    """The snapshot's rows as a Spark DataFrame (an empty frame of its schema when it has no
    files)."""
    if not snapshot.files:
        from pyspark.sql.pandas.types import from_arrow_schema

        return spark.createDataFrame([], from_arrow_schema(_plain_strings(snapshot.schema)))
    return spark.read.parquet(*(_spark_path(p) for p in snapshot.files))


def _plain_strings(schema):
    import pyarrow as pa

    return pa.schema([pa.field(f.name, pa.string() if pa.types.is_large_string(f.type)
                               else f.type, True) for f in schema])
