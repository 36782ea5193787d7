"""Landing on Spark: JSON lines -> typed rows + rejects, by the rules of the Polars parser
(transforms/polars/landing.py, the reference semantics). No Dagster, no paths, no environment
variables here.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from stedi_assets import schemas
from stedi_assets.schemas import Table
from stedi_assets.transforms.json_checks import MAX_DEPTH, line_checks
from stedi_assets.transforms.spark.columns import SPARK_TYPES

_WHITESPACE = " \t\r\n\ufeff"  # the BOM counts as whitespace, as in the Polars parser
_CORRUPT = "_corrupt_record"
# What Polars' strict=False casts accept (checked against polars 2.1): digits with a sign for
# int64; decimal/exponent forms and inf/infinity/nan (any case) for float64. Spark's own casts
# are laxer (they trim blanks, truncate "1.5" to 1, accept "1d" and hex), so they only run on
# text made of the characters Polars accepts (checked with translate: regexes cost too much).
_FLOAT_SPECIALS = ["inf", "+inf", "-inf", "infinity", "+infinity", "-infinity", "nan"]
_INT64_LIMIT = 2.0**63



def _only_chars(text: Column, chars: str, rest: tuple[str, ...] = ("",)) -> Column:
    """`text` is made of `chars` only (what is left after removing them is in `rest`)."""
    return F.translate(text, chars, "").isin(*rest)


def _int_text(text: Column) -> Column:
    return _only_chars(text, "0123456789", ("", "+", "-")) & (F.length(text) > 0)


def _float_text(text: Column) -> Column:
    return _only_chars(text, "0123456789+-.eE") | F.lower(text).isin(*_FLOAT_SPECIALS)



def _json_keys(table: Table) -> list[str]:
    return [key for c in table.columns for key in (c.name, *c.aliases)]


def _text_columns(table: Table, column: schemas.Column) -> list[str]:
    """The decoded text columns of a table column and its aliases. They are named by key
    position: Spark resolves names case-insensitively, so `timestamp`/`timeStamp` collide."""
    keys = _json_keys(table)
    return [f"_text_{keys.index(k)}" for k in (column.name, *column.aliases)]


def _key_then(key: str, pattern: str) -> str:
    """Regex: the line holds `"key":` followed by `pattern` (tells a JSON number or a nested
    value from a string that merely looks like one, since from_json hands both back as text)."""
    return f'"{key}"\\s*:\\s*{pattern}'


def _polars_number_text(sql: str) -> Column:
    """The text of a JSON number token (SQL expression `sql`, as from_json hands it back)
    spelled as Polars' json_decode spells it: 8015551212.0 -> "8015551212", 1e-7 ->
    "0.0000001", 1e400 -> "inf". Spark hands back Java's spelling ("8.015551212E9",
    "1.0E-7", "\"Infinity\""). Costly: only evaluated where the spelling is kept."""
    text = F.expr(sql)
    double = F.expr(f"try_cast({sql} as double)")
    plain = []
    for scale in (18, 0):
        decimal = F.expr(f"try_cast({sql} as decimal(38,{scale}))")
        spelled = F.regexp_replace(F.format_number(decimal, scale), ",", "")
        if scale:
            spelled = F.regexp_replace(F.regexp_replace(spelled, "0+$", ""), "\\.$", "")
        plain.append(F.when(decimal.cast("double") == double, spelled))
    return F.coalesce(
        F.when(_int_text(text), text),
        F.when(text == "-0.0", F.lit("-0")),
        _infinity(text),
        *plain,
        text,
    )


def _infinity(text: Column) -> Column:
    """from_json spells an overflowing number (1e400) "Infinity" in quotes; Python says inf."""
    return F.when(text == '"Infinity"', F.lit("inf")).when(text == '"-Infinity"', F.lit("-inf"))


def _invalid_json_reason_udf() -> Any:
    """A UDF saying why a line Spark could not read as one JSON object is rejected, in
    the Polars parser's words (json_checks: too deep, Python's json message, not an object, a
    repeated key). Built in a function so cloudpickle ships it by value: executors need no
    `stedi_assets` install."""
    rejected_reason = line_checks().rejected_reason

    def reason(text: str | None) -> str:
        return rejected_reason(text) or "invalid JSON for Spark's JSON reader"

    return F.udf(reason, T.StringType())


def _structure_problem_udf() -> Any:
    """A UDF giving json_checks' reason for a line Spark read as a JSON object but that is too
    deeply nested or repeats a top-level key; null for anything else (and for a null input,
    which the pre-filters pass for every line they clear). Shipped by value, as above."""
    checks = line_checks()
    too_deep, duplicate_key, rejected_reason = (checks.too_deep, checks.duplicate_key,
                                                checks.rejected_reason)

    def problem(text: str | None) -> str | None:
        if text is None:
            return None
        if too_deep(text):
            return rejected_reason(text)
        try:
            return duplicate_key(text)
        except ValueError:  # Jackson accepted what Python does not: no structure verdict
            return None

    return F.udf(problem, T.StringType())


def _count_chars(text: Column, chars: str) -> Column:
    return F.length(text) - F.length(F.translate(text, chars, ""))


def _count_text(text: Column, literal: str) -> Column:
    """How many times `literal` occurs in `text` (no regex: a length difference)."""
    return ((F.length(text) - F.length(F.replace(text, F.lit(literal), F.lit(""))))
            / len(literal)).cast("int")


def _computed_once(frame: DataFrame) -> DataFrame:
    """Stop the optimizer from inlining the columns computed so far into every later use
    (it would run from_json and the regexes hundreds of times per line): a Generate node is
    a barrier that projections and filters are not pushed through."""
    return frame.select(F.inline(F.array(F.struct(*(F.col(f"`{c}`") for c in frame.columns)))))


def _decode(content: DataFrame, table: Table) -> DataFrame:
    """from_json every line into one text column per key (`_text_<i>`, by key position),
    plus `_bad_json` and `_decode_reason`. Text columns keep Polars' spelling of numbers; a
    nested value is null with a reason, as in the Polars parser's line-by-line path. Each stage
    is one select: chains of withColumn re-analyse the growing plan every time."""
    keys = _json_keys(table)
    struct = T.StructType(
        [T.StructField(k, T.StringType()) for k in keys] + [T.StructField(_CORRUPT, T.StringType())]
    )
    options = {"columnNameOfCorruptRecord": _CORRUPT, "allowSingleQuotes": "false",
               "allowNonNumericNumbers": "false", "mode": "PERMISSIVE"}
    # Fields are renamed by position: `timestamp` and its alias `timeStamp` differ only in
    # case, which Spark's case-insensitive resolver would call ambiguous.
    positional = ",".join(f"k{i}:string" for i in range(len(keys) + 1))
    parsed = _computed_once(content.select(
        "*", F.from_json("line", struct, options).cast(f"struct<{positional}>").alias("_json")
    ))
    # Spark stops at the end of the first value and ignores trailing text; Polars does not.
    bad_json = F.col(f"_json.k{len(keys)}").isNotNull() | ~F.col("line").endswith("}")
    raws = parsed.select(
        *content.columns, bad_json.alias("_bad_json"),
        *(F.when(~bad_json, F.col(f"_json.k{i}")).alias(f"_raw_{i}") for i in range(len(keys))),
    )
    key_types = {k: c.type for c in table.columns for k in (c.name, *c.aliases)}
    texts, nested = [], []
    for i, key in enumerate(keys):
        raw = F.col(f"_raw_{i}")
        first = F.substring(raw, 1, 1)
        # Cheap test first: the line regex only runs where the text could be a number/nested.
        is_nested = first.isin("{", "[") & F.col("line").rlike(_key_then(key, r"[\[{]"))
        if key_types[key] == schemas.STRING:
            is_number = first.isin(*'"-0123456789') & F.col("line").rlike(
                _key_then(key, "-?[0-9]"))
            text = F.when(is_number, _polars_number_text(f"`_raw_{i}`"))
        else:  # typed columns only need the value; _problem spells a bad one
            text = _infinity(raw)
        texts.append(F.when(is_nested, F.lit(None)).otherwise(F.coalesce(text, raw))
                     .alias(f"_text_{i}"))
        kind = F.when(raw.startswith("{"), "dict").otherwise("list")
        nested.append(F.when(is_nested, F.concat(
            F.lit(f"{key}: nested "), kind, F.lit(" where a single value is expected"))))
    # Too deep / a repeated key (json_checks): the pre-filters of the Polars parser (see its
    # _with_duplicate_keys for why they are sound) clear almost every line; the UDF sees null
    # for those. A deep line Jackson refused is judged with the bad JSON.
    line = F.col("line")
    present = sum((F.coalesce(*(F.col(f"_raw_{keys.index(k)}") for k in (c.name, *c.aliases)))
                   .isNotNull().cast("int") for c in table.columns), F.lit(0))
    after_quote = _count_text(line, '":')
    tokens = [_count_text(line, f'"{k}":') for k in keys]
    written = sum(((t > 0).cast("int") for t in tokens), F.lit(0))
    maybe = ~F.col("_bad_json") & (
        (_count_chars(line, "[{") > MAX_DEPTH) | (_count_chars(line, ":") > after_quote)
        | ((after_quote > present) & ((F.greatest(*tokens) > 1) | (after_quote > written))))
    structure = _structure_problem_udf()(F.when(maybe, F.col("line")))
    # Line by line, Polars keeps the reason of the last nested key; a structure problem first.
    decode_reason = F.when(F.col("_bad_json"), F.lit("invalid JSON")).otherwise(
        F.coalesce(structure, *nested[::-1]))
    return raws.select(*content.columns, "_bad_json", decode_reason.alias("_decode_reason"),
                       *texts)


def _typed(table: Table, column: schemas.Column) -> Column:
    """Cast a decoded text column to its logical type (null where the text does not fit)."""
    names = _text_columns(table, column)
    text = F.coalesce(*(F.col(n) for n in names))
    if column.type == schemas.STRING:
        return text
    as_float = F.when(_float_text(text), F.expr(
        "try_cast(coalesce(" + ", ".join(f"`{n}`" for n in names) + ") as double)"))
    if column.type == schemas.FLOAT64:
        return as_float
    whole = (~F.isnan(as_float) & (F.abs(as_float) < F.lit(_INT64_LIMIT))
             & ((as_float % 1) == 0))
    exact = F.when(_int_text(text), F.expr(
        "try_cast(coalesce("
        + ", ".join(f"`{n}`" for n in names)
        + ") as bigint)"))
    return F.coalesce(exact, F.when(whole, as_float.cast("bigint")))


def _fits(table: Table, column: schemas.Column) -> Column:
    """The column's value is usable: present (when required) and of its type when present."""
    text = F.coalesce(*(F.col(n) for n in _text_columns(table, column)))
    typed_ok = text.isNull() | F.col(f"_typed_{column.name}").isNotNull()
    return text.isNotNull() & typed_ok if column.required else typed_ok


