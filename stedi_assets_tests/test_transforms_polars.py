"""Each Polars transform on small hand-built frames: nulls, duplicate emails, shared times."""

import polars as pl

from stedi_assets import schemas
from stedi_assets.transforms import polars_engine as pe

PII = {"email", "user", "customerName", "phone", "birthDay"}


def customers(*rows: dict) -> pl.LazyFrame:
    schema = pe.polars_schema(schemas.TABLES["customer_landing"])
    return pl.DataFrame([{c: r.get(c) for c in schema} for r in rows], schema=schema).lazy()


def accel(*rows: tuple) -> pl.LazyFrame:
    return pl.DataFrame(
        [dict(zip(["user", "timestamp", "x", "y", "z"], r, strict=True)) for r in rows],
        schema=pe.polars_schema(schemas.TABLES["accelerometer_landing"]), orient="row",
    ).lazy()


def steps(*rows: tuple) -> pl.LazyFrame:
    return pl.DataFrame(
        [dict(zip(["sensorReadingTime", "serialNumber", "distanceFromObject"], r, strict=True))
         for r in rows],
        schema=pe.polars_schema(schemas.TABLES["step_trainer_landing"]), orient="row",
    ).lazy()


CUSTOMERS = customers(
    {"email": "a@x", "serialNumber": "sa", "shareWithResearchAsOfDate": 10},
    {"email": "a@x", "serialNumber": "sa", "shareWithResearchAsOfDate": 10},  # exact duplicate
    {"email": "b@x", "serialNumber": "sb", "shareWithResearchAsOfDate": None},
    {"email": "c@x", "serialNumber": "sc", "shareWithResearchAsOfDate": 5},  # no readings
    {"email": "d@x", "serialNumber": "sd", "shareWithResearchAsOfDate": 7},
)
ACCEL = accel(
    ("a@x", 100, 1.0, 0.0, 0.0), ("a@x", 200, 0.0, 1.0, 0.0),
    ("b@x", 100, 0.0, 0.0, 1.0),  # b shares instant 100 with a, but b did not consent
    ("d@x", 200, -1.0, 0.0, 0.0),  # d shares instant 200 with a
    (None, 100, 0.0, 0.0, 0.0), ("zz@x", 300, 0.0, 0.0, 0.0),
)
STEPS = steps((100, "sa", 210), (200, "sa", 220), (300, "sa", 230), (100, "sb", 240),
              (200, "sd", 250), (100, None, 260), (100, "unknown", 270))


def test_customer_trusted_keeps_rows_with_research_consent():
    out = pe.customer_trusted(CUSTOMERS).collect()
    assert out["email"].to_list() == ["a@x", "a@x", "c@x", "d@x"]
    assert out.schema == pe.polars_schema(schemas.TABLES["customer_trusted"])


def test_accelerometer_trusted_semi_join_never_multiplies_rows():
    trusted = pe.customer_trusted(CUSTOMERS)  # a@x appears twice here
    out = pe.accelerometer_trusted(ACCEL, trusted).collect()
    assert sorted(out["user"].to_list()) == ["a@x", "a@x", "d@x"]
    assert out.columns == schemas.TABLES["accelerometer_trusted"].column_names


def test_customer_curated_distinct_customers_with_readings():
    trusted = pe.customer_trusted(CUSTOMERS)
    acc = pe.accelerometer_trusted(ACCEL, trusted)
    out = pe.customer_curated(trusted, acc).collect()
    assert sorted(out["email"].to_list()) == ["a@x", "d@x"]  # c has no readings; a once


def test_step_trainer_trusted_only_devices_of_curated_customers():
    trusted = pe.customer_trusted(CUSTOMERS)
    curated = pe.customer_curated(trusted, pe.accelerometer_trusted(ACCEL, trusted))
    out = pe.step_trainer_trusted(STEPS, curated).collect()
    assert sorted(zip(out["serialNumber"], out["sensorReadingTime"], strict=True)) == [
        ("sa", 100), ("sa", 200), ("sa", 300), ("sd", 200)]


def test_machine_learning_curated_joins_on_time_without_identifiers():
    trusted = pe.customer_trusted(CUSTOMERS)
    acc = pe.accelerometer_trusted(ACCEL, trusted)
    st = pe.step_trainer_trusted(STEPS, pe.customer_curated(trusted, acc))
    out = pe.machine_learning_curated(st, acc).collect()
    assert out.columns == schemas.TABLES["machine_learning_curated"].column_names
    assert not PII & set(out.columns)
    # sa@100 pairs with a's reading; sa@200 and sd@200 each pair with a's and d's readings
    # (shared timestamps); sa@300 has no consenting accelerometer reading.
    assert out.height == 1 + 2 + 2
    assert sorted(out.filter(pl.col("sensorReadingTime") == 200)["x"].to_list()) == [
        -1.0, -1.0, 0.0, 0.0]


def test_empty_inputs_give_empty_tables_with_the_schema():
    empty_c = customers().filter(pl.lit(False))
    empty_a = accel().filter(pl.lit(False))
    out = pe.machine_learning_curated(steps().filter(pl.lit(False)),
                                      pe.accelerometer_trusted(empty_a, empty_c)).collect()
    assert out.height == 0
    assert out.schema == pe.polars_schema(schemas.TABLES["machine_learning_curated"])


def test_consent_violations_are_counted_from_customer_landing():
    ok = pe.consent_violations(ACCEL.filter(pl.col("user") == "a@x"), CUSTOMERS, "user", "email")
    assert ok == {"rows_checked": 2, "violations": 0, "sample": []}
    leak = pe.consent_violations(ACCEL, CUSTOMERS, "user", "email")
    assert leak["violations"] == 3  # b@x, a null user, zz@x
    assert set(leak["sample"]) == {"b@x", None, "zz@x"}
    serial_leak = pe.consent_violations(STEPS, CUSTOMERS, "serialNumber", "serialNumber")
    assert serial_leak["violations"] == 3  # sb, null serial, unknown


def test_consent_violation_on_customer_rows_without_consent_date():
    # a row claiming a consenting email but carrying no consent date is still a violation
    forged = customers({"email": "a@x", "serialNumber": "sa", "shareWithResearchAsOfDate": None})
    assert pe.consent_violations(forged, CUSTOMERS, "email", "email")["violations"] == 1


def test_join_coverage_figures():
    trusted = pe.customer_trusted(CUSTOMERS)
    acc = pe.accelerometer_trusted(ACCEL, trusted)
    st = pe.step_trainer_trusted(STEPS, pe.customer_curated(trusted, acc))
    figures = pe.join_coverage(st, acc, CUSTOMERS)
    assert figures["step_readings"] == 4
    assert figures["matched_step_readings"] == 3
    assert figures["coverage"] == 0.75
    assert figures["joined_rows"] == 5
    assert figures["rows_per_matched_reading"] == 5 / 3
    # foreign: sa@200 with d's phone, sd@200 with a's phone
    assert figures["foreign_pairs"] == 2
