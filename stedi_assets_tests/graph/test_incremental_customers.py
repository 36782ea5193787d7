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


def _case(customers, kept, removed, added):
    """(customer_trusted, customer_curated before, the readings then as frames) — the
    accelerometer rows are taken as landed (consent does not matter to this rule)."""
    cl, cr = landing(customers, "customer_landing")
    trusted = pe.customer_trusted(cl.lazy(), cr.lazy()).collect()
    before = pe.customer_curated(trusted.lazy(), _readings(kept + removed).lazy(),
                                 secret=SECRET).collect()
    return trusted, before, *(_readings(r) if r else None for r in (kept, removed, added))


def _identities(records: list[dict]) -> set[str]:
    return {r["user"].strip().lower() for r in records}


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(customers=st.lists(customer_record, min_size=1, max_size=5),
       kept=st.lists(accelerometer_reading, max_size=5),
       removed=st.lists(accelerometer_reading, max_size=3),
       added=st.lists(accelerometer_reading, max_size=5))
def test_customer_curated_update_equals_a_rebuild(customers, kept, removed, added):
    trusted, before, kept_rows, removed_rows, added_rows = _case(customers, kept, removed,
                                                                 added)
    updated = pe.customer_curated_update(
        before.lazy(), trusted.lazy(), None if removed_rows is None else removed_rows.lazy(),
        None if added_rows is None else added_rows.lazy(), secret=SECRET)
    # None exactly when a removed reading's customer has no added reading
    assert (updated is None) == bool(_identities(removed) - _identities(added))
    if updated is None:
        return
    rebuilt = pe.customer_curated(trusted.lazy(), _readings(kept + added).lazy(),
                                  secret=SECRET).collect()
    updated = updated.collect()
    assert updated.height == rebuilt.height  # every customer once
    assert _sorted(updated).equals(_sorted(rebuilt))
    assert updated.head(before.height).equals(before)  # the rows it held stay first


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
