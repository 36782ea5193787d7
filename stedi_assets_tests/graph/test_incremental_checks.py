"""An incremental consent check finds exactly what a full one finds (check_rules.SincePassed).

The check last passed on a table T0 against customer records L0. Now the table is T1 — some of
T0's rows kept, rows added by a writer that may be wrong (they ignore consent altogether) —
and the customer records are L1 (L0 plus records that newly consent, withdraw, move a consent
date, hand a device on). Checking only the added rows and the kept rows of customers whose
consent record changed must give the same verdict and the same violation count as checking
every row of T1: a kept row of an unchanged customer passed then and passes now."""

from __future__ import annotations

import json

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stedi_assets import schemas
from stedi_assets.check_rules import SincePassed, consent_outcome
from stedi_assets.transforms import polars as pe
from stedi_assets_tests.graph.test_incremental_tables import (
    NAMES,
    accelerometer_reading,
    customer_record,
    step_reading,
)

pytest_plugins = ["stedi_assets_tests.support.spark_session"]
SECRET = "incremental-check-secret"
TABLES = ("customer_trusted", "accelerometer_trusted", "step_trainer_trusted",
          "customer_curated", "machine_learning_curated")


def landing(records: list[dict], table: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    lines = [json.dumps(r) for r in records]
    frame = pl.DataFrame({"file": "f.json", "line_number": range(1, len(lines) + 1),
                          "line": lines},
                         schema={"file": pl.String, "line_number": pl.Int64, "line": pl.String})
    rows, rejects, _ = pe.parse_landing(frame, schemas.TABLES[table])
    return rows, rejects


def passing_tables(customers, readings, steps, *, as_of: bool, exclude: bool, ops=pe):
    """Every zone table as the transforms compute it: what a consent check passes on."""
    (cl, cr), (al, _), (sl, _) = (landing(customers, "customer_landing"),
                                  landing(readings, "accelerometer_landing"),
                                  landing(steps, "step_trainer_landing"))
    ct = ops.customer_trusted(cl.lazy(), cr.lazy())
    at = ops.accelerometer_trusted(al.lazy(), ct, consent_as_of_date=as_of)
    cc = ops.customer_curated(ct, at, secret=SECRET)
    excluded = ops.non_consenting_devices(cl.lazy(), cr.lazy()) if exclude else None
    st_ = ops.step_trainer_trusted(sl.lazy(), cc, excluded_devices=excluded)
    ml = ops.machine_learning_curated(st_, at, secret=SECRET)
    return dict(zip(TABLES, (t.collect() for t in (ct, at, st_, cc, ml)), strict=True))


def leaked_tables(customers, readings, steps) -> dict[str, pl.DataFrame]:
    """What a writer ignoring consent would add: every customer consenting, from day 0."""
    everyone = [{**c, "shareWithResearchAsOfDate": 0, "lastUpdateDate": 10**6}
                for c in customers]
    return passing_tables(everyone, readings, steps, as_of=False, exclude=False)


def outcomes(table: str, kept, added, before, after, changed, *, as_of: bool,
             exclude: bool):
    (l0, r0), (l1, r1), (lc, rc) = before, after, changed
    rules = dict(secret=SECRET, consent_as_of_date=as_of,
                 shared_devices="exclude" if exclude else "include")
    full = consent_outcome(table, pe, pl.concat([kept, added]).lazy(), l1.lazy(), r1.lazy(),
                           **rules)
    since = SincePassed(added.lazy(), kept.lazy(), l0.lazy(), r0.lazy(), lc.lazy(),
                        rc.lazy(), kept.height + added.height)
    return full, consent_outcome(table, pe, None, l1.lazy(), r1.lazy(), since=since, **rules)


#: a line quarantined for its consent value: a record without consent, so it withdraws
quarantined_withdrawal = st.sampled_from(NAMES).map(lambda name: {
    "email": f"{name}@example.com", "lastUpdateDate": 50, "shareWithResearchAsOfDate": "oops"})


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(customers=st.lists(customer_record, min_size=1, max_size=5),
       changes=st.lists(st.one_of(customer_record, quarantined_withdrawal), max_size=4),
       readings=st.lists(accelerometer_reading, max_size=10),
       steps=st.lists(step_reading, max_size=10),
       as_of=st.booleans(), exclude=st.booleans(), data=st.data())
def test_an_incremental_consent_check_finds_exactly_what_a_full_one_finds(
        customers, changes, readings, steps, as_of, exclude, data):
    passed = passing_tables(customers, readings, steps, as_of=as_of, exclude=exclude)
    leaked = leaked_tables(customers + changes, readings, steps)
    before = landing(customers, "customer_landing")
    after = landing(customers + changes, "customer_landing")
    changed = landing(changes, "customer_landing")  # the records of the file added since
    for table in TABLES:
        then = passed[table]
        assert consent_outcome(table, pe, then.lazy(), before[0].lazy(), before[1].lazy(),
                               secret=SECRET, consent_as_of_date=as_of,
                               shared_devices="exclude" if exclude else "include").passed
        keep = data.draw(st.lists(st.booleans(), min_size=then.height, max_size=then.height))
        pick = data.draw(st.lists(st.booleans(), min_size=leaked[table].height,
                                  max_size=leaked[table].height))
        kept = then.filter(pl.Series(keep, dtype=pl.Boolean))
        added = leaked[table].select(then.columns).filter(pl.Series(pick, dtype=pl.Boolean))
        full, incremental = outcomes(table, kept, added, before, after, changed, as_of=as_of,
                                     exclude=exclude)
        assert incremental.metadata["verification"] == "incremental"
        assert (incremental.passed, incremental.metadata["violations"]) == (
            full.passed, full.metadata["violations"]), table
        assert incremental.metadata["rows_checked"] <= full.metadata["rows_checked"]


def person(name, serial, consent, updated):
    return {"customerName": name, "email": f"{name}@example.com", "phone": 1,
            "birthDay": "1970-01-01", "serialNumber": serial, "registrationDate": 900,
            "lastUpdateDate": updated, "shareWithResearchAsOfDate": consent,
            "shareWithPublicAsOfDate": None, "shareWithFriendsAsOfDate": None}


#: every kind of consent change at once, over readings at every instant
CUSTOMERS = [person("ann", "s-1", 1000, 1), person("bob", "s-2", 1000, 1),
             person("cy", "s-3", 1000, 1), person("dee", "s-4", None, 1)]
CHANGES = [person("bob", "s-2", None, 5),     # withdraws
           person("cy", "s-3", 1004, 5),      # consents as of a later date
           person("dee", "s-1", None, 5)]     # (without consent) holds ann's device too
READINGS = [{"user": f"{n}@example.com", "timestamp": t, "x": 0.0, "y": 0.0, "z": 0.0}
            for n in ("ann", "bob", "cy", "dee") for t in (1000, 1002, 1004)]
STEPS = [{"sensorReadingTime": t, "serialNumber": s, "distanceFromObject": 1}
         for s in ("s-1", "s-2", "s-3", "s-4") for t in (1000, 1002, 1004)]
RULES = ((False, False), (True, True))  # (consent as of date, exclude shared devices)


def scenario(as_of: bool, exclude: bool):
    """(table -> (rows kept, rows added), landing before, after, the records changed)."""
    passed = passing_tables(CUSTOMERS, READINGS, STEPS, as_of=as_of, exclude=exclude)
    leaked = leaked_tables(CUSTOMERS + CHANGES, READINGS, STEPS)
    return ({t: (passed[t], leaked[t].select(passed[t].columns).head(2)) for t in TABLES},
            landing(CUSTOMERS, "customer_landing"),
            landing(CUSTOMERS + CHANGES, "customer_landing"),
            landing(CHANGES, "customer_landing"))


@pytest.mark.parametrize(("as_of", "exclude"), RULES)
def test_every_kind_of_consent_change_is_found_among_kept_rows(as_of, exclude):
    tables, before, after, changed = scenario(as_of, exclude)
    for table, (kept, _) in tables.items():
        none_added = kept.clear()
        full, incremental = outcomes(table, kept, none_added, before, after, changed,
                                     as_of=as_of, exclude=exclude)
        assert not full.passed, table  # bob's rows stayed, at least
        assert incremental.metadata["violations"] == full.metadata["violations"], table
        assert incremental.metadata["rows_checked"] < full.metadata["rows_checked"], table


#: dee (without consent, device s-4) consents: nobody's consent worsened
NEW_CONSENT = [person("dee", "s-4", 1000, 5)]


def consenting_then_and_now(ops, frame=lambda f: f.lazy()):
    before = landing(CUSTOMERS, "customer_landing")
    after = landing(CUSTOMERS + NEW_CONSENT, "customer_landing")
    return [(ops.consenting_customers(frame(cl), SECRET, frame(cr)),
             ops.non_consenting_devices(frame(cl), frame(cr))) for cl, cr in (before, after)]


def test_a_new_consent_sends_no_kept_row_to_be_checked_again():
    """Only a worsened consent sends kept rows to be checked again: a row that passed had its
    key's consent then, so a customer who joined (and their device leaving the excluded set)
    had none that could have failed; a withdrawal still does (the property above)."""
    (consenting0, excluded0), (consenting1, excluded1) = consenting_then_and_now(pe)
    for key in ("email", "serialNumber", "customerKey"):
        devices = key == "serialNumber"  # the excluded devices are keyed on them
        changed = pe.changed_consent(consenting0, consenting1, key, with_date=True,
                                     excluded_before=excluded0 if devices else None,
                                     excluded_now=excluded1 if devices else None)
        assert changed.collect().is_empty(), key
    # the other way round (dee's consent gone) it is found
    back = pe.changed_consent(consenting1, consenting0, "email", with_date=True)
    assert back.collect()["_match"].to_list() == ["dee@example.com"]


def test_spark_checks_the_same_rows_incrementally(spark):
    """Spark's changed_consent and rows_to_verify give the Polars outcomes, for the tables
    whose keys cover every rule (identity and time; device, excluded devices and customer
    key), under the stricter rules (Spark jobs take seconds each here)."""
    from stedi_assets.transforms import spark as se
    from stedi_assets.transforms.spark.columns import spark_schema

    def to_spark(frame: pl.DataFrame, table: str):
        return spark.createDataFrame(frame.rows(), spark_schema(schemas.TABLES[table]))

    for as_of, exclude in RULES[1:]:
        tables, before, after, changed = scenario(as_of, exclude)
        rules = dict(secret=SECRET, consent_as_of_date=as_of,
                     shared_devices="exclude" if exclude else "include")
        for table in ("accelerometer_trusted", "machine_learning_curated"):
            kept, added = tables[table]
            full, polars_incremental = outcomes(table, kept, added, before, after, changed,
                                                as_of=as_of, exclude=exclude)
            since = SincePassed(to_spark(added, table), to_spark(kept, table),
                                to_spark(before[0], "customer_landing"),
                                to_spark(before[1], "customer_landing_rejects"),
                                to_spark(changed[0], "customer_landing"),
                                to_spark(changed[1], "customer_landing_rejects"),
                                kept.height + added.height)
            spark_incremental = consent_outcome(
                table, se, None, to_spark(after[0], "customer_landing"),
                to_spark(after[1], "customer_landing_rejects"), since=since, **rules)
            assert spark_incremental.metadata == polars_incremental.metadata, table
            assert spark_incremental.passed == polars_incremental.passed == full.passed
    (consenting0, excluded0), (consenting1, excluded1) = consenting_then_and_now(
        se, lambda f: to_spark(f, "customer_landing" if "serialNumber" in f.columns
                               else "customer_landing_rejects"))
    for key in ("email", "serialNumber"):
        devices = key == "serialNumber"
        assert se.changed_consent(consenting0, consenting1, key, with_date=True,
                                  excluded_before=excluded0 if devices else None,
                                  excluded_now=excluded1 if devices else None).count() == 0, key
