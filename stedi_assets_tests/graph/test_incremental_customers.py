"""The customer tables in incremental runs: kept as they are when their inputs did not move,
and customer_curated updated from the readings accelerometer_trusted gained or lost
(`customer_curated_update`) — always equal to a rebuild, on both engines."""

from __future__ import annotations

import json

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stedi_assets import schemas
from stedi_assets.transforms import polars as pe
from stedi_assets_tests.graph.test_incremental_checks import landing
from stedi_assets_tests.graph.test_incremental_tables import (
    accelerometer_reading,
    customer_record,
)
from stedi_assets_tests.support.graph import run_graph
from stedi_assets_tests.support.tiny_landing import write_tiny_landing

pytest_plugins = ["stedi_assets_tests.support.spark_session"]
SECRET = "incremental-customers-secret"


def _readings(records: list[dict]) -> pl.DataFrame:
    rows, _ = landing(records, "accelerometer_landing")
    return rows


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(frame.columns, nulls_last=True)


def _trusted(customers: list[dict]) -> pl.DataFrame:
    cl, cr = landing(customers, "customer_landing")
    return pe.customer_trusted(cl.lazy(), cr.lazy()).collect()


def _case(customers, kept, removed, added):
    """(customer_trusted, customer_curated before, the readings then as frames) — the
    accelerometer rows are taken as landed (consent does not matter to this rule)."""
    trusted = _trusted(customers)
    before = pe.customer_curated(trusted.lazy(), _readings(kept + removed).lazy(),
                                 secret=SECRET).collect()
    return trusted, before, *(_readings(r) if r else None for r in (kept, removed, added))


def _identities(records: list[dict], column: str = "user") -> set[str]:
    return {r[column].strip().lower() for r in records}


def _lazy(frame: pl.DataFrame | None) -> pl.LazyFrame | None:
    return None if frame is None else frame.lazy()


def _equals_a_rebuild(updated: pl.LazyFrame, trusted: pl.DataFrame, readings: list[dict]
                      ) -> pl.DataFrame:
    """The updated table, after checking it holds the rows of customer_curated rebuilt from
    `trusted` and `readings`, every customer once."""
    rebuilt = pe.customer_curated(trusted.lazy(), _readings(readings).lazy(),
                                  secret=SECRET).collect()
    updated = updated.collect()
    assert updated.height == rebuilt.height  # every customer once
    assert _sorted(updated).equals(_sorted(rebuilt))
    return updated


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(customers=st.lists(customer_record, min_size=1, max_size=5),
       kept=st.lists(accelerometer_reading, max_size=5),
       removed=st.lists(accelerometer_reading, max_size=3),
       added=st.lists(accelerometer_reading, max_size=5))
def test_customer_curated_update_equals_a_rebuild(customers, kept, removed, added):
    trusted, before, kept_rows, removed_rows, added_rows = _case(customers, kept, removed,
                                                                 added)
    updated = pe.customer_curated_update(before.lazy(), trusted.lazy(), _lazy(removed_rows),
                                         _lazy(added_rows), secret=SECRET)
    # None exactly when a consenting customer lost a reading and gained none
    consenting = set(trusted["email"].str.strip_chars().str.to_lowercase())
    assert (updated is None) == bool(
        (_identities(removed) - _identities(added)) & consenting)
    if updated is None:
        return
    updated = _equals_a_rebuild(updated, trusted, kept + added)
    assert updated.head(before.height).equals(before)  # the rows it held stay first


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(customers_then=st.lists(customer_record, max_size=5),
       customers_now=st.lists(customer_record, max_size=5),
       kept=st.lists(accelerometer_reading, max_size=5),
       removed=st.lists(accelerometer_reading, max_size=3),
       added=st.lists(accelerometer_reading, max_size=5),
       follow=st.booleans())
