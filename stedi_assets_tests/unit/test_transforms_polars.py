"""Each Polars transform on small hand-built frames: nulls, duplicate emails, shared times."""

import hashlib
import hmac

import polars as pl
import pytest

from stedi_assets import schemas
from stedi_assets.transforms import polars as pe
from stedi_assets.transforms.polars import landing as polars_landing
from stedi_assets.transforms.pseudonyms import customer_key

PII = {"email", "user", "customerName", "phone", "birthDay"}
SECRET = "unit-test-secret"


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


def test_customer_trusted_keeps_one_consenting_record_per_customer():
    out = pe.customer_trusted(CUSTOMERS).collect()
    assert sorted(out["email"].to_list()) == ["a@x", "c@x", "d@x"]
    assert out.schema == pe.polars_schema(schemas.TABLES["customer_trusted"])


def test_latest_record_decides_consent_and_withdrawal():
    history = customers(
        {"email": "a@x", "lastUpdateDate": 1, "shareWithResearchAsOfDate": None},
        {"email": "a@x", "lastUpdateDate": 5, "shareWithResearchAsOfDate": 4},  # consents later
        {"email": "b@x", "lastUpdateDate": 5, "shareWithResearchAsOfDate": 4},
        {"email": "b@x", "lastUpdateDate": 9, "shareWithResearchAsOfDate": None},  # withdraws
        {"email": "c@x", "lastUpdateDate": 3, "shareWithResearchAsOfDate": 2, "phone": "2"},
        {"email": "c@x", "lastUpdateDate": 3, "shareWithResearchAsOfDate": 2, "phone": "1"},
        {"email": "e@x", "lastUpdateDate": 3, "shareWithResearchAsOfDate": None},
        {"email": "e@x", "lastUpdateDate": 3, "shareWithResearchAsOfDate": 2},  # tie: withdrawn
        {"email": "d@x", "lastUpdateDate": 8, "shareWithResearchAsOfDate": 1},
        # issue 11 item 2: an undated record without consent is the newest (d@x withdraws) ...
        {"email": "d@x", "lastUpdateDate": None, "shareWithResearchAsOfDate": None},
        # ... an undated record with consent the oldest (f@x's dated withdrawal stands)
        {"email": "f@x", "lastUpdateDate": 2, "shareWithResearchAsOfDate": None},
        {"email": "f@x", "lastUpdateDate": None, "shareWithResearchAsOfDate": 1},
        {"email": "g@x", "lastUpdateDate": None, "shareWithResearchAsOfDate": 1},
    )
    out = pe.customer_trusted(history).collect()
    assert sorted(out["email"].to_list()) == ["a@x", "c@x", "g@x"]
    # a tie never depends on landing order: greatest other values win ...
    assert out.filter(pl.col("email") == "c@x")["phone"].item() == "2"
    reversed_order = pe.customer_trusted(history.reverse()).collect()
    assert reversed_order.sort("email").equals(out.sort("email"))
    # ... and a record without consent wins a tie (e@x is out)
    consenting = pe.consenting_customers(history, SECRET).collect()
    assert sorted(consenting["email"]) == ["a@x", "c@x", "g@x"]


def test_consent_as_of_date_drops_readings_before_consent():
    trusted = pe.customer_trusted(CUSTOMERS)  # a consented at 10, d at 7
    early = accel(("a@x", 5, 0.0, 0.0, 0.0), ("a@x", 10, 1.0, 0.0, 0.0), ("d@x", 6, 0, 0, 0))
    kept = pe.accelerometer_trusted(early, trusted, consent_as_of_date=True).collect()
    assert kept.to_dicts() == [{"user": "a@x", "timestamp": 10, "x": 1.0, "y": 0.0, "z": 0.0}]
    everything = pe.accelerometer_trusted(early, trusted).collect()
    assert everything.height == 3


def test_exact_duplicate_readings_are_removed_and_counted():
    trusted = pe.customer_trusted(CUSTOMERS)
    doubled = pl.concat([ACCEL, ACCEL.head(2)])
    kept = pe.accelerometer_trusted(doubled, trusted, deduplicate=False)
    assert pe.exact_duplicates(kept) == 2
    assert pe.accelerometer_trusted(doubled, trusted).collect().height == 3


