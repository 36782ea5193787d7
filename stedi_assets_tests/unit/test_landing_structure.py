"""Repeated keys and deep nesting: the same line gives the same result on both engines,
whatever else is in its batch (issue 11, items 1 and 5)."""

from __future__ import annotations

import re

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from stedi_assets import schemas
from stedi_assets.transforms import polars as pe
from stedi_assets.transforms import spark as se
from stedi_assets.transforms.json_checks import TOO_DEEP, line_checks
from stedi_assets.transforms.polars import landing as polars_landing

pytest_plugins = ["stedi_assets_tests.support.spark_session"]

LINE_SCHEMA = "file string, line_number bigint, line string"
#: a line neither decoder reads: makes Polars decode the whole batch line by line
BROKEN = '{"email": oops'


def deep(levels: int, key: str = "extra") -> str:
    return f'{{"email":"deep@x","serialNumber":"s","{key}":' + "[" * levels + "]" * levels + "}"


#: (customer line, reason it is quarantined with, or None when it lands)
CASES = [
    # the line: vectorised decoding kept the first value, line by line the last
    ('{"email":"leo@x.com","serialNumber":"S1","lastUpdateDate":1,'
     '"shareWithResearchAsOfDate":1,"shareWithResearchAsOfDate":null}',
     "duplicate key 'shareWithResearchAsOfDate'"),
    ('{"email":"a@x","shareWithResearchAsOfDate":null,"serialNumber":"s",'
     '"shareWithResearchAsOfDate":5}', "duplicate key 'shareWithResearchAsOfDate'"),
    ('{"email":"b@x","email":"c@x","serialNumber":"s"}', "duplicate key 'email'"),
    # an unknown key repeated; the first key met a second time is named
    ('{"email":"d@x","z":1,"y":2,"y":3,"z":4,"serialNumber":"s"}', "duplicate key 'y'"),
    # the same key, written with an escape and with blanks before the colon
    ('{"email":"e@x","serialNumber":"s","\\u0065mail" : "f@x"}', "duplicate key 'email'"),
    # values that spell key names, null values, and a null repeat of a kept value
    ('{"q":"email","q":"serialNumber","email":"l@x","serialNumber":"s"}', "duplicate key 'q'"),
    ('{"email":"m@x","serialNumber":"s","a":null,"a":null}', "duplicate key 'a'"),
    ('{"email":"n@x","serialNumber":"s","lastUpdateDate":1,"lastUpdateDate":null}',
     "duplicate key 'lastUpdateDate'"),
    ('{"email":"o@x","serialNumber":"s","note":"a:b:c","lastUpdateDate":null}', None),
    # a repeated key outranks the line's other problems
    ('{"email":"g@x","serialNumber":{"n":1},"serialNumber":"s"}', "duplicate key 'serialNumber'"),
    # not top-level repeats: a key name inside a string value or inside nested objects
    ('{"email":"h@x","serialNumber":"\\"email\\": 1, email:","note":"email"}', None),
    ('{"email":"i@x","serialNumber":"s","a":{"email":1,"email":2},"b":{"email":3}}', None),
    ('{"email":"j@x","serialNumber":"s","list":[{"k":1},{"k":2}]}', None),
    # nesting: the limit lands, deeper is quarantined wherever it is, even 10,000 levels
    (deep(99), None),
    (deep(100), TOO_DEEP),
    (deep(150), TOO_DEEP),
    (deep(10_000), TOO_DEEP),
    (deep(10_000, key="serialNumber"), TOO_DEEP),
    ("[" * 10_000, TOO_DEEP),  # not even valid JSON
    ('{"email":"k@x","serialNumber":"' + "[" * 500 + '"}', None),  # brackets in a string
    # numbers in text columns are spelled alike in a clean and in a broken batch
    ('{"email":"p@x","serialNumber":12.50,"phone":8015551212.0,"birthDay":-0.0,'
     '"customerName":1e-7}', None),
    ('{"email":"q@x","serialNumber":"s","lastUpdateDate":2.50}',
     "lastUpdateDate: 2.5 is not a valid int64"),
]
#: Polars only: Spark spells numbers beyond decimal(38, 18) in Java's way (1.0E300)
POLARS_CASES = [
    ('{"email":"r@x","serialNumber":1e300,"customerName":-2.5e-310}', None),
    ('{"email":"s@x","serialNumber":"s","lastUpdateDate":1e300}',
     "lastUpdateDate: 1" + "0" * 300 + " is not a valid int64"),
]


