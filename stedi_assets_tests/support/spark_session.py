"""One SparkSession for the whole test run, as a pytest plugin.

Test modules load it with
`pytest_plugins = ["stedi_assets_tests.support.spark_session"]`. The graph's
PySparkResource calls getOrCreate() and so reuses this session (its static settings such as
the master are ignored once a session exists). Spark runs on the local JVM: Java is required,
these tests never skip for it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pyspark.sql import SparkSession

from stedi_assets.engines.spark_engine import use_this_python

#: A short-lived test JVM's work is a few small queries over a few rows: the optimising JIT
#: (C2) compiling Spark's own code and whole-stage code generation (Janino) cost more CPU than
#: the rows do (measured: C2 half the driver's CPU time). Tiered compilation stops at C1 and
#: Spark interprets expressions instead of generating whole stages: same results, fewer
#: seconds. (The test run's own session lives long enough for C2 to pay back: below.)
QUICK_JVM_CONF = {
    "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1",
    "spark.executor.extraJavaOptions": "-XX:TieredStopAtLevel=1",
    "spark.sql.codegen.wholeStage": "false",
}

#: Small and quick: two cores, one shuffle partition and no adaptive re-planning (the test data
#: is tiny: each extra partition or AQE stage costs a task or a plan per job), no UI. The
#: default parallelism stays above 1: Spark then reads each small landing file as a partition
#: of its own and writes it as a data file of its own, as on a cluster, which is what lets an
#: unchanged landing file keep its data file (incremental runs). This session's JVM lives for
#: the whole test run, so it keeps the optimising JIT, which pays back after the first graph
#: run (a Spark graph run on the tiny landing, warm: 55 s with C2 against 67-76 s stopping at
#: C1; the first run 87 against 72-83 s); short-lived JVMs use QUICK_JVM_CONF.
SPARK_TEST_CONF = {
    "spark.sql.codegen.wholeStage": "false",
    "spark.master": "local[2]",
    "spark.sql.shuffle.partitions": "1",
    "spark.default.parallelism": "4",
    "spark.sql.adaptive.enabled": "false",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.driver.host": "127.0.0.1",
}


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    use_this_python(SPARK_TEST_CONF)  # as the graph's LakehouseSpark does
    builder = SparkSession.builder.appName("stedi-tests")
    for key, value in SPARK_TEST_CONF.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
