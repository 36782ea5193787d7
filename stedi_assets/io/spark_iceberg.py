"""The Spark flavour of the Iceberg IO manager: Spark writes the data files, pyiceberg commits
them (io/spark_files.py), so a table written by one engine is read by the other. Outputs and
inputs are Spark DataFrames over exactly one snapshot's files."""

from __future__ import annotations

from dataclasses import replace

from dagster import Failure, InputContext
from dagster_pyspark import PySparkResource
from pyspark.sql import DataFrame

from stedi_assets.io import spark_files
from stedi_assets.io.iceberg_io import _TABLE_ERRORS, LocalIcebergIOManager, split_base_files
from stedi_assets.io.iceberg_partitions import DAY_MS, files_on_days, files_to_compact
from stedi_assets.io.local_paths import ensure_table_inside
from stedi_assets.transforms.spark.columns import logical_schema


def _files_only(files: list[str]):
    from stedi_assets.io.iceberg_tables import TableSnapshot

    return TableSnapshot("", 0, tuple(files), None, 0, 0)


class SparkIcebergIOManager(LocalIcebergIOManager):
    """Iceberg tables under a local (or cluster-shared) root, written and read by Spark."""

    pyspark: PySparkResource

    def _write_files(self, frame: DataFrame, table_name: str) -> list[str]:
        location = self.tables.location(table_name)
        if "://" not in location:  # never write through a link leading outside the root
            ensure_table_inside(location, self.root)
        return spark_files.write_data_files(self.pyspark.spark_session, frame, self.tables,
                                             table_name)

    def _schemas(self, frame: DataFrame | None, files: list[str], base=None):
        from pyspark.sql.pandas.types import to_arrow_schema

        if frame is None:  # a rebuild's files (written by Spark), or a table kept as it was
            kept = base is not None and tuple(files) == tuple(base.files)
            frame = self.scan_snapshot(base if kept else _files_only(files))
        return to_arrow_schema(frame.schema), logical_schema(frame.schema)

    def _apply_update(self, update, table_name: str):
        """(base files kept, files rewritten without the affected slices' rows, the base
        files those were made from, files dropped, the instants of the rows removed): Spark
        passes flag every base row, collect the removed rows' instants, write the rewritten
        files' other rows."""
        from urllib.parse import urlparse

        import pyarrow as pa
        from pyspark.sql import functions as F

        from stedi_assets.transforms.spark import increments

        if not update.base.files:
            return [], [], [], 0, pa.array([], pa.int64())
        affected = update.affected.in_base()  # new groups hold no row of the base
        # only the files of the days the change touches are read (the others are kept), and
        # those of the days that may be compacted
        days = increments.affected_days(affected, DAY_MS)
        read = set(files_on_days(update.base.files, days)) | set(
            files_to_compact(update.base.files))
        if not read:
            return list(update.base.files), [], [], 0, pa.array([], pa.int64())
        base = self.scan_snapshot(replace(update.base, files=tuple(
            f for f in update.base.files if f in read))).withColumn("_file", F.input_file_name())
        flagged = increments.flagged(base, affected)  # keeps `_file`
        time = affected.time_column
        removed = pa.array([r[0] for r in flagged.where("_affected").select(
            F.col(time).cast("long")).distinct().collect()], pa.int64())
        uris, counts = {}, {}
        for r in flagged.groupBy("_file").agg(F.count(F.lit(1)).alias("rows"), F.sum(
                F.col("_affected").cast("long")).alias("hits")).collect():
            path = urlparse(r["_file"]).path if r["_file"].startswith("file:") else r["_file"]
            uris[path], counts[path] = r["_file"], (r["rows"], r["hits"])
        kept, rewrite, dropped = split_base_files(update.base.files, counts)
        compact = files_to_compact(kept)  # days with many files become one file each
        kept = [path for path in kept if path not in compact]
        if not rewrite and not compact:
            return kept, [], [], dropped, removed
        sources = [*rewrite, *compact]
        rest = flagged.where(F.col("_file").isin([uris[p] for p in sources])
                             & ~F.col("_affected")).drop("_file", "_affected")
        return kept, self._write_files(rest, table_name), sources, dropped, removed

    def instants_frame(self, instants) -> DataFrame:
        from pyspark.sql import SparkSession

        spark = self.pyspark.spark_session or SparkSession.getActiveSession()
        return spark.createDataFrame([(v,) for v in set(instants.to_pylist())],
                                     "_time bigint").cache()

    def scan_snapshot(self, snapshot) -> DataFrame:
        from pyspark.sql import SparkSession

        spark = self.pyspark.spark_session or SparkSession.getActiveSession()
        return spark_files.read_snapshot(spark, snapshot)

    def load_input(self, context: InputContext) -> DataFrame:
        try:
            return super().load_input(context)
        except _TABLE_ERRORS as exc:
            raise Failure(description=str(exc)) from None