def test_accelerometer_trusted_semi_join_never_multiplies_rows():
    trusted = pe.customer_trusted(CUSTOMERS)  # a@x appears twice here
    out = pe.accelerometer_trusted(ACCEL, trusted).collect()
    assert sorted(out["user"].to_list()) == ["a@x", "a@x", "d@x"]
    assert out.columns == schemas.TABLES["accelerometer_trusted"].column_names


def test_customer_curated_pseudonymous_customers_with_readings():
    trusted = pe.customer_trusted(CUSTOMERS)
    acc = pe.accelerometer_trusted(ACCEL, trusted)
    out = pe.customer_curated(trusted, acc, secret=SECRET).collect()
    assert out.columns == schemas.TABLES["customer_curated"].column_names
    assert not PII & set(out.columns)
    # c has no readings; a once; the key is HMAC-SHA256(secret, email)
    expected = {hmac.new(SECRET.encode(), e.encode(), hashlib.sha256).hexdigest()
                for e in ("a@x", "d@x")}
    assert set(out["customerKey"]) == expected and out.height == 2
    other = pe.customer_curated(trusted, acc, secret="another").collect()
    assert not set(other["customerKey"]) & expected


def test_step_trainer_trusted_only_devices_of_curated_customers():
    trusted = pe.customer_trusted(CUSTOMERS)
    curated = pe.customer_curated(trusted, pe.accelerometer_trusted(ACCEL, trusted),
                                  secret=SECRET)
    out = pe.step_trainer_trusted(STEPS, curated).collect()
    assert sorted(zip(out["serialNumber"], out["sensorReadingTime"], strict=True)) == [
        ("sa", 100), ("sa", 200), ("sa", 300), ("sd", 200)]


def test_machine_learning_curated_joins_on_time_without_identifiers():
    trusted = pe.customer_trusted(CUSTOMERS)
    acc = pe.accelerometer_trusted(ACCEL, trusted)
    st = pe.step_trainer_trusted(STEPS, pe.customer_curated(trusted, acc, secret=SECRET))
    out = pe.machine_learning_curated(st, acc, secret=SECRET).collect()
    assert out.columns == schemas.TABLES["machine_learning_curated"].column_names
    assert not PII & set(out.columns)
    # sa@100 pairs with a's reading; sa@200 and sd@200 each pair with a's and d's readings
    # (shared timestamps); sa@300 has no consenting accelerometer reading.
    assert out.height == 1 + 2 + 2
    assert sorted(out.filter(pl.col("sensorReadingTime") == 200)["x"].to_list()) == [
        -1.0, -1.0, 0.0, 0.0]
    # the phone's owner appears only as a key: sa@200 paired with d's phone carries d's key
    d_key = customer_key("d@x", SECRET)
    assert out.filter((pl.col("serialNumber") == "sa") & (pl.col("x") == -1.0))[
        "customerKey"].to_list() == [d_key]


def test_empty_inputs_give_empty_tables_with_the_schema():
    empty_c = customers().filter(pl.lit(False))
    empty_a = accel().filter(pl.lit(False))
    out = pe.machine_learning_curated(steps().filter(pl.lit(False)),
                                      pe.accelerometer_trusted(empty_a, empty_c),
                                      secret=SECRET).collect()
    assert out.height == 0
    assert out.schema == pe.polars_schema(schemas.TABLES["machine_learning_curated"])


CONSENTING = pe.consenting_customers(CUSTOMERS, SECRET)


def test_consent_violations_are_counted_from_customer_landing():
    ok = pe.consent_violations(ACCEL.filter(pl.col("user") == "a@x"), CONSENTING, "user",
                               "email")
    assert ok == {"rows_checked": 2, "violations": 0, "sample": []}
    leak = pe.consent_violations(ACCEL, CONSENTING, "user", "email")
    assert leak["violations"] == 3  # b@x, a null user, zz@x
    assert set(leak["sample"]) == {"b@x", None, "zz@x"}
    serial_leak = pe.consent_violations(STEPS, CONSENTING, "serialNumber", "serialNumber")
    assert serial_leak["violations"] == 3  # sb, null serial, unknown
    early = accel(("a@x", 9, 0.0, 0.0, 0.0), ("a@x", 10, 0.0, 0.0, 0.0))
    assert pe.consent_violations(early, CONSENTING, "user", "email")["violations"] == 0
    timed = pe.consent_violations(early, CONSENTING, "user", "email", time_column="timestamp")
    assert timed["violations"] == 1  # the reading at 9 precedes a's consent at 10