def _frame(lines: list[str]) -> pl.DataFrame:
    return pl.DataFrame({"file": ["f.json"] * len(lines),
                         "line_number": list(range(1, len(lines) + 1)), "line": lines},
                        schema={"file": pl.String, "line_number": pl.Int64, "line": pl.String})


def _parse_polars(lines: list[str]):
    rows, rejects, _ = pe.parse_landing(_frame(lines), schemas.TABLES["customer_landing"])
    return rows, rejects.sort("line_number")


def _parse_spark(spark, lines: list[str]):
    table = schemas.TABLES["customer_landing"]
    rows, rejects, _ = se.parse_landing(
        spark.createDataFrame(_frame(lines).rows(), LINE_SCHEMA), table)
    return (pl.DataFrame([r.asDict() for r in rows.collect()], schema=pe.polars_schema(table),
                         orient="row"),
            pl.DataFrame([r.asDict() for r in rejects.collect()], schema=pe.REJECT_COLUMNS,
                         orient="row").sort("line_number"))


def _reasons(rejects: pl.DataFrame) -> dict[int, str]:
    return dict(zip(rejects["line_number"], rejects["reason"], strict=True))


def _sorted(rows: pl.DataFrame) -> pl.DataFrame:
    return rows.sort(rows.columns, nulls_last=True)


def test_each_line_gives_the_same_result_in_a_clean_and_in_a_broken_batch():
    for line, reason in CASES + POLARS_CASES:
        alone_rows, alone_rejects = _parse_polars([line])
        with_broken_rows, with_broken_rejects = _parse_polars([line, BROKEN])
        assert _reasons(alone_rejects).get(1) == reason, line[:80]
        assert _reasons(with_broken_rejects).get(1) == reason, line[:80]
        assert _reasons(with_broken_rejects)[2].startswith("invalid JSON")
        assert alone_rows.equals(with_broken_rows), line[:80]
        assert alone_rows.height == (reason is None)


def test_whole_batches_match_on_both_engines(spark):
    lines = [line for line, _ in CASES]
    for batch in (lines, [*lines, BROKEN]):
        p_rows, p_rejects = _parse_polars(batch)
        s_rows, s_rejects = _parse_spark(spark, batch)
        assert s_rejects.equals(p_rejects)
        assert _sorted(s_rows).equals(_sorted(p_rows))
    expected = {n: r for n, (_, r) in enumerate(CASES, start=1) if r}
    assert _reasons(p_rejects) == {**expected, len(batch): p_rejects["reason"][-1]}
    # the line never lands, so never counts as consenting
    assert "leo@x.com" not in p_rows["email"].to_list()


def test_every_source_quarantines_repeated_keys_on_both_engines(spark):
    lines = {
        "accelerometer_landing": '{"user":"a@x","timestamp":1,"x":1,"x":2}',
        "step_trainer_landing": '{"sensorReadingTime":1,"serialNumber":"s",'
                                '"sensorReadingTime":2}',
    }
    for table_name, line in lines.items():
        table = schemas.TABLES[table_name]
        _, p_rejects, _ = pe.parse_landing(_frame([line]), table)
        _, s_rejects, _ = se.parse_landing(
            spark.createDataFrame(_frame([line]).rows(), LINE_SCHEMA), table)
        reason = "duplicate key 'x'" if "x" in line else "duplicate key 'sensorReadingTime'"
        assert p_rejects["reason"].to_list() == [reason]
        assert [r["reason"] for r in s_rejects.collect()] == [reason]


def test_exact_checks():
    checks = line_checks()
    assert checks.duplicate_key('{"b":1,"a":{"a":1,"a":2},"a":3,"b":2}') == "duplicate key 'a'"
    assert checks.duplicate_key('[{"a":1,"a":2}]') is None  # not an object: another reason
    assert checks.too_deep("[" * 101) and not checks.too_deep("[" * 100)
    assert not checks.too_deep('"' + "[" * 200 + '"')
    assert checks.rejected_reason("[" * 100_000) == TOO_DEEP
    assert checks.rejected_reason('{"a":1,"a":2}') == "duplicate key 'a'"
    assert checks.rejected_reason('{"a":1}') is None


#: JSON values for the number columns: whole and fractional, exponents, beyond 2**53 and
#: int64, negative zero, and the values that must send a batch back to text (strings, true)
NUMBER_TOKENS = ["1655564376361", "1655564376361.0", "1.6555643763610E12", "2.5", "-0", "0",
                 "9007199254740993", "9007199254740992", "9223372036854775808", "1e300",
                 "-12", "null", '"7"', '"7.5"', "true", "false", "[1]", '" 12 "']
