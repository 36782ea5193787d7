"""Spark column types of the STEDI tables, and the empty frames every engine step starts from."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from stedi_assets import schemas
from stedi_assets.schemas import Table

SPARK_TYPES: dict[str, T.DataType] = {
    schemas.STRING: T.StringType(),
    schemas.INT64: T.LongType(),
    schemas.FLOAT64: T.DoubleType(),
}

REJECT_SCHEMA = "file string, line_number bigint, line string, reason string"


def spark_schema(table: Table) -> T.StructType:
    return T.StructType([T.StructField(c.name, SPARK_TYPES[c.type]) for c in table.columns])


def logical_schema(schema: T.StructType) -> dict[str, str]:
    """{column: logical type} of a Spark schema (unknown types keep their Spark name)."""
    reverse = {v.simpleString(): k for k, v in SPARK_TYPES.items()}
    return {f.name: reverse.get(f.dataType.simpleString(), f.dataType.simpleString())
            for f in schema.fields}



def empty_rows(table: Table) -> DataFrame:
    return SparkSession.active().createDataFrame([], spark_schema(table))


def empty_rejects() -> DataFrame:
    return SparkSession.active().createDataFrame([], REJECT_SCHEMA)

