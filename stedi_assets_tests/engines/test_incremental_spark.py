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


@pytest.mark.spark
def test_spark_splits_newly_consenting_customers_as_polars_does(spark):
    """Customers absent from customer_trusted before are new groups (only appended) on both
    engines; the others whose consent changed are groups; the new groups' readings are
    selected from the landing rows, and no base file's day is read for them alone."""
    import polars as pl

    from stedi_assets.io.iceberg_partitions import DAY_MS
    from stedi_assets.transforms.polars import increments as polars_increments
    from stedi_assets.transforms.spark import increments as spark_increments
    from stedi_assets_tests.unit.test_identity_matching import BEFORE, NOW, split_groups

    schema = "email string, shareWithResearchAsOfDate bigint"
    readings = [("Cy@x.io", 1), ("ann@x.io", 2), ("cy@x.io\t", 3), (None, 4), ("DEE@x.io", 5)]
    for as_of in (False, True):
        def on_polars(rows):
            return pl.DataFrame(rows, schema={"email": pl.String,
                                              "shareWithResearchAsOfDate": pl.Int64},
                                orient="row").lazy()

        expected = polars_increments.accelerometer_trusted_affected(
            None, on_polars(BEFORE), on_polars(NOW), consent_as_of_date=as_of)
        got = spark_increments.accelerometer_trusted_affected(
            None, spark.createDataFrame(BEFORE, schema), spark.createDataFrame(NOW, schema),
            consent_as_of_date=as_of)
        assert split_groups(got) == split_groups(expected)
        assert split_groups(got)[1] == ["cy@x.io"]
        landing = spark.createDataFrame(readings, "user string, timestamp bigint")
        assert sorted(r["timestamp"] for r in spark_increments.inside(landing, got).collect()
                      ) == [1, 3, 5]  # cy's two spellings, dee (withdrew: a group)
        assert spark_increments.affected_days(got.in_base(), DAY_MS) is None  # dee's files
    only_new = spark_increments.accelerometer_trusted_affected(
        None, spark.createDataFrame(BEFORE[:2], schema), spark.createDataFrame(NOW[:3], schema))
    assert split_groups(only_new) == ([], ["cy@x.io"])
    assert spark_increments.affected_days(only_new.in_base(), DAY_MS) == set()