def _problem(table: Table, column: schemas.Column) -> Column:
    names = _text_columns(table, column)
    text = F.coalesce(*(F.col(n) for n in names))
    # A bad number is quoted in the reason as Polars spells it.
    keys = (column.name, *column.aliases)
    is_number = F.coalesce(*(
        F.when(F.col(n).isNotNull(), F.col("line").rlike(_key_then(k, "-?[0-9]")))
        for n, k in zip(names, keys, strict=True)))
    quoted = F.when(is_number, _polars_number_text(
        "coalesce(" + ", ".join(f"`{n}`" for n in names) + ")")).otherwise(text)
    bad_type = F.when(
        text.isNotNull() & F.col(f"_typed_{column.name}").isNull(),
        F.concat(F.lit(f"{column.name}: "), quoted, F.lit(f" is not a valid {column.type}")),
    )
    if not column.required:
        return bad_type
    return F.when(text.isNull(), F.lit(f"missing required key {column.name!r}")).otherwise(
        bad_type)


_KEY = r'"([A-Za-z_][A-Za-z0-9_]*)"\s*:'


def parse_landing(
    lines: DataFrame, table: Table
) -> tuple[DataFrame, DataFrame, dict[str, int]]:
    """Turn raw landing lines (file, line_number, line) into (rows, rejects, unknown_keys).

    Same rules as the Polars parse_landing (transforms/polars/landing.py): lines are trimmed
    of whitespace, a byte-order mark and one trailing comma; every line becomes a row or a
    reject with a reason (a blank line is rejected as "blank line"); unknown keys are not kept
    and are counted per landed line.
    """
    chars = "' \\t\\r\\n\\uFEFF'"  # _WHITESPACE as a SQL literal
    strip = "trim(BOTH " + chars + " FROM {})"
    strip_end = "trim(TRAILING " + chars + " FROM {})"
    stripped = strip.format("line")
    trimmed = lines.select(
        "file", "line_number", F.col("line").alias("_raw"),
        F.expr(strip_end.format(
            f"CASE WHEN endswith({stripped}, ',') THEN substr({stripped}, 1, "
            f"char_length({stripped}) - 1) ELSE {stripped} END")).alias("line"),
    )
    decoded = _decode(trimmed.filter(F.col("line") != ""), table)
    typed = decoded.select(
        "*", *(_typed(table, c).alias(f"_typed_{c.name}") for c in table.columns))
    ok = F.col("_decode_reason").isNull()
    for c in table.columns:
        ok = ok & _fits(table, c)
    typed = _computed_once(typed.select("*", ok.alias("_ok")))

    rows = typed.filter(F.col("_ok")).select(
        *(F.col(f"_typed_{c.name}").cast(SPARK_TYPES[c.type]).alias(c.name)
          for c in table.columns)
    )
    # Reasons are only worked out for rejected lines; the Python UDF only sees lines Spark
    # could not read, for polars' exact wording.
    invalid_reason = _invalid_json_reason_udf()
    decode_reason = F.when(F.col("_bad_json"), invalid_reason(F.col("line"))).otherwise(
        F.col("_decode_reason"))
    problems = F.concat_ws("; ", *(_problem(table, c) for c in table.columns))
    reject_columns = [F.col("file").cast("string"), F.col("line_number").cast("bigint"),
                      F.col("_raw").alias("line")]
    rejects = trimmed.filter(F.col("line").isNull() | (F.col("line") == "")).select(
        *reject_columns,
        F.when(F.col("line").isNull(), F.lit("not UTF-8 text"))
        .otherwise(F.lit("blank line")).alias("reason"),
    ).unionByName(typed.filter(~F.col("_ok")).select(
        *reject_columns,
        # a line that is not a JSON object has one reason; otherwise every bad field is listed
        F.coalesce(decode_reason, F.when(problems != "", problems)).alias("reason"),
    ))
    return rows, rejects, _unknown_keys(typed.filter(F.col("_ok")), table)


def _unknown_keys(landed: DataFrame, table: Table) -> dict[str, int]:
    known = set(_json_keys(table))
    keys = landed.select(F.explode(F.array_distinct(
        F.regexp_extract_all("line", F.lit(_KEY), 1))).alias("k"))
    found = keys.filter(~F.col("k").isin(*sorted(known))).groupBy("k").count().collect()
    return {r["k"]: int(r["count"]) for r in sorted(found, key=lambda r: r["k"])}

