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