def test_customer_curated_update_after_customers_changed_equals_a_rebuild(
        customers_then, customers_now, kept, removed, added, follow):
    """customer_trusted moved too (customers consenting, withdrawing, edited): the table
    updated from the changed customers equals a rebuild from the tables now, or the update
    declines (None) exactly when the readings cannot tell."""
    then, now = _trusted(customers_then), _trusted(customers_now)
    ids_then = set(then["email"].str.strip_chars().str.to_lowercase())
    ids_now = set(now["email"].str.strip_chars().str.to_lowercase())
    if follow:  # the readings read last were computed from `then`: only its customers' rows
        kept, removed = ([r for r in rs if r["user"].strip().lower() in ids_then]
                         for rs in (kept, removed))
    readings_then = _readings(kept + removed)
    before = pe.customer_curated(then.lazy(), readings_then.lazy(), secret=SECRET).collect()
    updated = pe.customer_curated_update(
        before.lazy(), now.lazy(), _lazy(_readings(removed) if removed else None),
        _lazy(_readings(added) if added else None), secret=SECRET,
        customers_before=then.lazy(), readings_follow_customers_before=follow)
    lost_last = (_identities(removed) - _identities(added)) & ids_now
    unknown = set() if follow else ids_now - ids_then - _identities(added)
    assert (updated is None) == bool(lost_last or unknown)
    if updated is None:
        return
    _equals_a_rebuild(updated, now, kept + added)


CUSTOMERS = [
    {"customerName": n, "email": f"{n}@example.com", "phone": 1, "birthDay": "1970-01-01",
     "serialNumber": f"s-{n}", "registrationDate": 900, "lastUpdateDate": 10,
     "shareWithResearchAsOfDate": consent, "shareWithPublicAsOfDate": None,
     "shareWithFriendsAsOfDate": None}
    for n, consent in (("ann", 1000), ("bob", 1000), ("cy", None), ("dee", 1000))]


def _reading(user: str, t: int) -> dict:
    return {"user": user, "timestamp": t, "x": 1.0, "y": 0.0, "z": 0.0}


@pytest.mark.spark
def test_spark_updates_customer_curated_as_polars_does(spark):
    from stedi_assets.transforms import spark as se
    from stedi_assets.transforms.spark.columns import spark_schema

    def spark_frame(frame: pl.DataFrame | None, table: str):
        if frame is None:
            return None
        return spark.createDataFrame(frame.rows(), spark_schema(schemas.TABLES[table]))

    cases = [  # (kept, removed, added)
        ([_reading("ann@example.com", 1)], [], [_reading(" BOB@example.com", 2)]),
        ([_reading("ann@example.com", 1)], [], [_reading("ann@example.com", 3),
                                                _reading("cy@example.com", 3)]),
        ([_reading("ann@example.com", 1)], [_reading("dee@example.com", 1)],
         [_reading("Dee@example.com", 4)]),
        ([_reading("ann@example.com", 1)], [_reading("dee@example.com", 1)], []),
    ]
    for kept, removed, added in cases:
        trusted, before, _, removed_rows, added_rows = _case(CUSTOMERS, kept, removed, added)
        expected = pe.customer_curated_update(
            before.lazy(), trusted.lazy(), None if removed_rows is None else removed_rows.lazy(),
            None if added_rows is None else added_rows.lazy(), secret=SECRET)
        actual = se.customer_curated_update(
            spark_frame(before, "customer_curated"), spark_frame(trusted, "customer_trusted"),
            spark_frame(removed_rows, "accelerometer_landing"),
            spark_frame(added_rows, "accelerometer_landing"), secret=SECRET)
        assert (actual is None) == (expected is None)
        if actual is not None:
            got = pl.DataFrame([r.asDict() for r in actual.collect()],
                               schema=before.schema)
            assert _sorted(got).equals(_sorted(expected.collect()))

    # customer_trusted moved as well: ann edited (a new device), bob withdrew, cy consents now
    # (with and without a reading of theirs added), dee unchanged
    edited = [{**CUSTOMERS[0], "serialNumber": "s-ann-2", "lastUpdateDate": 20},
              {**CUSTOMERS[1], "shareWithResearchAsOfDate": None, "lastUpdateDate": 20},
              {**CUSTOMERS[2], "shareWithResearchAsOfDate": 1000, "lastUpdateDate": 20}]
    then, now = _trusted(CUSTOMERS), _trusted(CUSTOMERS + edited)
    readings = _readings([_reading("ann@example.com", 1), _reading("BOB@example.com", 1),
                          _reading("dee@example.com", 2)])
    before = pe.customer_curated(then.lazy(), readings.lazy(), secret=SECRET).collect()
    outcomes = []
    for added, follow in (([_reading(" Cy@example.com", 5)], True), ([], True),
                          ([], False), ([_reading("cy@example.com", 5)], False)):
        added_rows = _readings(added) if added else None
        expected = pe.customer_curated_update(
            before.lazy(), now.lazy(), None, _lazy(added_rows), secret=SECRET,
            customers_before=then.lazy(), readings_follow_customers_before=follow)
        actual = se.customer_curated_update(
            spark_frame(before, "customer_curated"), spark_frame(now, "customer_trusted"),
            None, spark_frame(added_rows, "accelerometer_landing"), secret=SECRET,
            customers_before=spark_frame(then, "customer_trusted"),
            readings_follow_customers_before=follow)
        assert (actual is None) == (expected is None)
        outcomes.append(None if actual is None else _sorted(pl.DataFrame(
            [r.asDict() for r in actual.collect()], schema=before.schema)))
        if actual is not None:
            assert outcomes[-1].equals(_sorted(expected.collect()))
    # cy's reading makes them a reader; without it they are not one (the readings follow
    # the customers then) or cannot be told (they do not)
    assert [o is None for o in outcomes] == [False, False, True, False]
    assert [o.height for o in outcomes if o is not None] == [3, 2, 3]
    assert "s-ann-2" in outcomes[0]["serialNumber"] and "s-ann" not in outcomes[0]["serialNumber"]


