"""Read raw landing files with Spark: every line of every file, with its file and line number.

The Spark twin of `landing_reader.read_landing_lines`: same columns (file, line_number, line),
line numbers start at 1 and count every line of the file (blank ones too), `file` is the path
as it was listed. Spark reads a file as one or more splits spread over partitions, so the line
number is derived from the split's start offset (`_metadata.file_block_start`) and the row's
position inside its split; only a tiny per-split summary goes through the driver.
"""

from __future__ import annotations

from urllib.parse import unquote, urlparse

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from stedi_assets.io.landing_files import count_lines
from stedi_assets.io.landing_reader import LandingError
from stedi_assets.io.s3 import S3Store


def _spark_path_key(uri: str) -> str:
    """Compare Spark's `file:/a%20b/x.json` with the listed `/a b/x.json` (and s3a/s3)."""
    parsed = urlparse(uri)
    path = unquote(parsed.path) if parsed.scheme in ("", "file") else unquote(parsed.netloc
                                                                               + parsed.path)
    return path.rstrip("/")


def read_landing_lines(spark: SparkSession, files: list[str]) -> DataFrame:
    """(file, line_number, line) for every line of the given files, as one Spark DataFrame."""
    schema = "file string, line_number bigint, line string"
    if not files:
        return spark.createDataFrame([], schema)
    try:
        raw = spark.read.text(files).select(
            F.col("value").alias("line"),
            F.col("_metadata.file_path").alias("_uri"),
            F.col("_metadata.file_block_start").alias("_block"),
            F.monotonically_increasing_id().alias("_position"),
        )
        splits = (
            raw.groupBy("_uri", "_block")
            .agg(F.count(F.lit(1)).alias("_lines"), F.min("_position").alias("_first"))
            .collect()
        )
    except Exception as exc:  # Spark's analysis/IO errors carry JVM traces; keep the message
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LandingError(f"cannot read landing files with Spark: {first}") from None

    listed = {_spark_path_key(f): f for f in files}
    summary = spark.createDataFrame(
        [
            (s["_uri"], s["_block"], s["_first"], s["_lines"],
             listed.get(_spark_path_key(s["_uri"]), s["_uri"]))
            for s in splits
        ],
        "_uri string, _block bigint, _first bigint, _lines bigint, file string",
    )
    # Lines before this split in the same file = sum of the earlier splits' line counts.
    earlier = Window.partitionBy("_uri").orderBy("_block").rowsBetween(
        Window.unboundedPreceding, -1
    )
    offsets = summary.withColumn(
        "_offset", F.coalesce(F.sum("_lines").over(earlier), F.lit(0))
    ).drop("_lines")
    return raw.join(F.broadcast(offsets), ["_uri", "_block"]).select(
        F.col("file"),
        (F.col("_offset") + F.col("_position") - F.col("_first") + 1).alias("line_number"),
        F.col("line"),
    )


def _count_one(path: str, store: tuple[str, str | None, bool] | None) -> tuple[str, int, str]:
    """(path, lines, error) on an executor: the lines of one landing file counted from its raw
    bytes by `landing_files.count_lines`, the same function the local engines use (the Glue job
    ships this package to the executors with --extra-py-files)."""
    try:
        return path, count_lines(path, S3Store(*store) if store else None), ""
    except LandingError as exc:
        return path, 0, str(exc)


def count_landing_lines(spark: SparkSession, files: list[str],
                        store: S3Store | None = None) -> dict[str, int]:
    """Lines of each landing file counted from its raw bytes (the conservation figure), one
    Spark task per file: the executors read the files, not the driver one at a time (at SF1000,
    12.6 GB through one boto3 client). A file that cannot be read is a LandingError naming it."""
    if not files:
        return {}
    where = (store.region, store.endpoint_url, store.anonymous) if store else None
    counted = spark.sparkContext.parallelize(files, len(files)).map(
        lambda path: _count_one(path, where)).collect()
    errors = [error for _, _, error in counted if error]
    if errors:
        raise LandingError(errors[0])
    return {path: lines for path, lines, _ in counted}
