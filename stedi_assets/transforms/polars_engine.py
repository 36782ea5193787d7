"""The STEDI transforms on Polars: pure functions, frames in -> frames out.

One function per table (same names in every engine module), plus the figures the asset checks
need. No Dagster, no paths, no environment variables here.
"""

from __future__ import annotations

import json
from typing import Any

import polars as pl

from stedi_assets import schemas
from stedi_assets.schemas import Table
from stedi_assets.transforms.figures import join_coverage_figures
from stedi_assets.transforms.identity import IDENTITY_WHITESPACE, quarantined_identities
from stedi_assets.transforms.json_checks import MAX_DEPTH, TOO_DEEP, line_checks
from stedi_assets.transforms.pseudonyms import customer_key

POLARS_TYPES: dict[str, pl.DataType] = {
    schemas.STRING: pl.String(),
    schemas.INT64: pl.Int64(),
    schemas.FLOAT64: pl.Float64(),
}

REJECT_COLUMNS = {"file": pl.String, "line_number": pl.Int64, "line": pl.String,
                  "reason": pl.String}

_CONSENT = "shareWithResearchAsOfDate"
_WHITESPACE = " \t\r\n\ufeff"  # the BOM counts as whitespace at the start of a line
_INT64_LIMIT = 2.0**63
_LINE_CHECKS = line_checks()


def polars_schema(table: Table) -> pl.Schema:
    return pl.Schema({c.name: POLARS_TYPES[c.type] for c in table.columns})


def logical_schema(schema: pl.Schema) -> dict[str, str]:
    """{column: logical type} of a Polars schema (unknown types keep their Polars name)."""
    reverse = {repr(v): k for k, v in POLARS_TYPES.items()}
    return {name: reverse.get(repr(dtype), str(dtype)) for name, dtype in schema.items()}


# --------------------------------------------------------------------------------------------
# Landing: JSON lines -> typed rows + rejects
# --------------------------------------------------------------------------------------------

def _json_keys(table: Table) -> list[str]:
    return [key for c in table.columns for key in (c.name, *c.aliases)]


def _decode_vectorised(lines: pl.DataFrame, table: Table,
                       floats_as_numbers: bool = False) -> pl.DataFrame:
    """Decode every line at once; raises when any line is not valid for json_decode.

    Every value is decoded as text, which `_typed` casts. With `floats_as_numbers`, float64
    columns are decoded straight to numbers (turning numbers into text and back is most of
    the decoding time): a JSON number gives the same float either way, and any other JSON
    value there (a string, an array, ...) makes this raise, so the caller decodes as text.
    Only JSON true/false would decode differently (to 1.0/0.0 instead of a rejected "true"),
    so a caller must not ask for it when a line holds either word."""
    floats = {key for c in table.columns if c.type == schemas.FLOAT64
              for key in (c.name, *c.aliases)} if floats_as_numbers else set()
    struct = pl.Struct({key: pl.Float64 if key in floats else pl.String
                        for key in _json_keys(table)})
    return lines.with_columns(
        pl.col("line").str.json_decode(struct).alias("_json"),
        pl.lit(None, pl.String).alias("_reason"),
    ).with_columns(
        pl.when(pl.col("_json").is_null())
        .then(pl.lit("not a JSON object"))
        .otherwise(pl.col("_reason"))
        .alias("_reason"),
        pl.col("_json").is_not_null().alias("_object"),
    ).unnest("_json")


def _as_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    raise TypeError(type(value).__name__)


def _decode_line_by_line(lines: pl.DataFrame, table: Table) -> pl.DataFrame:
    """Slow path: decode line by line so each bad line gets its own reason. The lines are not
    too deeply nested (parse_landing quarantined those), so json.loads cannot recurse too far."""
    keys = _json_keys(table)
    columns: dict[str, list[Any]] = {key: [] for key in [*keys, "_reason"]}
    objects: list[bool] = []
    for text in lines["line"]:
        reason = None
        values: dict[str, str | None] = {}
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            obj, reason = None, f"invalid JSON: {exc.msg} (column {exc.colno})"
        if obj is not None and not isinstance(obj, dict):
            reason = f"not a JSON object but a {type(obj).__name__}"
        elif isinstance(obj, dict):
            for key in keys:
                try:
                    values[key] = _as_text(obj.get(key))
                except TypeError as exc:
                    reason = f"{key}: nested {exc} where a single value is expected"
        for key in keys:
            columns[key].append(values.get(key))
        columns["_reason"].append(reason)
        objects.append(isinstance(obj, dict))
    decoded = pl.DataFrame(columns, schema={k: pl.String for k in columns}).with_columns(
        pl.Series("_object", objects, dtype=pl.Boolean))
    return pl.concat([lines, decoded], how="horizontal")