_SPELLINGS = {"accelerometer_landing": ['"user":"a@x"', '"user":7', '"user":1e3',
                                        "timestamp", "timeStamp", "x", "y", "z"],
              "step_trainer_landing": ['"serialNumber":"s"', '"serialNumber":12',
                                       '"serialNumber":8015551212.0', '"serialNumber":-0.0',
                                       "sensorReadingTime", "distanceFromObject"]}


@st.composite
def _number_lines(draw, table_name: str) -> str:
    spellings = _SPELLINGS[table_name]
    fields = [f for f in spellings if f.startswith('"')]
    fields = [draw(st.sampled_from(fields))] if draw(st.booleans()) else []
    for key in spellings:
        if not key.startswith('"') and draw(st.integers(0, 4)):  # mostly present
            # mostly clean numbers, so most batches take the numbers path
            clean = draw(st.booleans()) or draw(st.booleans())
            token = draw(st.sampled_from(NUMBER_TOKENS[:2] if clean else NUMBER_TOKENS))
            fields.append(f'"{key}":{token}')
    if draw(st.booleans()):
        fields.append('"extra":1')
    draw(st.randoms()).shuffle(fields)
    return "{" + ",".join(fields) + "}"


@settings(max_examples=150, deadline=None)
@given(data=st.data(), table_name=st.sampled_from(sorted(_SPELLINGS)))
def test_batches_decoded_as_numbers_give_what_the_line_by_line_path_gives(data, table_name):
    """Issue 15: a batch decodes its number columns straight to numbers when every line
    allows it. Each line must give the row or the reject it gives line by line (the batch
    with a broken line appended), whatever else its batch holds."""
    table = schemas.TABLES[table_name]
    lines = data.draw(st.lists(_number_lines(table_name), min_size=1, max_size=8))
    fast_rows, fast_rejects, fast_keys = pe.parse_landing(_frame(lines), table)
    slow_rows, slow_rejects, slow_keys = pe.parse_landing(_frame([*lines, BROKEN]), table)
    assert fast_rows.equals(slow_rows)
    assert fast_rejects.equals(slow_rejects.filter(pl.col("line_number") <= len(lines)))
    assert fast_keys == slow_keys
    # a big batch holding a bad line is decoded slice by slice: only the bad line's slice
    # goes line by line, the others as text, and the whole gives the same
    sliced = polars_landing._SLICE_LINES
    polars_landing._SLICE_LINES = 2
    try:
        batch = _frame([*lines, BROKEN, *lines])
        assert batch.height > polars_landing._SLICE_LINES
        in_slices = pe.parse_landing(batch, table)
    finally:
        polars_landing._SLICE_LINES = sliced
    whole = pe.parse_landing(batch, table)  # one slice: line by line
    assert in_slices[0].equals(whole[0]) and in_slices[1].equals(whole[1])
    assert in_slices[2] == whole[2]


_MEMBERS = ['"email":"a@x"', '"email": null', '"serialNumber":"s"', '"serialNumber" : null',
            '"lastUpdateDate":1', '"phone":"a:b"', '"customerName":"\\"email\\": x"',
            '"extra":null', '"extra":1', '"app": "v:1"', '"nested":{"email":1,"k":null}',
            '"birthDay":{"inner":1}', '"\\u0065xtra":2', '"list":[{"q":null}]']


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.sampled_from(_MEMBERS), max_size=6, unique=True),
                min_size=1, max_size=6))
def test_unknown_keys_pre_filters_miss_no_line(members):
    """The unknown-key count skips lines its colon pre-filters clear (null values, known keys
    only): it must equal the exact count over every landed line."""
    table = schemas.TABLES["customer_landing"]
    lines = ["{" + ",".join(m) + "}" for m in members]
    rows, rejects, unknown = pe.parse_landing(_frame(lines), table)
    landed = [line for n, line in enumerate(lines, start=1)
              if n not in set(rejects["line_number"])]
    exact: dict[str, int] = {}
    known = {key for c in table.columns for key in (c.name, *c.aliases)}
    for line in landed:
        for key in set(re.findall(r'"([A-Za-z_][A-Za-z0-9_]*)"\s*:', line)) - known:
            exact[key] = exact.get(key, 0) + 1
    assert unknown == exact
