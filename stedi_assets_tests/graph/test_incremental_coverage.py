"""An incremental join-coverage evaluation gives the figures of a full one
(check_rules.CoverageSince).

The check was last evaluated on step and accelerometer tables S0, A0 (their rows in data
files). Since then an update removed some files and added others (rewritten copies of part of
the removed rows, and new rows), giving S1, A1. The counts of the last evaluation, minus the
changed instants as they were, plus the same instants now, must equal the counts of a full
evaluation of S1, A1 — whatever rows changed, at whatever instants, with nulls among them."""

from __future__ import annotations

import json
import shutil

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stedi_assets import check_rules
from stedi_assets.check_rules import CoverageSince, join_figures
from stedi_assets.increments import FULL_VERIFICATION_TAG, Affected
from stedi_assets.io.iceberg_partitions import DAY_MS
from stedi_assets.transforms import polars as pe
from stedi_assets.transforms.polars import figures as pe_figures
from stedi_assets_tests.graph.test_incremental_checks import customer_record, landing
from stedi_assets_tests.support.graph import run_graph

pytest_plugins = ["stedi_assets_tests.support.spark_session"]

INSTANTS = st.one_of(st.none(), st.sampled_from([1000, 1001, 1002, 86_401_000]))
SERIALS = st.sampled_from(["s-1", "s-2", "s-3"])
USERS = st.sampled_from(["ann@example.com", " ANN@example.com", "bob@example.com",
                         "cy@example.com"])
step = st.tuples(INSTANTS, SERIALS, st.sampled_from([10, 11]))
reading = st.tuples(USERS, INSTANTS, st.sampled_from([0.0, 1.0]))


def steps_frame(rows) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"sensorReadingTime": pl.Int64, "serialNumber": pl.String,
                                      "distanceFromObject": pl.Int64}, orient="row").unique()


def readings_frame(rows) -> pl.DataFrame:
    return pl.DataFrame([(u, t, x, 0.0, 0.0) for u, t, x in rows],
                        schema={"user": pl.String, "timestamp": pl.Int64, "x": pl.Float64,
                                "y": pl.Float64, "z": pl.Float64}, orient="row").unique()


def updated(frame: pl.DataFrame, new_rows: pl.DataFrame, files: list[int],
            rewritten: set[int], keep: list[bool]):
    """(the table after an update, rows of the data files it removed, rows of those it
    added): row i of `frame` is in file `files[i]`; the `rewritten` files are replaced by one
    holding the rows `keep` marks and `new_rows` (never an exact copy of a row kept: a
    trusted table has none)."""
    touched = pl.Series(files, dtype=pl.Int64).is_in(list(rewritten))
    removed, untouched = frame.filter(touched), frame.filter(~touched)
    added = pl.concat([removed.filter(pl.Series(keep[:removed.height], dtype=pl.Boolean)),
                       new_rows]).unique().join(untouched, on=frame.columns, how="anti",
                                                nulls_equal=True)
    return pl.concat([untouched, added]), removed, added


def drawn_update(data, frame: pl.DataFrame, new_rows: pl.DataFrame):
    files = data.draw(st.lists(st.integers(0, 2), min_size=frame.height, max_size=frame.height))
    keep = data.draw(st.lists(st.booleans(), min_size=frame.height, max_size=frame.height))
    return updated(frame, new_rows, files, data.draw(st.sets(st.integers(0, 2))), keep)


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(customers=st.lists(customer_record, min_size=1, max_size=4),
       steps0=st.lists(step, max_size=12), readings0=st.lists(reading, max_size=12),
       steps1=st.lists(step, max_size=6), readings1=st.lists(reading, max_size=6),
       data=st.data())