def _too_deep(line: pl.Series) -> pl.Series:
    """Lines nested more than MAX_DEPTH levels deep. Only a line holding more than MAX_DEPTH
    opening brackets can be, so only those few are scanned in Python."""
    brackets = (line.str.count_matches("[", literal=True)
                + line.str.count_matches("{", literal=True))
    deep = (brackets > MAX_DEPTH).fill_null(False)
    if not deep.any():
        return deep
    candidates = deep.arg_true()
    exact = pl.Series([_LINE_CHECKS.too_deep(t) for t in line.gather(candidates)],
                      dtype=pl.Boolean)
    return deep.scatter(candidates.filter(~exact), False)


def _with_duplicate_keys(decoded: pl.DataFrame, table: Table) -> pl.DataFrame:
    """`_reason` = `duplicate key 'NAME'` on JSON-object lines that repeat a top-level key.

    Vectorised pre-filters clear almost every line; only the rest go through Python's exact
    check (json_checks). They are sound because every key token ends in its own colon, and
    only count literals (fast): a line whose colons all follow a quote (no blanks before a
    key's colon, no colon in a value) and number no more than the columns it filled cannot
    repeat a key; on the others (lines with null values, unknown keys, ...), where no known key
    is written twice as `"key":`, a repeated key (unknown, or written with an escape) leaves
    more `":` than known keys written that way."""
    line = pl.col("line")
    present = pl.sum_horizontal(
        pl.any_horizontal(pl.col(k).is_not_null() for k in (c.name, *c.aliases)).cast(pl.UInt32)
        for c in table.columns)
    after_quote = line.str.count_matches('":', literal=True)
    maybe = pl.col("_object") & ((line.str.count_matches(":", literal=True) > after_quote)
                                 | (after_quote > present))
    candidates = decoded.select("line").with_row_index("_i").filter(
        decoded.select(maybe).to_series())
    if candidates.is_empty():
        return decoded
    keys = _json_keys(table)
    counted = candidates.select(
        line.str.count_matches(":", literal=True).alias("_colons"),
        line.str.count_matches('":', literal=True).alias("_after_quote"),
        *(line.str.count_matches(f'"{k}":', literal=True).alias(f"_k{i}")
          for i, k in enumerate(keys)))
    tokens = [pl.col(f"_k{i}") for i in range(len(keys))]
    written = pl.sum_horizontal((t > 0).cast(pl.UInt32) for t in tokens)
    suspect = ((pl.max_horizontal(tokens) > 1) | (pl.col("_colons") > pl.col("_after_quote"))
               | (pl.col("_after_quote") > written))
    suspects = candidates.filter(counted.select(suspect).to_series())
    if suspects.is_empty():
        return decoded
    found = suspects.with_columns(pl.Series(
        "_duplicate", [_LINE_CHECKS.duplicate_key(t) for t in suspects["line"]],
        dtype=pl.String)).drop_nulls("_duplicate")
    if found.is_empty():
        return decoded
    # a repeated key outranks every field problem of the line
    return decoded.with_columns(
        decoded["_reason"].scatter(found["_i"], found["_duplicate"]).alias("_reason"))


def _typed(column: schemas.Column) -> pl.Expr:
    """Cast a decoded text column to its logical type (null where the text does not fit)."""
    text = pl.coalesce([pl.col(k) for k in (column.name, *column.aliases)])
    if column.type == schemas.STRING:
        return text
    as_float = text.cast(pl.Float64, strict=False)
    if column.type == schemas.FLOAT64:
        return as_float
    # INT64: exact integer text, or a float text holding a whole number (1655564376361.0).
    whole = as_float.is_finite() & (as_float == as_float.floor()) & (as_float.abs() < _INT64_LIMIT)
    return pl.coalesce(
        text.cast(pl.Int64, strict=False),
        pl.when(whole).then(as_float.cast(pl.Int64)),
    )


