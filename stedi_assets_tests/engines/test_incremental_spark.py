"""Incremental runs on Spark equal a full rebuild: the state machine of
graph/test_incremental_tables.py with the Spark engine and the stricter consent rules (one
example of three changes: a Spark graph run costs over a minute on a 2-core machine). Every
run after the first takes the incremental path unless a landing file was removed or
rewritten (the machine asserts it)."""

from __future__ import annotations

import pytest

from stedi_assets_tests.graph.test_incremental_tables import (
    IncrementalEqualsFull,
    _machine_settings,
)

pytest_plugins = ["stedi_assets_tests.support.spark_session"]


class SparkIncrementalEqualsFull(IncrementalEqualsFull):
    engine = "spark"
    consent_as_of_date = True
    shared_devices = "exclude"


TestSparkIncrementalEqualsFull = pytest.mark.slow(pytest.mark.spark(
    SparkIncrementalEqualsFull.TestCase))
TestSparkIncrementalEqualsFull.settings = _machine_settings(1, 3)


@pytest.mark.spark
def test_spark_finds_the_days_of_a_change_as_polars_does(spark):
    import polars as pl

    from stedi_assets.increments import Affected
    from stedi_assets.io.iceberg_partitions import DAY_MS
    from stedi_assets.transforms.polars.increments import affected_days as polars_days
    from stedi_assets.transforms.spark.increments import affected_days as spark_days

    times = [-1, None, 5, DAY_MS, 3 * DAY_MS - 1, -DAY_MS - 1]
    pairs = [("a", 7), ("b", None), ("c", 2 * DAY_MS)]
    polars = Affected("machine_learning_curated",
                      times=pl.DataFrame({"_time": times}, schema={"_time": pl.Int64}),
                      pairs=pl.DataFrame(pairs, schema={"_group": pl.String,
                                                        "_time": pl.Int64}, orient="row"))
    on_spark = Affected("machine_learning_curated",
                        times=spark.createDataFrame([(t,) for t in times], "_time bigint"),
                        pairs=spark.createDataFrame(pairs, "_group string, _time bigint"))
    assert spark_days(on_spark, DAY_MS) == polars_days(polars, DAY_MS) == {-2, -1, 0, 1, 2}
    groups = spark.createDataFrame([("a",)], "_group string")
    assert spark_days(Affected("accelerometer_trusted", groups=groups), DAY_MS) is None