def test_incremental_join_coverage_equals_a_full_evaluation(customers, steps0, readings0,
                                                           steps1, readings1, data):
    owners = landing(customers, "customer_landing")[0].lazy()
    s0, a0 = steps_frame(steps0), readings_frame(readings0)
    s1, s_removed, s_added = drawn_update(data, s0, steps_frame(steps1))
    a1, a_removed, a_added = drawn_update(data, a0, readings_frame(readings1))
    then = join_figures(pe, s0.lazy(), a0.lazy(), owners)
    full = join_figures(pe, s1.lazy(), a1.lazy(), owners)
    # the instants from the rows of the files removed and added (a full rebuild in between)
    compared = pe.machine_learning_curated_affected(s_removed.lazy(), s_added.lazy(),
                                                    a_removed.lazy(), a_added.lazy())
    # the instants of every row removed or added, as the change logs keep them (a superset)
    logged = Affected("machine_learning_curated", times=pl.concat([
        s_removed["sensorReadingTime"], s_added["sensorReadingTime"],
        a_removed["timestamp"], a_added["timestamp"]]).alias("_time").unique().to_frame())
    for changed in (compared, logged):
        since = CoverageSince(then, s0.lazy(), a0.lazy(), s1.lazy(), a1.lazy(), changed)
        assert join_figures(pe, s1.lazy(), a1.lazy(), owners, since) == full
    # as coverage_since reads them: only the rows of the logged instants' days (day files),
    # and every row without a time (a file without a day)
    days = (logged.times["_time"] // DAY_MS).unique().drop_nulls().to_list()

    def on_days(frame: pl.DataFrame, column: str) -> pl.LazyFrame:
        return frame.lazy().filter((pl.col(column) // DAY_MS).is_in(days)
                                   | pl.col(column).is_null())

    since = CoverageSince(then, *(on_days(f, c) for f, c in (
        (s0, "sensorReadingTime"), (a0, "timestamp"), (s1, "sensorReadingTime"),
        (a1, "timestamp"))), logged)
    assert join_figures(pe, s1.lazy(), a1.lazy(), owners, since) == full


def test_spark_adds_up_the_same_figures(spark):
    from stedi_assets.transforms import spark as se

    steps0 = [(1000, "s-1", 10), (1000, "s-2", 10), (1001, "s-1", 10), (None, "s-3", 11),
              (86_401_000, "s-3", 10)]
    readings0 = [("ann@example.com", 1000, 0.0), (" BOB@example.com", 1000, 1.0),
                 ("cy@example.com", 1002, 0.0), ("ann@example.com", None, 0.0)]
    steps1 = [(1002, "s-1", 11), (None, "s-2", 10), (86_401_000, "s-3", 11)]
    readings1 = [("ann@example.com", 1001, 1.0), ("bob@example.com", 86_401_000, 0.0)]
    customers = [{"email": "ann@example.com", "serialNumber": "s-1", "lastUpdateDate": 1},
                 {"email": "bob@example.com", "serialNumber": "s-3", "lastUpdateDate": 1}]
    owners = landing(customers, "customer_landing")[0]
    s0, a0 = steps_frame(steps0), readings_frame(readings0)

    def update(frame, new_rows):  # file 0 of three rewritten, keeping every other row
        return updated(frame, new_rows, [i % 3 for i in range(frame.height)], {0},
                       [i % 2 == 0 for i in range(frame.height)])

    s1, s_removed, s_added = update(s0, steps_frame(steps1))
    a1, a_removed, a_added = update(a0, readings_frame(readings1))

    def figures(ops, convert):
        then = join_figures(ops, convert(s0), convert(a0), convert(owners))
        changed = ops.machine_learning_curated_affected(
            convert(s_removed), convert(s_added), convert(a_removed), convert(a_added))
        since = CoverageSince(then, convert(s0), convert(a0), convert(s1), convert(a1),
                              changed)
        return join_figures(ops, convert(s1), convert(a1), convert(owners), since)

    polars = figures(pe, pl.DataFrame.lazy)
    assert polars == join_figures(pe, s1.lazy(), a1.lazy(), owners.lazy())
    assert polars["step_readings"] == s1.height and polars["joined_rows"] > 0
    assert figures(se, lambda f: spark.createDataFrame(f.rows(), _ddl(f))) == polars


def _ddl(frame: pl.DataFrame) -> str:
    types = {pl.Int64: "bigint", pl.String: "string", pl.Float64: "double"}
    return ", ".join(f"`{name}` {types[dtype]}" for name, dtype in frame.schema.items())


COVERED = ("step_trainer_trusted", "machine_learning_curated")


def _coverage(run) -> dict[str, dict]:
    return {t: {k: v.value for k, v in run.checks()[(t, "join_coverage")].metadata.items()}
            for t in COVERED}


@pytest.mark.slow
def test_the_graph_evaluates_join_coverage_from_what_changed(sample_landing, tmp_path):
    landing, lake = tmp_path / "landing", tmp_path / "lake"
    shutil.copytree(sample_landing, landing)
    first = run_graph(landing, lake)
    assert {t: f["verification"] for t, f in _coverage(first).items()} == dict.fromkeys(
        COVERED, "full")

    # readings a day later at instants where both devices sent one: new pairs
    pairs_before = first.table("machine_learning_curated")  # read now: the next run moves it
    instants = pairs_before["sensorReadingTime"].unique().head(3)
    for source, table, column in (("accelerometer", "accelerometer_trusted", "timestamp"),
                                  ("step_trainer", "step_trainer_trusted",
                                   "sensorReadingTime")):
        rows = first.table(table).filter(pl.col(column).is_in(instants.implode())).with_columns(
            pl.col(column) + 86_400_000)
        (landing / source / f"{source}-later.json").write_text(
            "\n".join(json.dumps(r) for r in rows.to_dicts()) + "\n")
    second = run_graph(landing, lake)
    incremental = _coverage(second)
    assert {t: f["verification"] for t, f in incremental.items()} == dict.fromkeys(
        COVERED, "incremental")
    assert incremental["machine_learning_curated"]["joined_rows"] == second.table(
        "machine_learning_curated").height > pairs_before.height

    full = _coverage(run_graph(landing, lake, tags={FULL_VERIFICATION_TAG: "true"}))
    for table in COVERED:
        assert full[table].pop("verification") == "full"
        assert {k: v for k, v in incremental[table].items() if k != "verification"} == full[
            table]

    # a customer hands their device on: which pairs are foreign changes at every instant
    owner = second.table("customer_trusted").row(0, named=True)
    other = second.table("customer_trusted").row(1, named=True)
    moved = {**other, "serialNumber": owner["serialNumber"],
             "lastUpdateDate": other["lastUpdateDate"] + 1}
    (landing / "customer" / "customer-moved.json").write_text(json.dumps(moved, default=str))
    after_move = _coverage(run_graph(landing, lake))
    assert {t: f["verification"] for t, f in after_move.items()} == dict.fromkeys(
        COVERED, "full")

    # a landing file rewritten: accelerometer_trusted is rebuilt in full, leaving no change
    # log, so the checks evaluate every instant instead of comparing the whole table's rows.
    # The rewrite adds a reading (a rebuild to the very same rows may commit nothing at all,
    # and then nothing changed for the checks either)
    rewritten = sorted((landing / "accelerometer").glob("*.json"))[0]
    kept = second.table("accelerometer_trusted").row(0, named=True)  # a reading that passes
    rewritten.write_text(rewritten.read_text() + json.dumps(
        {**kept, "timestamp": kept["timestamp"] + 1, "x": 123.25}) + "\n")
    after_rewrite = run_graph(landing, lake)
    assert after_rewrite.metadata("accelerometer_trusted")["incremental"].value is False
    assert {t: f["verification"] for t, f in _coverage(after_rewrite).items()} == dict.fromkeys(
        COVERED, "full")


def recorded_calls(monkeypatch, owner, name: str) -> list[tuple]:
    """The arguments of every call of `owner.name` from now on (the calls still run)."""
    calls, original = [], getattr(owner, name)

    def recorded(*args):
        calls.append(args)
        return original(*args)

    monkeypatch.setattr(owner, name, recorded)
    return calls


def test_both_join_coverage_checks_of_a_run_compute_the_join_once(sample_landing, tmp_path,
                                                                   monkeypatch):
    computed = recorded_calls(monkeypatch, pe_figures, "_join_coverage")
    landing, lake = tmp_path / "landing", tmp_path / "lake"
    shutil.copytree(sample_landing, landing)
    run = run_graph(landing, lake)
    first = _coverage(run)
    assert len(computed) == 1  # step_trainer_trusted's check computed it, the other reused it
    assert {k: v for k, v in first["step_trainer_trusted"].items() if k != "rows_in_table"} == {
        k: v for k, v in first["machine_learning_curated"].items() if k != "rows_in_table"}

    # new readings: new snapshots, so the join is computed again (never a stale figure)
    later = run.table("step_trainer_trusted").head(5).with_columns(
        pl.col("sensorReadingTime") + 86_400_000)
    (landing / "step_trainer" / "step_trainer-later.json").write_text(
        "\n".join(json.dumps(r) for r in later.to_dicts()) + "\n")
    second = run_graph(landing, lake, tags={FULL_VERIFICATION_TAG: "true"})
    assert len(computed) == 2
    assert _coverage(second)["step_trainer_trusted"]["step_readings"] == second.table(
        "step_trainer_trusted").height > first["step_trainer_trusted"]["step_readings"]

    # incremental evaluations: the second check reuses the first one's sum
    sums = recorded_calls(monkeypatch, check_rules, "join_coverage_figures")
    (landing / "step_trainer" / "step_trainer-later-2.json").write_text("\n".join(
        json.dumps(r) for r in later.with_columns(pl.col("sensorReadingTime") + 86_400_000)
        .to_dicts()) + "\n")
    third = run_graph(landing, lake)
    figures = _coverage(third)
    assert {f["verification"] for f in figures.values()} == {"incremental"}
    assert len(sums) == 1
    assert figures["step_trainer_trusted"]["step_readings"] == third.table(
        "step_trainer_trusted").height > _coverage(second)["step_trainer_trusted"][
        "step_readings"]
    assert {k: v for k, v in figures["step_trainer_trusted"].items() if k != "rows_in_table"} == {
        k: v for k, v in figures["machine_learning_curated"].items() if k != "rows_in_table"}

    # a customer file that moves no device: both checks stay incremental, and the owners of
    # the two customer snapshots are compared once for both
    compared = recorded_calls(monkeypatch, pe, "same_owners")
    record = json.loads(next((landing / "customer").iterdir()).read_text().splitlines()[0])
    (landing / "customer" / "customer-again.json").write_text(json.dumps(
        {**record, "lastUpdateDate": record["lastUpdateDate"] + 1}) + "\n")
    fourth = run_graph(landing, lake)
    assert {f["verification"] for f in _coverage(fourth).values()} == {"incremental"}
    assert len(compared) == 1