def _problem(column: schemas.Column) -> pl.Expr:
    text = pl.coalesce([pl.col(k) for k in (column.name, *column.aliases)])
    value = pl.col(f"_typed_{column.name}")
    bad_type = (
        pl.when(text.is_not_null() & value.is_null())
        .then(pl.format("{}: {} is not a valid {}", pl.lit(column.name), text,
                        pl.lit(column.type)))
    )
    if not column.required:
        return bad_type
    return pl.when(text.is_null()).then(
        pl.lit(f"missing required key {column.name!r}")
    ).otherwise(bad_type)


_KEY = r'"([A-Za-z_][A-Za-z0-9_]*)"\s*:'


def parse_landing(
    lines: pl.DataFrame, table: Table
) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, int]]:
    """Turn raw landing lines (file, line_number, line) into (rows, rejects, unknown_keys).

    Lines are trimmed of whitespace, a byte-order mark and one trailing comma (the 2022
    step-trainer export ends lines in `},`). Every line becomes a row or a reject with a reason
    (a blank line is rejected as "blank line"), so lines = rows + rejects. A line nested more
    than MAX_DEPTH levels deep or repeating a top-level key is rejected before any field is
    looked at (see json_checks). Keys the schema does not know are not kept; `unknown_keys`
    reports how many landed lines carried each of them.
    """
    trimmed = lines.with_columns(
        pl.col("line")
        .str.strip_chars(_WHITESPACE)
        .str.strip_suffix(",")
        .str.strip_chars_end(_WHITESPACE)
        .alias("line"),
        pl.col("line").alias("_raw"),
    )
    undecodable = trimmed["line"].is_null()
    blank = trimmed["line"] == ""
    too_deep = _too_deep(trimmed["line"])
    has_content = ~blank & ~undecodable & ~too_deep
    content = trimmed if has_content.all() else trimmed.filter(has_content)
    has_floats = any(c.type == schemas.FLOAT64 for c in table.columns)
    try:
        decoded = _decode_vectorised(
            content, table,
            floats_as_numbers=has_floats and not content["line"].str.contains_any(
                ["true", "false"]).any())
    except pl.exceptions.PolarsError:
        try:
            decoded = _decode_vectorised(content, table) if has_floats else None
        except pl.exceptions.PolarsError:
            decoded = None
        if decoded is None:
            decoded = _decode_line_by_line(content, table)

    typed = _with_duplicate_keys(decoded, table).with_columns(
        _typed(c).alias(f"_typed_{c.name}") for c in table.columns
    ).with_columns(
        # a line that is not a JSON object has one reason; otherwise list every bad field
        pl.when(pl.col("_reason").is_not_null()).then(pl.col("_reason")).otherwise(
            pl.concat_str([_problem(c) for c in table.columns], separator="; ",
                          ignore_nulls=True)
        ).replace("", None).alias("_reason")
    )

    landed = typed if typed["_reason"].null_count() == typed.height else typed.filter(
        pl.col("_reason").is_null())
    rows = landed.select(
        pl.col(f"_typed_{c.name}").alias(c.name) for c in table.columns
    ).cast(dict(polars_schema(table)))
    reject_columns = [pl.col("file"), pl.col("line_number").cast(pl.Int64),
                      pl.col("_raw").alias("line")]
    rejects = pl.concat([
        trimmed.filter(blank).select(*reject_columns, pl.lit("blank line").alias("reason")),
        trimmed.filter(undecodable).select(*reject_columns,
                                           pl.lit("not UTF-8 text").alias("reason")),
        trimmed.filter(too_deep).select(*reject_columns, pl.lit(TOO_DEEP).alias("reason")),
        typed.filter(pl.col("_reason").is_not_null()).select(
            *reject_columns, pl.col("_reason").alias("reason")),
    ]).sort("line_number")
    return rows, rejects, _unknown_keys(landed, table)


