"""Matching affected customers by the raw spellings of their email (Polars): the same rows
as trimming and lower-casing every row's email; and the consenting set computed once per
process for the same customer snapshot — never reused for another one."""

from __future__ import annotations

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stedi_assets.increments import Affected
from stedi_assets.transforms import polars as pe
from stedi_assets.transforms.polars import figures, increments
from stedi_assets.transforms.polars.tables import _identity
from stedi_assets_tests.unit.test_transforms_polars import customers

SPELLINGS = st.sampled_from([None, "ann@x.io", " Ann@X.io", "ANN@x.io\t", "bob@x.io",
                             "Bob@x.io ", "", " ", "ćy@x.io", "ĆY@X.IO"])
READINGS = st.lists(st.tuples(SPELLINGS, st.one_of(st.none(), st.integers(0, 4))),
                    max_size=30)


def readings(rows) -> pl.LazyFrame:
    return pl.DataFrame(rows, schema={"user": pl.String, "timestamp": pl.Int64},
                        orient="row").with_row_index("n").lazy()


def _reference(frame: pl.LazyFrame, affected: Affected) -> tuple[list[int], list[int]]:
    """(row numbers in an affected slice, the others): every row's identity computed, then
    matched (what the slices mean)."""
    keyed = frame.with_columns(_identity("user").alias("_group"))
    hit = pl.lit(False)
    for whole in (affected.groups, affected.new_groups):
        if whole is not None:
            hit = hit | pl.col("_group").is_in(whole["_group"].implode())
    if affected.pairs is not None:
        keyed = keyed.join(affected.pairs.lazy().with_columns(pl.lit(True).alias("_pair")),
                           left_on=["_group", "timestamp"], right_on=["_group", "_time"],
                           how="left", nulls_equal=True, maintain_order="left")
        hit = hit | pl.col("_pair").fill_null(False)
    return (keyed.filter(hit).select("n").collect()["n"].sort().to_list(),
            keyed.filter(~hit).select("n").collect()["n"].sort().to_list())


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(rows=READINGS, groups=st.lists(SPELLINGS, max_size=3),
       pairs=st.lists(st.tuples(SPELLINGS, st.one_of(st.none(), st.integers(0, 4))),
                      max_size=3),
       new_groups=st.lists(SPELLINGS, max_size=2))
def test_rows_of_affected_slices_match_each_rows_identity(rows, groups, pairs, new_groups):
    frame = readings(rows)

    def group_frame(spellings: list) -> pl.DataFrame | None:
        identities = [None if g is None else g.strip().lower() for g in spellings]
        return pl.DataFrame({"_group": identities}, schema={"_group": pl.String}).unique() \
            if spellings else None

    affected = Affected(
        "accelerometer_trusted", groups=group_frame(groups), new_groups=group_frame(new_groups),
        pairs=pl.DataFrame([(None if u is None else u.strip().lower(), t) for u, t in pairs],
                           schema={"_group": pl.String, "_time": pl.Int64},
                           orient="row").unique() if pairs else None)
    expected_in, expected_out = _reference(frame, affected)
    for rows_in in (increments.rows_inside(frame, affected), increments.inside(frame, affected)):
        assert rows_in.collect()["n"].sort().to_list() == expected_in
    assert increments.outside(frame, affected).collect()["n"].sort().to_list() == expected_out
    # the IO manager's way, over the slices that can hold rows of the base (a new group holds
    # none: its rows are not looked for there): counts from all files at once, then one file
    # read in full
    affected = affected.in_base()
    expected_in, expected_out = _reference(frame, affected)
    if affected.groups is None and affected.pairs is None:
        assert increments.affected_days(affected, 86_400_000) == set()  # no file is read
    spellings = increments.group_spellings(frame, affected)
    [(total, hits)] = increments.affected_counts([frame], affected, spellings)
    assert (total, hits) == (len(rows), len(expected_in))
    if hits:
        kept, instants = increments.split_file(frame, affected, spellings)
        assert kept["n"].sort().to_list() == expected_out
        assert sorted(instants.to_list(), key=lambda v: (v is None, v)) == sorted(
            {r[1] for i, r in enumerate(rows) if i in set(expected_in)},
            key=lambda v: (v is None, v))


LANDING = customers(
    {"email": "Ann@x.io", "serialNumber": "s1", "lastUpdateDate": 1,
     "shareWithResearchAsOfDate": 1},
    {"email": "bob@x.io", "serialNumber": "s2", "lastUpdateDate": 1,
     "shareWithResearchAsOfDate": 1},
)


def test_the_consenting_set_is_computed_once_for_the_same_customer_snapshot(tmp_path):
    path = tmp_path / "customers.parquet"
    LANDING.collect().write_parquet(path)
    first = pe.consenting_customers(pl.scan_parquet(path), "secret-1")
    remembered = dict(figures._CONSENTING)
    again = pe.consenting_customers(pl.scan_parquet(path), "secret-1")
    assert again.collect().equals(first.collect())
    # the second call found the first one's rows: nothing computed, nothing added
    assert list(figures._CONSENTING) == list(remembered)
    assert all(figures._CONSENTING[k] is remembered[k] for k in remembered)
    assert sorted(first.collect()["email"]) == ["ann@x.io", "bob@x.io"]


