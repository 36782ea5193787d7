"""The Spark engine against the Polars reference, function by function, on hand-built input."""

from __future__ import annotations

import gzip
from pathlib import Path

import polars as pl
import pytest
from pyspark.sql import DataFrame, SparkSession

from stedi_assets import schemas
from stedi_assets.io import landing_files, landing_reader, spark_landing_reader
from stedi_assets.transforms import polars as pe
from stedi_assets.transforms import spark as se

pytest_plugins = ["stedi_assets_tests.support.spark_session"]

LINE_SCHEMA = "file string, line_number bigint, line string"


def to_polars(frame: DataFrame, schema: pl.Schema | dict) -> pl.DataFrame:
    return pl.DataFrame([r.asDict() for r in frame.collect()], schema=schema, orient="row")


def sorted_frame(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(frame.columns, nulls_last=True)


def parse_both(spark: SparkSession, table_name: str, lines: list[str]):
    table = schemas.TABLES[table_name]
    frame = pl.DataFrame({"file": ["f.json"] * len(lines),
                          "line_number": list(range(1, len(lines) + 1)), "line": lines},
                         schema={"file": pl.String, "line_number": pl.Int64, "line": pl.String})
    p_rows, p_rejects, p_blank = pe.parse_landing(frame, table)
    s_rows, s_rejects, s_blank = se.parse_landing(
        spark.createDataFrame(frame.rows(), LINE_SCHEMA), table)
    return ((p_rows, p_rejects, p_blank),
            (to_polars(s_rows, pe.polars_schema(table)),
             to_polars(s_rejects, pe.REJECT_COLUMNS), s_blank))


ACCELEROMETER_LINES = [
    '{"user":"a@x","timeStamp":1655564376361.0,"x":1,"y":"2.5","z":null}',  # alias, float epoch
    '\ufeff {"user":"b@x","timestamp":"12","x":1e-7,"y":-0.0,"z":1.5e3},  ',  # BOM, comma
    "", "   ", ",",  # blank lines
    '{"user":"c@x","timestamp":"1.0","x":"inf","y":"NaN","z":".5"}',  # numbers as text
    '{"user":"f","timestamp":9223372036854775807,"extra":{"nested":true}}',  # unknown key
    '{"user":"g","timestamp":"+7","x":"-Infinity"}',
]
BAD_ACCELEROMETER_LINES = [
    '{"user":"c@x","timestamp":1.5}',  # not whole
    '{"timestamp":5}',  # missing required key
    '{"user":{"a":1},"timestamp":5}',  # nested value
    '{"user":"d","timestamp":[1]}',
    "[1]", "nope", '{"user": "e", "timestamp": 1} x', "{'user': 'e', 'timestamp': 1}",
    '{"user":5,"timestamp":" 12"}',  # padded number text
    '{"user":"f","timestamp":9223372036854775808}',  # int64 overflow
    '{"user":"g","timestamp":true,"x":"1d","z":"0x10"}',  # Java-only number spellings
]
CUSTOMER_LINES = [
    '{"customerName":"A","email":"a@x","phone":8015551212,"birthDay":"1965-01-01",'
    '"serialNumber":"s1","registrationDate":1655564376361.0,"shareWithResearchAsOfDate":null}',
    '{"email":"b@x","phone":8015551212.0,"serialNumber":123.25,"birthDay":1e20,'
    '"lastUpdateDate":1e3,"shareWithResearchAsOfDate":1655564376361}',
    '{"email":"c@x","phone":"+1 (801) 555","serialNumber":0.1,"birthDay":true}',
]


@pytest.mark.parametrize("table_name, lines", [
    ("accelerometer_landing", ACCELEROMETER_LINES),
    ("customer_landing", CUSTOMER_LINES),
])
def test_parse_landing_rows_match_polars(spark, table_name, lines):
    (p_rows, p_rejects, p_unknown), (s_rows, s_rejects, s_unknown) = parse_both(
        spark, table_name, lines)
    blank = [r for r in p_rejects.to_dicts() if r["reason"] != "blank line"]
    assert not blank  # every reject here is a blank line
    assert s_rejects.sort("line_number").equals(p_rejects.sort("line_number"))
    assert s_unknown == p_unknown
    assert s_rows.height == len(lines) - p_rejects.height
    assert sorted_frame(s_rows).equals(sorted_frame(p_rows))


def test_parse_landing_numbers_keep_polars_spelling(spark):
    _, (rows, _, _) = parse_both(spark, "customer_landing", CUSTOMER_LINES)
    by_email = {r["email"]: r for r in rows.to_dicts()}
    assert by_email["b@x"]["phone"] == "8015551212"  # not Spark's 8.015551212E9
    assert by_email["b@x"]["birthDay"] == "100000000000000000000"
    assert by_email["c@x"]["serialNumber"] == "0.1"
    assert by_email["a@x"]["registrationDate"] == 1655564376361


def test_parse_landing_rejects_match_polars(spark):
    lines = ACCELEROMETER_LINES + BAD_ACCELEROMETER_LINES
    (p_rows, p_rejects, p_unknown), (s_rows, s_rejects, s_unknown) = parse_both(
        spark, "accelerometer_landing", lines)
    assert s_unknown == p_unknown
    assert sorted_frame(s_rows).equals(sorted_frame(p_rows))
    blanks = s_rejects.filter(pl.col("reason") == "blank line").height
    assert blanks == 3
    assert s_rejects.height == len(BAD_ACCELEROMETER_LINES) + blanks
    # Same lines, same reasons (polars decodes these line by line: see parse_landing).
    assert s_rejects.sort("line_number").equals(p_rejects.sort("line_number"))


def test_bad_number_is_quoted_as_polars_spells_it(spark):
    # Alone in its batch, Polars decodes vectorised and spells 1e-7 "0.0000001" (with invalid
    # JSON in the same batch it falls back to Python and says "1e-07"; Spark follows the former).
    (_, p_rejects, _), (_, s_rejects, _) = parse_both(
        spark, "accelerometer_landing", ['{"user":"h","timestamp":1e-7}'])
    assert s_rejects["reason"].to_list() == p_rejects["reason"].to_list() == [
        "timestamp: 0.0000001 is not a valid int64"]


def test_null_line_is_rejected_by_both(spark):
    (_, p_rejects, _), (_, s_rejects, _) = parse_both(
        spark, "step_trainer_landing", ["null"])
    assert p_rejects["line"].to_list() == s_rejects["line"].to_list() == ["null"]
    assert "not a JSON object" in s_rejects["reason"][0]


def test_empty_rows_and_rejects_have_the_declared_schema(spark):
    for table in schemas.TABLES.values():
        assert se.logical_schema(se.empty_rows(table).schema) == {
            c.name: c.type for c in table.columns}
    assert se.empty_rejects().count() == 0
    assert se.empty_rejects().columns == list(pe.REJECT_COLUMNS)


def test_reader_numbers_lines_like_polars_across_splits(spark, tmp_path: Path):
    folder = tmp_path / "dir with space"
    folder.mkdir()
    big = folder / "big.json"
    big.write_text("".join(f'{{"n": {i}, "pad": "{"x" * 50}"}}\n' if i % 7 else "\n"
                           for i in range(6000)))
    (folder / "small.json").write_text('{"n": 1}\n\n{"n": 2}')  # no final newline
    (folder / "empty.json").write_text("")
    files = sorted(str(p) for p in folder.iterdir())
    expected = pl.concat([landing_reader.read_landing_lines(f) for f in files])
    previous = spark.conf.get("spark.sql.files.maxPartitionBytes")
    spark.conf.set("spark.sql.files.maxPartitionBytes", "64k")  # several splits per file
    try:
        lines = spark_landing_reader.read_landing_lines(spark, files)
        assert lines.rdd.getNumPartitions() > 3
        actual = to_polars(lines, expected.schema)
    finally:
        spark.conf.set("spark.sql.files.maxPartitionBytes", previous)
    key = ["file", "line_number"]
    assert actual.sort(key).equals(expected.sort(key))


def test_reader_names_missing_files(spark, tmp_path: Path):
    with pytest.raises(landing_reader.LandingError, match="cannot read landing files"):
        spark_landing_reader.read_landing_lines(spark, [str(tmp_path / "absent.json")])


def test_executors_count_lines_as_the_local_engine_does(spark, tmp_path: Path):
    """Issue 15: the Glue job counts landing lines on the executors, one task per file, with
    the local engines' counter: gzip counted decompressed, a last line without a newline
    counted, blank lines counted, a file that cannot be read named in a LandingError."""
    (tmp_path / "plain.json").write_text('{"n": 1}\n\n{"n": 2}\r\n{"n": 3}')
    (tmp_path / "empty.json").write_text("")
    with gzip.open(tmp_path / "packed.json.gz", "wt") as fh:
        fh.write("".join(f'{{"n": {i}}}\n' for i in range(2500)))
    files = sorted(str(p) for p in tmp_path.iterdir())
    counted = spark_landing_reader.count_landing_lines(spark, files)
    assert counted == {f: landing_files.count_lines(f) for f in files}
    assert counted[str(tmp_path / "plain.json")] == 4
    assert counted[str(tmp_path / "packed.json.gz")] == 2500
    (tmp_path / "broken.json.gz").write_bytes(gzip.compress(b'{"n": 1}\n')[:-12] + b"x" * 12)
    with pytest.raises(landing_reader.LandingError, match="broken.json.gz: damaged gzip"):
        spark_landing_reader.count_landing_lines(spark, [*files, str(tmp_path / "broken.json.gz")])


# --- zone tables and check figures on small hand-built frames --------------------------------

def frames(spark, table_name: str, rows: list[dict]):
    table = schemas.TABLES[table_name]
    polars_frame = pl.DataFrame(rows, schema=pe.polars_schema(table), orient="row")
    spark_frame = spark.createDataFrame(polars_frame.rows(), se.spark_schema(table))
    return polars_frame.lazy(), spark_frame


def customer(email, serial, consent):
    return {"customerName": "n", "email": email, "phone": None, "birthDay": None,
            "serialNumber": serial, "registrationDate": 1, "lastUpdateDate": 2,
            "shareWithResearchAsOfDate": consent, "shareWithPublicAsOfDate": None,
            "shareWithFriendsAsOfDate": None}


@pytest.fixture
def small(spark):
    customers = [customer("a@x", "s1", 10), customer("a@x", "s1", 10),  # exact duplicate
                 customer("a@x", "s2", 11), customer("b@x", "s3", None),
                 customer("c@x", "s4", 12), customer(None, "s5", 13)]
    accel = [{"user": u, "timestamp": t, "x": 1.0, "y": None, "z": 3.0}
             for u, t in [("a@x", 100), ("a@x", 100), ("b@x", 100), ("c@x", 200),
                          (None, 300), ("z@x", 100)]]
    steps = [{"sensorReadingTime": t, "serialNumber": s, "distanceFromObject": d}
             for t, s, d in [(100, "s1", 1), (100, "s2", 2), (200, "s3", 3), (400, "s1", None),
                             (100, None, 5)]]
    return {"customer_landing": frames(spark, "customer_landing", customers),
            "accelerometer_landing": frames(spark, "accelerometer_landing", accel),
            "step_trainer_landing": frames(spark, "step_trainer_landing", steps)}


def run_zone_tables(small, i: int, ops):
    c = ops.customer_trusted(small["customer_landing"][i])
    a = ops.accelerometer_trusted(small["accelerometer_landing"][i], c)
    cc = ops.customer_curated(c, a, secret="k")
    st = ops.step_trainer_trusted(small["step_trainer_landing"][i], cc)
    ml = ops.machine_learning_curated(st, a, secret="k")
    return {"customer_trusted": c, "accelerometer_trusted": a, "customer_curated": cc,
            "step_trainer_trusted": st, "machine_learning_curated": ml}


def test_zone_tables_match_polars(small):
    expected = {k: v.collect() for k, v in run_zone_tables(small, 0, pe).items()}
    actual = run_zone_tables(small, 1, se)
    for name, frame in expected.items():
        got = to_polars(actual[name], frame.schema)
        assert actual[name].columns == schemas.TABLES[name].column_names, name
        assert sorted_frame(got).equals(sorted_frame(frame)), name
    # The semantics themselves, not just agreement: one (latest) record per customer, exact
    # duplicate readings removed, semi-joins never multiply.
    assert to_polars(actual["accelerometer_trusted"], expected[
        "accelerometer_trusted"].schema).height == 2  # a@x once (deduplicated), c@x
    assert actual["customer_curated"].count() == 2  # a@x (latest record: s2), c@x


def test_check_figures_match_polars(small):
    tables = run_zone_tables(small, 1, se)
    polars_tables = run_zone_tables(small, 0, pe)
    s_consenting = se.consenting_customers(small["customer_landing"][1], "k")
    p_consenting = pe.consenting_customers(small["customer_landing"][0], "k")
    for name, (key, consenting_key) in {
        "accelerometer_trusted": ("user", "email"),
        "step_trainer_trusted": ("serialNumber", "serialNumber"),
        "customer_trusted": ("email", "email"),
        "customer_curated": ("customerKey", "customerKey"),
    }.items():
        for source in (name, name.replace("trusted", "landing")) \
                if name in ("accelerometer_trusted", "step_trainer_trusted") else (name,):
            s_table = tables.get(source, small.get(source, (None, None))[1])
            p_table = polars_tables.get(source, small.get(source, (None, None))[0])
            s = se.consent_violations(s_table, s_consenting, key, consenting_key)
            p = pe.consent_violations(p_table, p_consenting, key, consenting_key)
            assert {k: s[k] for k in ("rows_checked", "violations")} == {
                k: p[k] for k in ("rows_checked", "violations")}, source
            assert set(s["sample"]) == set(p["sample"]), source
    landing_violations = se.consent_violations(
        small["accelerometer_landing"][1], s_consenting, "user", "email")
    assert landing_violations["violations"] == 3  # b@x (no consent), null user, z@x
    s = se.join_coverage(small["step_trainer_landing"][1], small["accelerometer_landing"][1],
                         small["customer_landing"][1])
    p = pe.join_coverage(small["step_trainer_landing"][0], small["accelerometer_landing"][0],
                         small["customer_landing"][0])
    assert s == p
    assert s["foreign_pairs"] > 0
    assert se.row_count(tables["machine_learning_curated"]) == pe.row_count(
        polars_tables["machine_learning_curated"])
    assert se.exact_duplicates(small["accelerometer_landing"][1]) == 1
    assert se.frame_logical_schema(tables["machine_learning_curated"]) == {
        c.name: c.type for c in schemas.TABLES["machine_learning_curated"].columns}


def test_join_coverage_matches_polars_whatever_the_spelling(spark):
    """Owners are matched on the identity of each spelling of the phone's user (Polars maps
    the owners onto the readings' spellings, Spark computes each reading's identity)."""
    customers = [customer(" A@x.com", "s1", 1), customer("b@X.com", "s2", 1),
                 customer("B@x.com ", "s4", None), customer(None, "s3", 1)]
    accel = [{"user": u, "timestamp": t, "x": 0.0, "y": 0.0, "z": 0.0}
             for u, t in [("a@X.COM ", 1), ("b@x.com", 1), ("B@X.COM", 2), (None, 3),
                          ("a@x.com", 4), ("\tb@x.com", 5), ("A@X.com", 5), ("c@x.com", 5)]]
    steps = [{"sensorReadingTime": t, "serialNumber": s, "distanceFromObject": 5}
             for t, s in [(1, "s1"), (2, "s2"), (3, "s1"), (4, "s3"), (5, "s4"), (1, "s1"),
                          (6, "s2"), (5, None)]]
    c, a, st = (frames(spark, "customer_landing", customers),
                frames(spark, "accelerometer_landing", accel),
                frames(spark, "step_trainer_landing", steps))
    p = pe.join_coverage(st[0], a[0], c[0])
    assert se.join_coverage(st[1], a[1], c[1]) == p
    assert (p["joined_rows"], p["foreign_pairs"], p["matched_step_readings"]) == (13, 9, 7)


def test_consent_as_of_date_matches_polars(spark):
    customers = frames(spark, "customer_landing", [customer("a@x", "s1", 150),
                                                   customer("b@x", "s2", 50)])
    readings = frames(spark, "accelerometer_landing", [
        {"user": u, "timestamp": t, "x": 0.0, "y": 0.0, "z": 0.0}
        for u, t in [("a@x", 100), ("a@x", 150), ("a@x", 200), ("b@x", 40), ("b@x", 60)]])
    p = pe.accelerometer_trusted(readings[0], pe.customer_trusted(customers[0]),
                                 consent_as_of_date=True).collect()
    s = se.accelerometer_trusted(readings[1], se.customer_trusted(customers[1]),
                                 consent_as_of_date=True)
    got = to_polars(s, p.schema)
    assert sorted_frame(got).equals(sorted_frame(p))
    assert sorted(got.select("user", "timestamp").iter_rows()) == [
        ("a@x", 150), ("a@x", 200), ("b@x", 60)]
    for ops, table, landing in ((se, readings[1], customers[1]),
                                (pe, readings[0], customers[0])):
        consenting = ops.consenting_customers(landing, "k")
        timed = ops.consent_violations(table, consenting, "user", "email",
                                       time_column="timestamp")
        assert timed["violations"] == 2  # a@x at 100 and b@x at 40 precede their consent