def _unknown_keys(landed: pl.DataFrame, table: Table) -> dict[str, int]:
    known = set(_json_keys(table))
    # Cheap pre-filter: a line can hold an unknown key only if it has more colons than decoded
    # known keys (every key ends in a colon; a colon inside a value only lets a line through
    # to the exact test below).
    present = pl.sum_horizontal(pl.col(k).is_not_null().cast(pl.Int32) for k in sorted(known))
    landed = landed.filter(pl.col("line").str.count_matches(":", literal=True) > present)
    found = (
        landed.select(pl.col("line").str.extract_all(_KEY).list.unique().alias("k"))
        .explode("k").drop_nulls()
        .with_columns(pl.col("k").str.extract(_KEY))
        .filter(~pl.col("k").is_in(sorted(known)))
        .group_by("k").len()
    )
    return dict(zip(found["k"], found["len"], strict=True))


def typed_columns(table: Table) -> list[pl.Expr]:
    """The table's columns cast to their declared types, in declared order (for rows that
    arrive already typed, e.g. Parquet landing files)."""
    return [pl.col(c.name).cast(POLARS_TYPES[c.type]) for c in table.columns]


def empty_rows(table: Table) -> pl.DataFrame:
    return pl.DataFrame(schema=polars_schema(table))


def empty_rejects() -> pl.DataFrame:
    return pl.DataFrame(schema=REJECT_COLUMNS)


# --------------------------------------------------------------------------------------------
# Privacy helpers
# --------------------------------------------------------------------------------------------

def _with_customer_key(frame: pl.LazyFrame, email: str, secret: str,
                       emails: pl.LazyFrame | None = None) -> pl.LazyFrame:
    """Add `customerKey` for the `email` column, hashing each distinct email once. `emails`
    (a frame with the `email` column holding at least the emails of `frame`) is where the
    distinct emails are taken from when `frame` itself is costly to compute twice."""
    def keys(values: pl.Series) -> pl.Series:
        return pl.Series([customer_key(e, secret) for e in values], dtype=pl.String)

    source = frame if emails is None else emails
    distinct = source.select(email).unique().with_columns(
        pl.col(email).map_batches(keys, return_dtype=pl.String).alias("customerKey"))
    return frame.join(distinct, on=email, how="left", maintain_order="left")


def _identity(column: str) -> pl.Expr:
    """The customer identity of an email column: trimmed and lower-cased (identity.py)."""
    return pl.col(column).str.strip_chars(IDENTITY_WHITESPACE).str.to_lowercase()


def quarantined_withdrawals(customer_landing_rejects: pl.LazyFrame | None) -> pl.LazyFrame:
    """(email, lastUpdateDate) of every readable email of a quarantined customer line: each
    counts as a record without research consent (see identity.quarantined_identities)."""
    schema = {"email": pl.String, "lastUpdateDate": pl.Int64}
    if customer_landing_rejects is None:
        return pl.LazyFrame(schema=schema)
    found = pl.Struct(schema)

    def read(lines: pl.Series) -> pl.Series:
        return pl.Series([[{"email": e, "lastUpdateDate": d}
                           for e, d in quarantined_identities(line)] for line in lines],
                         dtype=pl.List(found))

    return customer_landing_rejects.select(
        pl.col("line").map_batches(read, return_dtype=pl.List(found)).alias("_found")
    ).explode("_found").drop_nulls("_found").unnest("_found").select(list(schema))


def _ranked_latest(records: pl.LazyFrame) -> pl.LazyFrame:
    """The winning record per identity (column `_identity` added). Order: a record without
    lastUpdateDate is the newest when it has no research consent and the oldest when it has,
    then lastUpdateDate; on a tie a record without consent wins, then the greatest values of
    the other columns in schema order (the email's spelling last), so the choice never
    depends on the order rows landed in."""
    others = [c for c in schemas.TABLES["customer_landing"].column_names
              if c not in ("email", "lastUpdateDate", _CONSENT)]
    withdrawn = pl.col(_CONSENT).is_null()
    undated = pl.col("lastUpdateDate").is_null()
    return records.with_columns(
        _identity("email").alias("_identity"),
        withdrawn.alias("_withdrawn"),
        pl.when(undated & withdrawn).then(2).when(undated).then(0).otherwise(1).alias("_tier"),
    ).sort(
        "_tier", "lastUpdateDate", "_withdrawn", _CONSENT, *others, "email", nulls_last=False
    ).unique(subset="_identity", keep="last", maintain_order=True).drop("_withdrawn", "_tier")