def _metadata(run, table: str) -> dict[str, object]:
    return {k: v.value for k, v in run.metadata(table).items()}


def test_customer_tables_are_kept_while_their_inputs_do_not_move(tmp_path):
    """New readings of a reader: customer_trusted and customer_curated commit nothing and
    their consent checks read no customer; a consenting customer's first reading appends
    them to customer_curated; a new customer file rebuilds customer_trusted."""
    landing_root, lake = write_tiny_landing(tmp_path / "landing"), tmp_path / "lake"
    run_graph(landing_root, lake)

    def land(source: str, name: str, records: list[dict]):
        (landing_root / source / name).write_text(
            "".join(json.dumps(r) + "\n" for r in records))
        return run_graph(landing_root, lake)

    again = land("accelerometer", "later.json", [_reading("ann@example.com", 7000)])
    for table in ("customer_trusted", "customer_curated"):
        metadata = _metadata(again, table)
        assert metadata["incremental"] is True, table
        assert metadata["iceberg/new_snapshot"] is False, table
    assert _metadata(again, "customer_curated")["incremental/customers_added"] == 0
    assert _metadata(again, "customer_trusted")["incremental/unchanged"] is True
    checked = again.checks()[("customer_trusted", "consent")].metadata
    assert (checked["verification"].value, checked["rows_checked"].value) == ("incremental", 0)

    # eve consents (a new customer file: customer_trusted is rebuilt) but has no reading yet
    eve = {**CUSTOMERS[0], "customerName": "eve", "email": "eve@example.com",
           "serialNumber": "serial-e"}
    joined = land("customer", "eve.json", [eve])
    assert _metadata(joined, "customer_trusted")["incremental/full_reason"] == \
        "an upstream table changed"
    assert joined.table("customer_curated").height == 2
    # customer_curated recomputes only the customers whose customer_trusted row changed
    metadata = _metadata(joined, "customer_curated")
    assert (metadata["incremental"], metadata["incremental/customers_changed"]) == (True, True)
    first = land("accelerometer", "eve.json", [_reading("EVE@example.com", 8000)])
    metadata = _metadata(first, "customer_curated")
    assert (metadata["incremental"], metadata["incremental/customers_added"]) == (True, 1)
    assert metadata["iceberg/new_snapshot"] is True
    assert first.table("customer_curated").height == 3
    assert _metadata(first, "customer_trusted")["incremental/unchanged"] is True


def test_a_customer_table_with_delete_files_is_rebuilt_by_the_next_run(tmp_path):
    """A DELETE run in Athena leaves delete files the engines do not apply: the next run
    rebuilds the table (replacing them) instead of failing to plan from it."""
    from stedi_assets.io.iceberg_io import LocalIcebergIOManager
    from stedi_assets_tests.unit.test_iceberg_tables import _add_position_delete

    landing_root, lake = write_tiny_landing(tmp_path / "landing"), tmp_path / "lake"
    first = run_graph(landing_root, lake)
    _add_position_delete(LocalIcebergIOManager(root=str(lake)), "customer_trusted")
    again = run_graph(landing_root, lake)
    reason = _metadata(again, "customer_trusted")["incremental/full_reason"]
    assert "row-level delete files" in reason
    assert _sorted(again.table("customer_trusted")).equals(
        _sorted(first.table("customer_trusted")))