def test_consent_violation_on_customer_rows_without_consent_date():
    # a row claiming a consenting email but carrying no consent date is still a violation
    forged = customers({"email": "a@x", "serialNumber": "sa", "shareWithResearchAsOfDate": None})
    assert pe.consent_violations(forged, CONSENTING, "email", "email")["violations"] == 1


def test_pseudonymous_keys_are_checked_against_consenting_customers():
    keys = pl.LazyFrame({"customerKey": [customer_key("a@x", SECRET),
                                         customer_key("b@x", SECRET)]})
    figures = pe.consent_violations(keys, CONSENTING, "customerKey", "customerKey")
    assert figures["violations"] == 1  # b@x never consented


def test_join_coverage_figures():
    trusted = pe.customer_trusted(CUSTOMERS)
    acc = pe.accelerometer_trusted(ACCEL, trusted)
    st = pe.step_trainer_trusted(STEPS, pe.customer_curated(trusted, acc, secret=SECRET))
    figures = pe.join_coverage(st, acc, CUSTOMERS)
    assert figures["step_readings"] == 4
    assert figures["matched_step_readings"] == 3
    assert figures["coverage"] == 0.75
    assert figures["joined_rows"] == 5
    assert figures["rows_per_matched_reading"] == 5 / 3
    # foreign: sa@200 with d's phone, sd@200 with a's phone
    assert figures["foreign_pairs"] == 2


def test_join_coverage_pairs_a_device_with_every_spelling_of_its_owner():
    """A pair is foreign unless the phone's user is, by identity (trimmed, lower-cased), an
    owner of the device: readings keep the user as landed, so the figures must not depend on
    how it is spelled. Counted here in plain Python from identity.identity."""
    from stedi_assets.transforms.identity import identity

    owners_landed = customers(
        {"email": " A@x.com", "serialNumber": "s1"}, {"email": "b@X.com", "serialNumber": "s2"},
        {"email": "B@x.com ", "serialNumber": "s4"}, {"email": None, "serialNumber": "s3"})
    step_rows = [(1, "s1", 5), (2, "s2", 5), (3, "s1", 5), (4, "s3", 5), (5, "s4", 5),
                 (1, "s1", 6)]
    readings = [("a@X.COM ", 1), ("b@x.com", 1), ("B@X.COM", 2), (None, 3), ("a@x.com", 4),
                ("\tb@x.com", 5), ("A@X.com", 5), ("c@x.com", 5), ("a@x.com", 9)]
    figures = pe.join_coverage(steps(*step_rows), accel(*[(u, t, 0.0, 0.0, 0.0)
                                                          for u, t in readings]),
                               owners_landed)
    owned = {(identity(e), s) for e, s in [(" A@x.com", "s1"), ("b@X.com", "s2"),
                                           ("B@x.com ", "s4")]}
    pairs = [(s, u) for t, s, _ in step_rows for u, rt in readings if rt == t]
    foreign = sum(u is None or (identity(u), s) not in owned for s, u in pairs)
    assert figures["joined_rows"] == len(pairs) == 10
    assert figures["foreign_pairs"] == foreign == 6
    assert figures["matched_step_readings"] == 6 and figures["step_readings"] == 6


def test_without_exact_duplicates_keeps_first_copies_in_place():
    """The bounded-memory dedup gives unique(maintain_order=True), with the count removed:
    nulls, -0.0/0.0 and NaN compare as unique() compares them."""
    nan = float("nan")
    rows = [("a", 1, 0.0), ("b", 2, 1.0), ("a", 1, -0.0), (None, 3, nan), ("c", None, None),
            (None, 3, nan), ("b", 2, 1.0), ("c", None, None), ("a", 1, 0.5), ("b", 2, 1.0)]
    frame = pl.LazyFrame(rows, schema={"u": pl.String, "t": pl.Int64, "x": pl.Float64},
                         orient="row")
    kept, removed = pe.without_exact_duplicates(frame)
    expected = frame.collect().unique(maintain_order=True)
    assert kept.collect().equals(expected)
    assert removed == len(rows) - expected.height == pe.exact_duplicates(frame) == 5
    distinct = frame.unique(maintain_order=True)
    assert pe.without_exact_duplicates(distinct)[1] == 0
    assert pe.without_exact_duplicates(frame.clear())[0].collect().height == 0


