"""Incremental runs equal a full rebuild, always (issue: incremental lakehouse).

A hypothesis state machine lands random changes — new accelerometer and step files (with exact
copies of earlier readings and readings at instants other readings share), customer files
that newly consent, withdraw, move a consent date or hand a device to another owner, removed
and rewritten files — and after every change runs the real asset graph on the same lakehouse
(incremental), then checks every trusted and curated table against the tables computed from
scratch by the same transforms from all landing files. Polars here; the Spark machine lives in
engines/test_incremental_spark.py."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import polars as pl
import pytest
from dagster import AssetSelection
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from polars.testing import assert_frame_equal

from stedi_assets import schemas
from stedi_assets.automation import stedi_daily
from stedi_assets.deployments import build_resources
from stedi_assets.engines.polars_engine import PolarsEngine
from stedi_assets.increments import FULL_REFRESH_TAG, FULL_VERIFICATION_TAG
from stedi_assets.resources import LandingSource
from stedi_assets.transforms import polars as ops
from stedi_assets_tests.support.graph import graph_settings, run_graph
from stedi_assets_tests.support.tiny_landing import CUSTOMERS, write_tiny_landing

TABLES = ("customer_trusted", "accelerometer_trusted", "customer_curated",
          "step_trainer_trusted", "machine_learning_curated")
#: every asset, without the checks of the trusted and curated tables
TABLES_ONLY = AssetSelection.all() - AssetSelection.checks_for_assets(*TABLES)
NAMES = ("ann", "bob", "cy", "dee")
SERIALS = ("s-1", "s-2", "s-3")
#: instants on the first day (shared, around the consent dates) and on two later days: the
#: reading tables are partitioned by day (io/iceberg_partitions.py)
TIMES = st.sampled_from([1000, 1001, 1002, 1003, 1004, 86_401_000, 172_801_002])


def spelled(name: str) -> st.SearchStrategy[str]:
    # the same customer identity spelled as a phone or a sign-up form might send it
    return st.sampled_from([f"{name}@example.com", f"{name.upper()}@Example.com",
                            f" {name}@example.com"])


customer_record = st.sampled_from(NAMES).flatmap(lambda name: st.builds(
    lambda email, serial, consent, updated: {
        "customerName": name, "email": email, "phone": 8015551212, "birthDay": "1970-01-01",
        "serialNumber": serial, "registrationDate": 900, "lastUpdateDate": updated,
        "shareWithResearchAsOfDate": consent, "shareWithPublicAsOfDate": None,
        "shareWithFriendsAsOfDate": None},
    spelled(name), st.sampled_from(SERIALS),
    st.one_of(st.none(), st.sampled_from([1000, 1002, 1004])), st.integers(1, 40)))

accelerometer_reading = st.sampled_from(NAMES).flatmap(lambda name: st.builds(
    lambda user, t, x, y: {"user": user, "timestamp": t, "x": x, "y": y, "z": 0.0},
    spelled(name), TIMES, st.sampled_from([0.0, 1.0]), st.sampled_from([0.0, 1.0])))

step_reading = st.builds(
    lambda t, serial, d: {"sensorReadingTime": t, "serialNumber": serial,
                          "distanceFromObject": d},
    TIMES, st.sampled_from(SERIALS), st.sampled_from([10, 11]))


def expected_tables(landing: Path, secret: str, *, consent_as_of_date: bool,
                    exclude_shared_devices: bool) -> dict[str, pl.DataFrame]:
    """Every table computed from scratch from all landing files (the full-rebuild reference)."""
    source, engine = LandingSource(root=str(landing)), PolarsEngine()
    rows, rejects = {}, {}
    for table in schemas.LANDING_TABLES:
        batch = engine.read_landing(source.files(table.source), table)
        rows[table.source], rejects[table.source] = batch.rows.lazy(), batch.rejects.lazy()
    customers = ops.customer_trusted(rows["customer"], rejects["customer"])
    readings = ops.accelerometer_trusted(rows["accelerometer"], customers,
                                         consent_as_of_date=consent_as_of_date)
    curated = ops.customer_curated(customers, readings, secret=secret)
    excluded = (ops.non_consenting_devices(rows["customer"], rejects["customer"])
                if exclude_shared_devices else None)
    steps = ops.step_trainer_trusted(rows["step_trainer"], curated, excluded_devices=excluded)
    pairs = ops.machine_learning_curated(steps, readings, secret=secret)
    return {name: frame.collect() for name, frame in zip(
        TABLES, (customers, readings, curated, steps, pairs), strict=True)}


def assert_same_rows(actual: pl.DataFrame, expected: pl.DataFrame, table: str) -> None:
    actual = actual.select(expected.columns)
    try:
        assert_frame_equal(actual.sort(actual.columns, nulls_last=True),
                           expected.sort(expected.columns, nulls_last=True),
                           check_dtypes=False)
    except AssertionError as exc:
        raise AssertionError(f"{table}: incremental != full rebuild\n{actual}\n{expected}"
                             ) from exc


class IncrementalEqualsFull(RuleBasedStateMachine):
    engine = "polars"
    consent_as_of_date = False
    shared_devices = "include"

    def __init__(self):
        super().__init__()
        self.work = Path(tempfile.mkdtemp(prefix="stedi-incremental-"))
        self.landing, self.lake = self.work / "landing", self.work / "lake"
        self.files: dict[str, list[Path]] = {"customer": [], "accelerometer": [],
                                             "step_trainer": []}
        self.count = 0
        self.runs = 0
        self.rewritten = False  # a landing file removed or rewritten since the last run
        self.customers_landed = False  # a customer file landed since the last run

    def teardown(self):
        shutil.rmtree(self.work, ignore_errors=True)

    def _land(self, source: str, records: list[dict]) -> None:
        folder = self.landing / source
        folder.mkdir(parents=True, exist_ok=True)
        self.count += 1
        path = folder / f"{source}-{self.count:04d}.json"
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
        self.files[source].append(path)

    @initialize(customers=st.lists(customer_record, min_size=1, max_size=4),
                readings=st.lists(accelerometer_reading, min_size=1, max_size=6),
                steps=st.lists(step_reading, min_size=1, max_size=6))
    def first_files(self, customers, readings, steps):
        self._land("customer", customers)
        self._land("accelerometer", readings)
        self._land("step_trainer", steps)

    @rule(readings=st.lists(accelerometer_reading, min_size=1, max_size=5))
    def new_accelerometer_file(self, readings):
        self._land("accelerometer", readings)

    @rule(steps=st.lists(step_reading, min_size=1, max_size=5))
    def new_step_trainer_file(self, steps):
        self._land("step_trainer", steps)

    @rule(customers=st.lists(customer_record, min_size=1, max_size=3))
    def new_customer_file(self, customers):
        # new customers, new consents, withdrawals, moved consent dates, devices changing hands
        self._land("customer", customers)
        self.customers_landed = True

    @precondition(lambda self: sum(len(f) for f in self.files.values()) > 3)
    @rule(data=st.data())
    def remove_or_rewrite_a_file(self, data):
        source = data.draw(st.sampled_from([s for s, f in self.files.items() if len(f) > 1]))
        path = data.draw(st.sampled_from(self.files[source]))
        if data.draw(st.booleans()):
            path.unlink()
            self.files[source].remove(path)
        else:
            lines = path.read_text().splitlines()
            path.write_text("\n".join(lines[: max(1, len(lines) - 1)]) + "\n")
        self.rewritten = True

    @invariant()
    def tables_equal_a_full_rebuild(self):
        if not self.files["customer"]:
            return
        run_settings = graph_settings(self.landing, self.lake, engine=self.engine,
                                      consent_as_of_date=self.consent_as_of_date,
                                      shared_devices=self.shared_devices)
        # the tables only (the landing checks run inside the landing steps): half the time
        run = run_graph(self.landing, self.lake, engine_name=self.engine,
                        settings=run_settings, selection=TABLES_ONLY)
        # after the first run, only a removed or rewritten landing file forces a full rebuild
        for table in ("accelerometer_trusted", "step_trainer_trusted",
                      "machine_learning_curated"):
            reason = run.metadata(table)["incremental/full_reason"].value
            if self.runs and not self.rewritten:
                assert reason == "", f"{table} was rebuilt in full: {reason}"
        if self.runs and not self.rewritten and not self.customers_landed:
            # only readings landed: customer_trusted is kept, customer_curated appended to
            assert run.metadata("customer_trusted")["incremental/unchanged"].value is True
            reason = run.metadata("customer_curated")["incremental/full_reason"].value
            assert reason == "", f"customer_curated was rebuilt in full: {reason}"
        self.runs += 1
        self.rewritten = self.customers_landed = False
        secret = build_resources(run_settings)["privacy"].pseudonym_secret
        expected = expected_tables(self.landing, secret,
                                   consent_as_of_date=self.consent_as_of_date,
                                   exclude_shared_devices=self.shared_devices == "exclude")
        for table in TABLES:
            assert_same_rows(run.table(table), expected[table], table)


def _machine_settings(examples: int, steps: int):
    return settings(max_examples=examples, stateful_step_count=steps, deadline=None,
                    suppress_health_check=list(HealthCheck))


class DefaultRules(IncrementalEqualsFull):
    pass


class ConsentAsOfDateAndExcludedDevices(IncrementalEqualsFull):
    consent_as_of_date = True
    shared_devices = "exclude"


TestIncrementalEqualsFull = pytest.mark.slow(DefaultRules.TestCase)
TestIncrementalEqualsFull.settings = _machine_settings(6, 5)
TestIncrementalWithStricterRules = pytest.mark.slow(ConsentAsOfDateAndExcludedDevices.TestCase)
TestIncrementalWithStricterRules.settings = _machine_settings(4, 5)


def _metadata(run, table: str) -> dict[str, object]:
    return {k: v.value for k, v in run.metadata(table).items()}


def test_runs_after_the_first_update_only_the_slices_a_change_touches(tmp_path):
    """New readings (one a copy of an older one), then a withdrawal, then a full refresh: the
    reading tables are updated incrementally, keep the data files the change did not touch,
    and always equal a full rebuild."""
    landing, lake = write_tiny_landing(tmp_path / "landing"), tmp_path / "lake"
    run_settings = graph_settings(landing, lake)
    secret = build_resources(run_settings)["privacy"].pseudonym_secret
    incremental = ("accelerometer_trusted", "step_trainer_trusted", "machine_learning_curated")

    def run_and_compare(tags=None):
        run = run_graph(landing, lake, settings=run_settings, tags=tags)
        expected = expected_tables(landing, secret, consent_as_of_date=False,
                                   exclude_shared_devices=False)
        for table in TABLES:
            assert_same_rows(run.table(table), expected[table], table)
        assert all(e.passed for e in run.checks().values())
        return run

    def verification(run) -> set[str]:  # of the five consent checks
        return {run.checks()[(t, "consent")].metadata["verification"].value for t in TABLES}

    first = run_and_compare()
    assert verification(first) == {"full"}
    assert all(_metadata(first, t)["incremental"] is False for t in incremental)
    assert "no snapshot" in _metadata(first, "accelerometer_trusted")["incremental/full_reason"]

    (landing / "accelerometer" / "later.json").write_text(
        json.dumps({"user": "ANN@example.com", "timestamp": 5000, "x": 9.0, "y": 0.0,
                    "z": 0.0}) + "\n" +
        json.dumps({"user": "ann@example.com", "timestamp": 1000, "x": 1.0, "y": 0.0,
                    "z": 0.0}) + "\n")  # a copy of a reading landed before
    second = run_and_compare()
    assert verification(second) == {"incremental"}
    # no step reading and no consent changed: none of step_trainer_trusted's rows is read
    consent = second.checks()[("step_trainer_trusted", "consent")].metadata
    assert (consent["rows_checked"].value, consent["rows_in_table"].value) == (0, 3)
    for table in incremental:
        assert _metadata(second, table)["incremental"] is True, table
    readings = _metadata(second, "accelerometer_trusted")
    assert readings["incremental/data_files_added"] == 1
    assert readings["incremental/data_files_kept"] + readings[
        "incremental/data_files_rewritten"] == 1
    assert second.table("machine_learning_curated").filter(
        pl.col("sensorReadingTime") == 5000).height == 1  # serial-a at 5000 x ann's new reading
    # the copy's slice (ann at 1000) was recomputed: its file rewritten, the pairs too
    assert _metadata(second, "machine_learning_curated")["incremental/appended_only"] is False

    (landing / "customer" / "withdrawal.json").write_text(json.dumps({
        "customerName": "bob", "email": "bob@example.com", "phone": 8015551212,
        "birthDay": "1970-01-01", "serialNumber": "serial-b", "registrationDate": 1000.0,
        "lastUpdateDate": 2000, "shareWithResearchAsOfDate": None}) + "\n")
    third = run_and_compare()
    assert verification(third) == {"incremental"}
    assert _metadata(third, "machine_learning_curated")["incremental/appended_only"] is False
    assert all(_metadata(third, t)["incremental"] is True for t in incremental)
    assert not third.table("accelerometer_trusted").filter(
        pl.col("user") == "bob@example.com").height
    assert not third.table("step_trainer_trusted").filter(
        pl.col("serialNumber") == "serial-b").height

    fourth = run_and_compare(tags={FULL_REFRESH_TAG: "true"})
    assert verification(fourth) == {"full"}
    assert all(_metadata(fourth, t)["incremental"] is False for t in incremental)
    assert FULL_REFRESH_TAG in _metadata(fourth, "machine_learning_curated")[
        "incremental/full_reason"]

    # the daily schedule's tag: every row checked, the tables still updated incrementally
    assert stedi_daily.tags == {FULL_VERIFICATION_TAG: "true"}
    fifth = run_and_compare(tags=stedi_daily.tags)
    assert verification(fifth) == {"full"}
    assert all(_metadata(fifth, t)["incremental"] is True for t in incremental)

    pairs_before = fifth.table("machine_learning_curated").height
    # readings only added — a new consenting customer's, and a new instant of both tables —
    # the new pairs are appended and no data file of machine_learning_curated is rewritten
    (landing / "customer" / "eve.json").write_text(json.dumps(
        {**CUSTOMERS[0], "customerName": "eve", "email": "eve@example.com",
         "serialNumber": "serial-e"}) + "\n")
    (landing / "step_trainer" / "at-6000.json").write_text(json.dumps(
        {"sensorReadingTime": 6000, "serialNumber": "serial-a", "distanceFromObject": 12}) + "\n")
    (landing / "accelerometer" / "at-6000.json").write_text(
        json.dumps({"user": "ann@example.com", "timestamp": 6000, "x": 2.0, "y": 0.0,
                    "z": 0.0}) + "\n" +
        json.dumps({"user": "eve@example.com", "timestamp": 5000, "x": 3.0, "y": 0.0,
                    "z": 0.0}) + "\n")  # pairs with serial-a's older step reading at 5000
    sixth = run_and_compare()
    pairs = _metadata(sixth, "machine_learning_curated")
    assert pairs["incremental/appended_only"] is True
    assert pairs["incremental/data_files_rewritten"] == 0
    assert sixth.table("machine_learning_curated").height == pairs_before + 2


@pytest.mark.slow
def test_the_documented_full_refresh_command_rebuilds_the_reading_tables(tmp_path):
    """The command docs/incremental.md gives for a full refresh, run as written."""
    import os
    import re
    import shlex
    import subprocess
    import sys

    from stedi_assets_tests.support.paths import REPO_ROOT

    landing, lake = write_tiny_landing(tmp_path / "landing"), tmp_path / "lake"
    run_graph(landing, lake)
    (landing / "accelerometer" / "later.json").write_text(json.dumps(
        {"user": "ann@example.com", "timestamp": 9000, "x": 1.0, "y": 0.0, "z": 0.0}) + "\n")
    docs = (REPO_ROOT / "docs" / "incremental.md").read_text()
    command = re.search(r"`(dagster job execute [^`]*full_refresh[^`]*)`", docs).group(1)
    argv = shlex.split(command)
    argv[0] = os.path.join(os.path.dirname(sys.executable), "dagster")
    env = {**os.environ, "STEDI_LANDING_ROOT": str(landing), "STEDI_LAKEHOUSE_ROOT": str(lake),
           "STEDI_AUTOMATION": "off", "DAGSTER_HOME": str(tmp_path / "home")}
    (tmp_path / "home").mkdir()
    proc = subprocess.run(argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    from stedi_assets.io.iceberg_io import LocalIcebergIOManager

    store = LocalIcebergIOManager(root=str(lake))
    for table in ("accelerometer_trusted", "step_trainer_trusted", "machine_learning_curated"):
        assert store.snapshot(table).properties["stedi.incremental"] == "false", table
    assert 9000 in store.scan_table("accelerometer_trusted").collect()["timestamp"].to_list()