def test_another_snapshot_or_secret_is_never_served_the_remembered_set(tmp_path):
    old, new = tmp_path / "old.parquet", tmp_path / "new.parquet"
    LANDING.collect().write_parquet(old)
    withdrawn = customers({"email": "bob@x.io", "serialNumber": "s2", "lastUpdateDate": 2})
    pl.concat([LANDING, withdrawn]).collect().write_parquet(new)
    before = pe.consenting_customers(pl.scan_parquet(old), "secret-1").collect()
    after = pe.consenting_customers(pl.scan_parquet(new), "secret-1").collect()
    assert sorted(before["email"]) == ["ann@x.io", "bob@x.io"]
    assert after["email"].to_list() == ["ann@x.io"]  # the withdrawal is seen at once
    other_secret = pe.consenting_customers(pl.scan_parquet(new), "secret-2").collect()
    assert other_secret["customerKey"].to_list() != after["customerKey"].to_list()
    # in-memory frames (tests, callers without files) are identified by their rows
    assert pe.consenting_customers(withdrawn, "secret-1").collect().is_empty()


def test_small_sets_of_changed_customers_never_evict_the_full_set(tmp_path):
    path = tmp_path / "customers.parquet"
    LANDING.collect().write_parquet(path)
    full = pe.consenting_customers(pl.scan_parquet(path), "secret-1")
    full_key = list(figures._CONSENTING)[-1]
    for email in ("Ann@x.io", "bob@x.io"):  # an incremental check's sets then and now
        pe.consenting_customers(pl.scan_parquet(path).filter(pl.col("email") == email),
                                "secret-1")
    assert figures._CONSENTING[full_key].equals(full.collect())


def test_a_plan_holding_many_rows_is_computed_not_remembered():
    # an incremental check's in-memory slice: its plan would hold every row
    big = pl.DataFrame({"sensorReadingTime": range(200_000)}).lazy()
    store: dict = {}
    computed = []
    assert figures._remembered((big,), lambda: computed.append(1) or "figures", store) == (
        "figures")
    assert figures._remembered((big,), lambda: computed.append(1) or "figures", store) == (
        "figures")
    assert computed == [1, 1] and store == {}
    small = pl.DataFrame({"sensorReadingTime": [1, 2]}).lazy()
    figures._remembered((small,), lambda: computed.append(1) or "small", store)
    assert figures._remembered((small,), lambda: computed.append(1) or "other", store) == "small"
    assert len(computed) == 3 and len(store) == 1


BEFORE = [("ann@x.io", 1), ("Bob@x.io", 1), ("dee@x.io", 1)]
NOW = [("ann@x.io", 1), ("bob@x.io ", 2), (" CY@x.io", 3), (None, 3)]


def split_groups(affected: Affected) -> tuple[list, list]:
    """(groups, new groups) of an update, sorted (engine frames read back as Python)."""
    def values(frame) -> list:
        if frame is None:
            return []
        rows = frame.to_dicts() if isinstance(frame, pl.DataFrame) else [
            r.asDict() for r in frame.collect()]
        return sorted(r["_group"] for r in rows)

    return values(affected.groups), values(affected.new_groups)


def test_customers_consenting_only_now_are_new_groups_only_appended():
    """A customer absent from customer_trusted before (whatever the spelling) holds no row in
    accelerometer_trusted: a new group, whose readings are selected from the landing table
    but never looked for in the table's files; a customer present before whose consent (or
    its date, when it counts) changed is a group like any. A null email is nobody."""
    def trusted(rows):
        return pl.DataFrame(rows, schema={"email": pl.String,
                                          "shareWithResearchAsOfDate": pl.Int64},
                            orient="row").lazy()

    for as_of, groups in ((False, ["dee@x.io"]), (True, ["bob@x.io", "dee@x.io"])):
        affected = increments.accelerometer_trusted_affected(
            None, trusted(BEFORE), trusted(NOW), consent_as_of_date=as_of)
        assert split_groups(affected) == (groups, ["cy@x.io"])
        assert increments.affected_days(affected.in_base(), 86_400_000) is None
    only_new = increments.accelerometer_trusted_affected(None, trusted(BEFORE[:2]),
                                                         trusted(NOW[:3]))
    assert split_groups(only_new) == ([], ["cy@x.io"])
    assert increments.affected_days(only_new.in_base(), 86_400_000) == set()  # no file read
    landing = readings([("Cy@x.io", 1), ("ann@x.io", 2), ("cy@x.io\t", 3), (None, 4)])
    assert increments.inside(landing, only_new).collect()["n"].to_list() == [0, 2]
