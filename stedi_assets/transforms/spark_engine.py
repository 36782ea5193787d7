"""The STEDI transforms on Spark: pure functions, DataFrames in -> DataFrames out.

The same function names, columns, types, null handling and semi-join behaviour as
`polars_engine` (the reference semantics); a parity test walks both modules. No Dagster, no
paths, no environment variables here.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from stedi_assets import schemas
from stedi_assets.schemas import Table
from stedi_assets.transforms.figures import join_coverage_figures
from stedi_assets.transforms.identity import IDENTITY_WHITESPACE
from stedi_assets.transforms.json_checks import MAX_DEPTH, line_checks

SPARK_TYPES: dict[str, T.DataType] = {
    schemas.STRING: T.StringType(),
    schemas.INT64: T.LongType(),
    schemas.FLOAT64: T.DoubleType(),
}

REJECT_SCHEMA = "file string, line_number bigint, line string, reason string"

_CONSENT = "shareWithResearchAsOfDate"
_WHITESPACE = " \t\r\n\ufeff"  # the BOM counts as whitespace, as in polars_engine
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


def spark_schema(table: Table) -> T.StructType:
    return T.StructType([T.StructField(c.name, SPARK_TYPES[c.type]) for c in table.columns])


def logical_schema(schema: T.StructType) -> dict[str, str]:
    """{column: logical type} of a Spark schema (unknown types keep their Spark name)."""
    reverse = {v.simpleString(): k for k, v in SPARK_TYPES.items()}
    return {f.name: reverse.get(f.dataType.simpleString(), f.dataType.simpleString())
            for f in schema.fields}


# --------------------------------------------------------------------------------------------
# Landing: JSON lines -> typed rows + rejects
# --------------------------------------------------------------------------------------------

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
    polars_engine's words (json_checks: too deep, Python's json message, not an object, a
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
    nested value is null with a reason, as in polars_engine's line-by-line path. Each stage
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
    # Too deep / a repeated key (json_checks): the pre-filters of polars_engine (see its
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

    Same rules as polars_engine.parse_landing: lines are trimmed of whitespace, a byte-order
    mark and one trailing comma; every line becomes a row or a reject with a reason (a blank
    line is rejected as "blank line"); unknown keys are not kept and are counted per landed line.
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


def empty_rows(table: Table) -> DataFrame:
    return SparkSession.active().createDataFrame([], spark_schema(table))


def empty_rejects() -> DataFrame:
    return SparkSession.active().createDataFrame([], REJECT_SCHEMA)


# --------------------------------------------------------------------------------------------
# Trusted and curated zone tables
# --------------------------------------------------------------------------------------------

def _semi_join(frame: DataFrame, keys: DataFrame, on: str) -> DataFrame:
    """Rows of `frame` whose `on` is among `keys` (never multiplied), columns in their order:
    a join on a column name moves that column first, Polars keeps the order."""
    return frame.join(keys, on=on, how="left_semi").select(*frame.columns)


def _customer_key_udf(secret: str) -> Any:
    """HMAC-SHA256 of an email's identity as a UDF (pseudonyms.customer_key); built here so
    cloudpickle ships it by value."""
    import hashlib
    import hmac

    blanks = IDENTITY_WHITESPACE

    def key(email: str | None) -> str | None:
        if email is None:
            return None
        normalised = email.strip(blanks).lower()
        return hmac.new(secret.encode(), normalised.encode(), hashlib.sha256).hexdigest()

    return F.udf(key, T.StringType())


def _with_customer_key(frame: DataFrame, email: str, secret: str) -> DataFrame:
    """Add `customerKey` for the `email` column, hashing each distinct email once."""
    distinct = frame.select(email).distinct().where(F.col(email).isNotNull())
    keyed = distinct.select(email, _customer_key_udf(secret)(F.col(email)).alias("customerKey"))
    return frame.join(keyed, on=email, how="left")


_BLANKS = "".join(f"\\u{ord(c):04x}" for c in IDENTITY_WHITESPACE)


def _identity(column: str) -> Column:
    """The customer identity of an email column: trimmed and lower-cased (identity.py)."""
    # \z: the very end (Java's $ would also match before a final line terminator)
    return F.lower(F.regexp_replace(F.col(column), f"^[{_BLANKS}]+|[{_BLANKS}]+\\z", ""))


def quarantined_withdrawals(customer_landing_rejects: DataFrame | None) -> DataFrame:
    """(email, lastUpdateDate) of every readable email of a quarantined customer line: each
    counts as a record without research consent (see identity.quarantined_identities; the
    UDF imports it on the executors: the Glue jobs ship the package with --extra-py-files)."""
    schema = "email string, lastUpdateDate bigint"
    if customer_landing_rejects is None:
        return SparkSession.active().createDataFrame([], schema)

    def read(line: str | None) -> list[tuple[str, int | None]]:
        from stedi_assets.transforms.identity import quarantined_identities as found

        return found(line)

    udf = F.udf(read, "array<struct<email:string,lastUpdateDate:bigint>>")
    return customer_landing_rejects.select(F.explode(udf(F.col("line"))).alias("_found")
                                           ).select("_found.email", "_found.lastUpdateDate")


def _ranked_latest(records: DataFrame) -> DataFrame:
    """The winning record per identity (column `_identity` added), in polars_engine's order:
    a record without lastUpdateDate is the newest when it has no research consent and the
    oldest when it has, then lastUpdateDate; on a tie a record without consent wins, then the
    greatest values of the other columns in schema order (the email's spelling last)."""
    others = [c for c in schemas.TABLES["customer_landing"].column_names
              if c not in ("email", "lastUpdateDate", _CONSENT)]
    withdrawn = F.col(_CONSENT).isNull()
    undated = F.col("lastUpdateDate").isNull()
    tier = F.when(undated & withdrawn, 2).when(undated, 0).otherwise(1)
    window = Window.partitionBy("_identity").orderBy(
        tier.desc(), F.col("lastUpdateDate").desc_nulls_last(), withdrawn.desc(),
        F.col(_CONSENT).desc_nulls_last(), *(F.col(c).desc_nulls_last() for c in others),
        F.col("email").desc_nulls_last())
    return records.withColumn("_identity", _identity("email")).withColumn(
        "_rank", F.row_number().over(window)).filter(F.col("_rank") == 1).drop("_rank")


def _with_withdrawals(customer_landing: DataFrame,
                      customer_landing_rejects: DataFrame | None) -> DataFrame:
    """customer_landing plus one record without consent per quarantined readable email."""
    table = schemas.TABLES["customer_landing"]
    markers = quarantined_withdrawals(customer_landing_rejects).select(*(
        F.col(c.name) if c.name in ("email", "lastUpdateDate")
        else F.lit(None).cast(SPARK_TYPES[c.type]).alias(c.name) for c in table.columns))
    return customer_landing.select(*table.column_names).unionByName(markers)


def latest_customer_records(customer_landing: DataFrame,
                            customer_landing_rejects: DataFrame | None = None) -> DataFrame:
    """One record per customer identity (trimmed, lower-cased email): the latest one, where
    every readable email of a quarantined line counts as a record without research consent
    (at its lastUpdateDate when readable, else the newest). A later record without research
    consent withdraws the consent; when the order is uncertain, the record without consent
    wins (see _ranked_latest). The record that wins with consent is always a landed one."""
    return _ranked_latest(_with_withdrawals(customer_landing, customer_landing_rejects)
                          ).drop("_identity")


def non_consenting_devices(customer_landing: DataFrame,
                           customer_landing_rejects: DataFrame | None = None) -> DataFrame:
    """serialNumber of every device that belongs to a customer without research consent: the
    serialNumber of the customer's latest landed record, for every identity whose latest
    record (quarantined lines included) has no consent."""
    table = schemas.TABLES["customer_landing"]
    owners = _ranked_latest(customer_landing.select(*table.column_names)).select(
        "_identity", "serialNumber")
    without_consent = _ranked_latest(
        _with_withdrawals(customer_landing, customer_landing_rejects)
    ).filter(F.col(_CONSENT).isNull()).select("_identity")
    return owners.join(without_consent, on="_identity", how="left_semi").select(
        "serialNumber").where(F.col("serialNumber").isNotNull()).distinct()


def customer_trusted(customer_landing: DataFrame,
                     customer_landing_rejects: DataFrame | None = None) -> DataFrame:
    """Customers whose latest record agrees to share with research: one row per identity,
    the values of their latest landed record as landed."""
    return latest_customer_records(customer_landing, customer_landing_rejects).filter(
        F.col(_CONSENT).isNotNull())


def accelerometer_trusted(
    accelerometer_landing: DataFrame, customer_trusted: DataFrame, *,
    consent_as_of_date: bool = False, deduplicate: bool = True,
) -> DataFrame:
    """Readings of consenting customers, matched on the identity (semi-join: a repeated
    email never multiplies rows); with consent_as_of_date, only readings taken at or after
    the consent date; exact duplicate rows removed."""
    customers = customer_trusted.select(_identity("email").alias("_identity"),
                                        _CONSENT).dropDuplicates(["_identity"])
    readings = accelerometer_landing.withColumn("_identity", _identity("user"))
    if consent_as_of_date:
        kept = readings.join(customers, on="_identity", how="inner").filter(
            F.col("timestamp") >= F.col(_CONSENT)).select(*accelerometer_landing.columns)
    else:
        kept = _semi_join(readings, customers.select("_identity"), "_identity").select(
            *accelerometer_landing.columns)
    return kept.distinct() if deduplicate else kept


def customer_curated(
    customer_trusted: DataFrame, accelerometer_trusted: DataFrame, *, secret: str
) -> DataFrame:
    """Consenting customers with at least one trusted accelerometer reading, identified only by
    their pseudonymous key."""
    table = schemas.TABLES["customer_curated"]
    with_readings = _semi_join(
        customer_trusted.withColumn("_identity", _identity("email")),
        accelerometer_trusted.select(_identity("user").alias("_identity")), "_identity"
    ).select(*customer_trusted.columns)
    return _with_customer_key(with_readings, "email", secret).select(
        table.column_names).distinct()


def step_trainer_trusted(
    step_trainer_landing: DataFrame, customer_curated: DataFrame, *,
    deduplicate: bool = True, excluded_devices: DataFrame | None = None,
) -> DataFrame:
    """Readings of Step Trainers that belong to a curated customer (semi-join), exact duplicate
    rows removed. With `excluded_devices` (serialNumber), none of their readings."""
    kept = _semi_join(step_trainer_landing, customer_curated.select("serialNumber"),
                      "serialNumber")
    if excluded_devices is not None:
        kept = kept.join(excluded_devices.select("serialNumber"), on="serialNumber",
                         how="left_anti").select(*step_trainer_landing.columns)
    return kept.distinct() if deduplicate else kept


def machine_learning_curated(
    step_trainer_trusted: DataFrame, accelerometer_trusted: DataFrame, *, secret: str
) -> DataFrame:
    """Step readings paired with accelerometer readings at the same instant; the phone's owner
    appears only as a pseudonymous key."""
    table = schemas.TABLES["machine_learning_curated"]
    accel = accelerometer_trusted.select(
        F.col("timestamp").alias("sensorReadingTime"), "x", "y", "z", "user")
    joined = step_trainer_trusted.join(accel, on="sensorReadingTime", how="inner")
    return _with_customer_key(joined, "user", secret).select(table.column_names)


# --------------------------------------------------------------------------------------------
# Figures for the asset checks (computed from upstream data, never trusting the table alone)
# --------------------------------------------------------------------------------------------

def consenting_customers(customer_landing: DataFrame, secret: str,
                         customer_landing_rejects: DataFrame | None = None) -> DataFrame:
    """email (the identity: trimmed, lower-cased), serialNumber, customerKey and consent date
    of every customer whose latest record (quarantined lines included) has research consent."""
    latest = latest_customer_records(customer_landing, customer_landing_rejects).filter(
        F.col(_CONSENT).isNotNull())
    return _with_customer_key(latest.select(_identity("email").alias("email"), "serialNumber",
                                            _CONSENT), "email", secret)


def consent_violations(
    table: DataFrame, consenting: DataFrame, key: str, consenting_key: str,
    time_column: str | None = None, excluded: DataFrame | None = None,
) -> dict[str, Any]:
    """Rows of `table` whose `key` is not the `consenting_key` of a consenting customer (an
    email key matched on its identity); with `time_column`, also rows taken before that
    customer's consent date; with `excluded`, also rows whose key is one of its
    `consenting_key` values. A table carrying the consent date must have it on every row.
    The sample holds at most 5 violating keys (emails as identities)."""
    match = _identity(key) if consenting_key == "email" else F.col(key)
    customers = consenting.select(F.col(consenting_key).alias("_match"),
                                  F.col(_CONSENT).alias("_consent")).dropDuplicates(["_match"])
    marked = table.withColumn("_match", match).join(customers, on="_match", how="left")
    bad = F.col("_consent").isNull()
    if excluded is not None:
        marked = marked.join(excluded.select(F.col(consenting_key).alias("_match")).distinct()
                             .withColumn("_excluded", F.lit(True)), on="_match", how="left")
        bad = bad | F.col("_excluded").isNotNull()
    if time_column:
        bad = bad | (F.col(time_column) < F.col("_consent"))
    if _CONSENT in table.columns:
        bad = bad | F.col(_CONSENT).isNull()
    figures = marked.select(F.count(F.lit(1)).alias("n"),
                            F.sum(F.when(bad, 1).otherwise(0)).alias("v")).first()
    sample = [r["_match"] for r in marked.filter(bad).select("_match").distinct()
              .orderBy(F.col("_match").asc_nulls_first()).limit(5).collect()]
    return {"rows_checked": int(figures["n"]), "violations": int(figures["v"] or 0),
            "sample": sample}


def without_exact_duplicates(frame: DataFrame) -> tuple[DataFrame, int]:
    """`frame` without the rows that are exact copies of an earlier row, and how many rows
    that removes."""
    distinct = frame.distinct()
    return distinct, int(frame.count() - distinct.count())


def exact_duplicates(frame: DataFrame) -> int:
    """How many rows are exact copies of an earlier row."""
    return without_exact_duplicates(frame)[1]


def join_coverage(
    step_trainer_trusted: DataFrame,
    accelerometer_trusted: DataFrame,
    customer_landing: DataFrame,
) -> dict[str, Any]:
    """How well step readings pair with accelerometer readings taken at the same time."""
    accel = accelerometer_trusted.select(F.col("timestamp").alias("sensorReadingTime"),
                                         _identity("user").alias("user"))
    joined = step_trainer_trusted.select("sensorReadingTime", "serialNumber").join(
        accel, on="sensorReadingTime", how="inner"
    )
    owners = customer_landing.select(_identity("email").alias("user"),  # matched on identity
                                     "serialNumber").distinct()
    step_readings = step_trainer_trusted.count()
    matched = step_trainer_trusted.join(accel, on="sensorReadingTime", how="left_semi").count()
    joined_rows = joined.count()
    foreign = joined.join(owners, on=["serialNumber", "user"], how="left_anti").count()
    return join_coverage_figures(step_readings, matched, joined_rows, foreign)


def shared_device_rows(step_trainer_trusted: DataFrame, customer_landing: DataFrame,
                       customer_landing_rejects: DataFrame | None = None) -> dict[str, int]:
    """How many rows of step_trainer_trusted (and how many distinct devices) come from devices
    that also belong to a customer without research consent (non_consenting_devices)."""
    devices = non_consenting_devices(customer_landing, customer_landing_rejects)
    shared = step_trainer_trusted.join(devices, on="serialNumber", how="left_semi")
    figures = shared.select(F.count(F.lit(1)).alias("k"),
                            F.countDistinct("serialNumber").alias("d")).first()
    return {"rows_checked": int(step_trainer_trusted.count()),
            "shared_device_rows": int(figures["k"]), "shared_devices": int(figures["d"])}


def row_count(frame: DataFrame) -> int:
    return int(frame.count())


def head_rows(frame: DataFrame, n: int) -> list[dict[str, Any]]:
    return [r.asDict() for r in frame.limit(n).collect()]


def frame_logical_schema(frame: DataFrame) -> dict[str, str]:
    return logical_schema(frame.schema)