def _with_withdrawals(customer_landing: pl.LazyFrame,
                      customer_landing_rejects: pl.LazyFrame | None) -> pl.LazyFrame:
    """customer_landing plus one record without consent per quarantined readable email."""
    table = schemas.TABLES["customer_landing"]
    landed = customer_landing.select(typed_columns(table))
    markers = quarantined_withdrawals(customer_landing_rejects).with_columns(
        pl.lit(None, POLARS_TYPES[c.type]).alias(c.name) for c in table.columns
        if c.name not in ("email", "lastUpdateDate"))
    return pl.concat([landed, markers.select(typed_columns(table))])


def latest_customer_records(customer_landing: pl.LazyFrame,
                            customer_landing_rejects: pl.LazyFrame | None = None
                            ) -> pl.LazyFrame:
    """One record per customer identity (trimmed, lower-cased email): the latest one, where
    every readable email of a quarantined line counts as a record without research consent
    (at its lastUpdateDate when readable, else the newest). A later record without research
    consent withdraws the consent; when the order is uncertain, the record without consent
    wins (see _ranked_latest). The record that wins with consent is always a landed one."""
    return _ranked_latest(_with_withdrawals(customer_landing, customer_landing_rejects)
                          ).drop("_identity")


def non_consenting_devices(customer_landing: pl.LazyFrame,
                           customer_landing_rejects: pl.LazyFrame | None = None
                           ) -> pl.LazyFrame:
    """serialNumber of every device that belongs to a customer without research consent: the
    serialNumber of the customer's latest landed record, for every identity whose latest
    record (quarantined lines included) has no consent."""
    owners = _ranked_latest(customer_landing.select(
        typed_columns(schemas.TABLES["customer_landing"]))).select("_identity", "serialNumber")
    without_consent = _ranked_latest(
        _with_withdrawals(customer_landing, customer_landing_rejects)
    ).filter(pl.col(_CONSENT).is_null()).select("_identity")
    return owners.join(without_consent, on="_identity", how="semi").select(
        "serialNumber").drop_nulls().unique()


# --------------------------------------------------------------------------------------------
# Trusted and curated zone tables
# --------------------------------------------------------------------------------------------

def customer_trusted(customer_landing: pl.LazyFrame,
                     customer_landing_rejects: pl.LazyFrame | None = None) -> pl.LazyFrame:
    """Customers whose latest record agrees to share with research: one row per identity,
    the values of their latest landed record as landed."""
    return latest_customer_records(customer_landing, customer_landing_rejects).filter(
        pl.col(_CONSENT).is_not_null())


def accelerometer_trusted(
    accelerometer_landing: pl.LazyFrame, customer_trusted: pl.LazyFrame, *,
    consent_as_of_date: bool = False, deduplicate: bool = True,
) -> pl.LazyFrame:
    """Readings of consenting customers, matched on the identity (semi-join: a repeated
    email never multiplies rows);
    with consent_as_of_date, only readings taken at or after the consent date; exact duplicate
    rows removed."""
    customers = customer_trusted.select(_identity("email").alias("_identity"),
                                        _CONSENT).unique("_identity")
    readings = accelerometer_landing.with_columns(_identity("user").alias("_identity"))
    if consent_as_of_date:
        kept = readings.join(
            customers, on="_identity", how="inner", maintain_order="left"
        ).filter(pl.col("timestamp") >= pl.col(_CONSENT)).drop(_CONSENT, "_identity")
    else:
        kept = readings.join(customers, on="_identity", how="semi",
                             maintain_order="left").drop("_identity")
    return without_exact_duplicates(kept)[0] if deduplicate else kept


def customer_curated(
    customer_trusted: pl.LazyFrame, accelerometer_trusted: pl.LazyFrame, *, secret: str
) -> pl.LazyFrame:
    """Consenting customers with at least one trusted accelerometer reading, identified only by
    their pseudonymous key."""
    table = schemas.TABLES["customer_curated"]
    with_readings = customer_trusted.with_columns(_identity("email").alias("_identity")).join(
        accelerometer_trusted.select(_identity("user").alias("_identity")), on="_identity",
        how="semi", maintain_order="left",
    ).drop("_identity")
    return _with_customer_key(with_readings, "email", secret).select(
        table.column_names).unique(maintain_order=True)