FLOAT_TOKENS = ["1", "1.0", "-0.0", "0", "1e3", "1E-7", "0.1", "-2.5e-310", "5e-324",
                "1.7976931348623157e308", "9007199254740993", "12345678901234567890",
                "-9223372036854775809", "123456789012345678901234567890", "null",
                "0.30000000000000004", "1655564376361.0"]


def test_numbers_decoded_as_numbers_equal_numbers_decoded_as_text():
    """parse_landing decodes float and int64 columns straight to numbers (when no line holds
    true or false): every JSON number must give the value the text path gives (an int64 one
    only when every int64 value is whole and below 2**53, else the batch is decoded as text),
    and every other JSON value must make that decoding raise, so the text path decides."""
    table = schemas.TABLES["accelerometer_landing"]
    int64 = frozenset({schemas.FLOAT64, schemas.INT64})

    def typed(lines: pl.DataFrame, as_numbers: frozenset[str]) -> pl.DataFrame:
        decoded = polars_landing._decode_vectorised(lines, table, as_numbers)
        return decoded.select(polars_landing._typed(c).alias(c.name) for c in table.columns)

    lines = pl.DataFrame({"line": [f'{{"user":"a","timestamp":1,"x":{t},"y":{t},"z":0}}'
                                   for t in FLOAT_TOKENS]})
    as_text = typed(lines, frozenset())
    assert typed(lines, frozenset({schemas.FLOAT64})).equals(as_text)
    assert typed(lines, int64).equals(as_text)  # timestamps all 1
    for token in FLOAT_TOKENS:
        line = pl.DataFrame({"line": [f'{{"user":"a","timeStamp":{token},"x":1}}']})
        decoded = polars_landing._decode_vectorised(line, table, int64)
        text = typed(line, frozenset())
        if polars_landing._numbers_exact(decoded, table):
            assert typed(line, int64).equals(text), token
            assert text["timestamp"].null_count() == (token == "null"), token
        else:  # a fraction or a number too large for a float64 to hold exactly
            assert abs(float(token)) >= 2**53 or float(token) % 1, token
    for other in ['"1.5"', '"abc"', "[1]", '{"a": 1}', '""']:
        for fields in (f'"timestamp":1,"x":{other}', f'"timestamp":{other}'):
            bad = pl.DataFrame({"line": [f'{{"user":"a",{fields}}}']})
            with pytest.raises(pl.exceptions.PolarsError):
                polars_landing._decode_vectorised(bad, table, int64)
    # end to end: a string holding a number still lands, true is still rejected
    raw = pl.DataFrame({"file": "f", "line_number": [1, 2, 3], "line": [
        '{"user":"a","timestamp":1,"x":"1.5"}', '{"user":"a","timestamp":2,"x":true}',
        '{"user":"a","timestamp":3,"x":2.5}']})
    rows, rejects, _ = pe.parse_landing(raw, table)
    assert rows["x"].to_list() == [1.5, 2.5]
    assert rejects["reason"].to_list() == ["x: true is not a valid float64"]
    # int64 end to end: whole floats land, a fraction is named as written, large ints exact
    raw = pl.DataFrame({"file": "f", "line_number": [1, 2, 3, 4], "line": [
        '{"user":"a","timestamp":1655564376361.0,"x":1}', '{"user":"a","timestamp":2.50}',
        '{"user":"a","timeStamp":9007199254740993}', '{"user":"a","timestamp":-0}']})
    rows, rejects, _ = pe.parse_landing(raw, table)
    assert rows["timestamp"].to_list() == [1655564376361, 9007199254740993, 0]
    assert rejects["reason"].to_list() == ["timestamp: 2.5 is not a valid int64"]