def step_trainer_trusted(
    step_trainer_landing: pl.LazyFrame, customer_curated: pl.LazyFrame, *,
    deduplicate: bool = True, excluded_devices: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """Readings of Step Trainers that belong to a curated customer (semi-join), exact duplicate
    rows removed. Step readings are not cut at the consent date (see README). With
    `excluded_devices` (serialNumber, e.g. non_consenting_devices), none of their readings."""
    kept = step_trainer_landing.join(
        customer_curated.select("serialNumber"), on="serialNumber", how="semi",
        maintain_order="left",
    )
    if excluded_devices is not None:
        kept = kept.join(excluded_devices.select("serialNumber"), on="serialNumber",
                         how="anti", maintain_order="left")
    return without_exact_duplicates(kept)[0] if deduplicate else kept


def machine_learning_curated(
    step_trainer_trusted: pl.LazyFrame, accelerometer_trusted: pl.LazyFrame, *, secret: str
) -> pl.LazyFrame:
    """Step readings paired with accelerometer readings at the same instant; the phone's owner
    appears only as a pseudonymous key. Rows come in accelerometer order (then step order):
    the step readings are the join's in-memory side and the accelerometer readings stream."""
    table = schemas.TABLES["machine_learning_curated"]
    joined = step_trainer_trusted.join(
        accelerometer_trusted.select("timestamp", "x", "y", "z", "user"),
        left_on="sensorReadingTime", right_on="timestamp", how="inner",
        maintain_order="right_left", build_side="force_left",
    )
    return _with_customer_key(joined, "user", secret,
                              emails=accelerometer_trusted.select("user")).select(
        table.column_names)


def without_exact_duplicates(frame: pl.LazyFrame) -> tuple[pl.LazyFrame, int]:
    """`frame` without the rows that are exact copies of an earlier row (the first of each set
    of copies stays, in place), and how many rows that removes.

    Memory stays far below a hash table of whole rows: a 64-bit hash per row is collected and
    sorted to find the hashes that occur more than once; only the rows carrying such a hash
    (copies, their originals and rare hash collisions) are compared in full, giving the
    positions of the copies; the result streams `frame` again without them. Hashing treats
    values as unique() does (-0.0 = 0.0, NaN = NaN, null = null)."""
    columns = frame.collect_schema().names()
    row_hash = pl.struct(columns).hash().alias("_hash")
    hashes = frame.select(row_hash).collect(engine="streaming").to_series().sort()
    repeated = hashes.filter(hashes == hashes.shift(1)).unique()
    del hashes
    if repeated.is_empty():
        return frame, 0
    numbered = frame.with_row_index("_row")
    candidates = numbered.with_columns(row_hash).join(
        pl.LazyFrame({"_hash": repeated}), on="_hash", how="semi", maintain_order="left",
    ).collect(engine="streaming").sort("_row")
    copies = candidates.filter(~pl.struct(columns).is_first_distinct()).select("_row")
    if copies.is_empty():
        return frame, 0
    return (numbered.join(copies.lazy(), on="_row", how="anti", maintain_order="left")
            .drop("_row"), copies.height)


# --------------------------------------------------------------------------------------------
# Figures for the checks and metadata (computed from upstream data, not the table under test)
# --------------------------------------------------------------------------------------------

def consenting_customers(customer_landing: pl.LazyFrame, secret: str,
                         customer_landing_rejects: pl.LazyFrame | None = None
                         ) -> pl.LazyFrame:
    """email (the identity: trimmed, lower-cased), serialNumber, customerKey and consent date
    of every customer whose latest record (quarantined lines included) has research consent."""
    latest = latest_customer_records(customer_landing, customer_landing_rejects).filter(
        pl.col(_CONSENT).is_not_null())
    return _with_customer_key(latest.select(_identity("email").alias("email"), "serialNumber",
                                            _CONSENT), "email", secret)


def consent_violations(
    table: pl.LazyFrame, consenting: pl.LazyFrame, key: str, consenting_key: str,
    time_column: str | None = None, excluded: pl.LazyFrame | None = None,
) -> dict[str, Any]:
    """Rows of `table` whose `key` is not the `consenting_key` of a consenting customer (an
    email key matched on its identity); with `time_column`, also rows taken before that
    customer's consent date; with `excluded` (a frame of `consenting_key` values), also rows
    whose key is one of them. A table carrying the consent date must have it on every row.
    The sample holds at most 5 violating keys (emails as identities: the checks turn them
    into pseudonymous keys before reporting). One streaming pass over `table` (a second,
    over the violating rows only, when there are any)."""
    match = _identity(key) if consenting_key == "email" else pl.col(key)
    customers = consenting.select(pl.col(consenting_key).alias("_match"),
                                  pl.col(_CONSENT).alias("_consent")).unique("_match")
    table_columns = table.collect_schema().names()
    # customers hold each key once, so every row of `table` appears exactly once here
    marked = table.with_columns(match.alias("_match")).join(
        customers, on="_match", how="left", nulls_equal=False)
    bad = pl.col("_consent").is_null()
    if excluded is not None:
        marked = marked.join(excluded.select(pl.col(consenting_key).alias("_match"))
                             .unique().with_columns(pl.lit(True).alias("_excluded")),
                             on="_match", how="left", nulls_equal=False)
        bad = bad | pl.col("_excluded").is_not_null()
    if time_column:
        bad = bad | (pl.col(time_column) < pl.col("_consent"))
    if _CONSENT in table_columns:
        bad = bad | pl.col(_CONSENT).is_null()
    rows, violations = marked.select(pl.len(), bad.sum()).collect(engine="streaming").row(0)
    sample = []
    if violations:
        sample = (marked.filter(bad).select("_match").unique().collect(engine="streaming")
                  .sort("_match").head(5)["_match"].to_list())
    return {"rows_checked": int(rows), "violations": int(violations), "sample": sample}


def exact_duplicates(frame: pl.LazyFrame) -> int:
    """How many rows are exact copies of an earlier row."""
    return without_exact_duplicates(frame)[1]


def join_coverage(
    step_trainer_trusted: pl.LazyFrame,
    accelerometer_trusted: pl.LazyFrame,
    customer_landing: pl.LazyFrame,
) -> dict[str, Any]:
    """How well step readings pair with accelerometer readings taken at the same time.
    Streaming passes; the step readings (or the accelerometer instants) are the in-memory side
    of each join, never the joined pairs."""
    accel = accelerometer_trusted.select(
        pl.col("timestamp").alias("sensorReadingTime"), _identity("user").alias("user")
    )
    steps = step_trainer_trusted.select("sensorReadingTime", "serialNumber")
    owners = customer_landing.select(  # owner and phone matched on the identity
        _identity("email").alias("user"), "serialNumber", pl.lit(True).alias("_owner")
    ).unique(["user", "serialNumber"])
    # owners hold each (user, serialNumber) pair once: the left join never adds rows
    pairs = steps.join(accel, on="sensorReadingTime", how="inner", build_side="force_left"
                       ).join(owners, on=["serialNumber", "user"], how="left")
    joined_rows, foreign = pairs.select(
        pl.len(), pl.col("_owner").is_null().sum()).collect(engine="streaming").row(0)
    step_readings = row_count(steps)
    matched = row_count(steps.join(accel.select("sensorReadingTime"), on="sensorReadingTime",
                                   how="semi"))
    return join_coverage_figures(step_readings, matched, int(joined_rows), int(foreign))


def shared_device_rows(step_trainer_trusted: pl.LazyFrame, customer_landing: pl.LazyFrame,
                       customer_landing_rejects: pl.LazyFrame | None = None
                       ) -> dict[str, int]:
    """How many rows of step_trainer_trusted (and how many distinct devices) come from devices
    that also belong to a customer without research consent (non_consenting_devices)."""
    devices = non_consenting_devices(customer_landing, customer_landing_rejects)
    shared = step_trainer_trusted.join(devices, on="serialNumber", how="semi")
    shared_rows, shared_devices = shared.select(
        pl.len(), pl.col("serialNumber").n_unique()).collect(engine="streaming").row(0)
    rows = row_count(step_trainer_trusted)
    return {"rows_checked": int(rows), "shared_device_rows": int(shared_rows),
            "shared_devices": int(shared_devices)}


def row_count(frame: pl.LazyFrame | pl.DataFrame) -> int:
    return int(frame.lazy().select(pl.len()).collect(engine="streaming").item())


def frame_logical_schema(frame: pl.LazyFrame) -> dict[str, str]:
    return logical_schema(frame.collect_schema())


def head_rows(frame: pl.LazyFrame | pl.DataFrame, n: int) -> list[dict[str, Any]]:
    return frame.lazy().head(n).collect().to_dicts()
