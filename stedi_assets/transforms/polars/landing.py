"""Landing on Polars: JSON lines -> typed rows + rejects (the parser the landing cache keys on).

No Dagster, no paths, no environment variables here.
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from typing import Any

import polars as pl

from stedi_assets import schemas
from stedi_assets.schemas import Table
from stedi_assets.transforms.json_checks import MAX_DEPTH, TOO_DEEP, line_checks
from stedi_assets.transforms.polars.columns import polars_schema

_WHITESPACE = " \t\r\n\ufeff"  # the BOM counts as whitespace at the start of a line
_INT64_LIMIT = 2.0**63
_LINE_CHECKS = line_checks()


def _json_keys(table: Table) -> list[str]:
    return [key for c in table.columns for key in (c.name, *c.aliases)]


#: Column types a batch may decode straight to numbers (see _decode_vectorised).
_AS_NUMBERS = (frozenset({schemas.FLOAT64, schemas.INT64}), frozenset({schemas.FLOAT64}),
               frozenset())
#: Below this, every integer is exactly a float64 (so decoding an int64 column as a number
#: and casting back loses nothing).
_EXACT_FLOAT_INTS = 2.0**53


def _decode_vectorised(lines: pl.DataFrame, table: Table,
                       as_numbers: frozenset[str] = frozenset()) -> pl.DataFrame:
    """Decode every line at once; raises when any line is not valid for json_decode.

    Every value is decoded as text, which `_typed` casts, except in the columns whose type is
    in `as_numbers`, decoded straight to float64 (turning numbers into text and back is most
    of the decoding time): a JSON number gives the same float either way, and any other JSON
    value there (a string, an array, ...) makes this raise, so the caller decodes as text.
    Only JSON true/false would decode differently (to 1.0/0.0 instead of a rejected "true"),
    so a caller must not ask for numbers when a line holds either word. An int64 column
    decoded as numbers is only exact for whole numbers below 2**53: `_numbers_exact` says
    whether the caller may keep it (the text path names a bad value as written)."""
    numbers = {key for c in table.columns if c.type in as_numbers
               for key in (c.name, *c.aliases)}
    struct = pl.Struct({key: pl.Float64 if key in numbers else pl.String
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


def _numbers_exact(decoded: pl.DataFrame, table: Table) -> bool:
    """True when every int64 value decoded as a number is whole and below 2**53, so casting it
    to int64 gives what the text path gives (and no value needs a reject reason)."""
    keys = [key for c in table.columns if c.type == schemas.INT64
            for key in (c.name, *c.aliases) if decoded.schema[key] == pl.Float64]
    if not keys:
        return True
    exact = decoded.select(pl.all_horizontal(
        (pl.col(k).is_null() | ((pl.col(k) == pl.col(k).floor())
                                & (pl.col(k).abs() < _EXACT_FLOAT_INTS))).all()
        for k in keys))
    return bool(exact.item())


#: A batch holding a bad line is decoded again in slices of this many lines: only the slices
#: holding one go line by line (in Python, about 100x slower per line).
_SLICE_LINES = 4096


def _decode(content: pl.DataFrame, table: Table) -> pl.DataFrame:
    """The fastest exact decoding of a batch: numbers as numbers when every line allows it,
    else every value as text; a batch neither decodes is decoded slice by slice as text, and
    a slice holding a bad line line by line (each bad line gets its own reason). A line gives
    the same row or reason whichever way it is decoded (a property test checks it)."""
    types = {c.type for c in table.columns}
    attempts = [numbers & types for numbers in _AS_NUMBERS]
    if attempts[0] and content["line"].str.contains_any(["true", "false"]).any():
        attempts = [frozenset()]
    for as_numbers in dict.fromkeys(attempts):  # in order, without repeats
        try:
            decoded = _decode_vectorised(content, table, as_numbers)
        except pl.exceptions.PolarsError:
            continue
        if schemas.INT64 not in as_numbers or _numbers_exact(decoded, table):
            return decoded
    if content.height <= _SLICE_LINES:
        return _decode_line_by_line(content, table)
    # every value as text in every slice, so the slices stack (the line-by-line path's types)
    order = [*content.columns, *_json_keys(table), "_reason", "_object"]
    return pl.concat([_decode_slice(part, table).select(order)
                      for part in content.iter_slices(_SLICE_LINES)])


def _decode_slice(lines: pl.DataFrame, table: Table) -> pl.DataFrame:
    try:
        return _decode_vectorised(lines, table)
    except pl.exceptions.PolarsError:
        return _decode_line_by_line(lines, table)


def _as_text(value: Any) -> str | None:
    """A JSON value as text, spelled as json_decode spells it, so a line gives the same row
    and the same reason line by line as in a vectorised batch: a float in plain notation
    with its shortest digits (8015551212.0 -> "8015551212", 1e-7 -> "0.0000001", -0.0 -> "-0";
    Python would say "8015551212.0", "1e-07", "-0.0"), an overflow as "inf"."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and math.isfinite(value):
        plain = format(Decimal(repr(value)), "f")
        return plain.rstrip("0").rstrip(".") if "." in plain else plain
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
    opening brackets can be, so only those few are scanned in Python (and only a line longer
    than MAX_DEPTH bytes can hold that many: most lines are shorter, and a length is free)."""
    if not (line.str.len_bytes() > MAX_DEPTH).any():
        return pl.repeat(False, line.len(), dtype=pl.Boolean, eager=True).alias(line.name)
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
    check (json_checks). They are sound because every top-level key ends in its own colon, and
    only count literals (fast). First: a line that repeats a key has more top-level members
    than columns it filled, so more colons (`_colons`) than that; a clean line has exactly as
    many. Then, on those candidates (lines with null values, unknown keys, a colon in a value,
    ...): a line whose colons all follow a quote, where no known key is written twice as
    `"key":`, and with no more `":` than known keys written that way, cannot repeat a key
    (a repeated key, unknown or written with an escape, leaves more `":` than that)."""
    line = pl.col("line")
    present = pl.sum_horizontal(
        pl.any_horizontal(pl.col(k).is_not_null() for k in (c.name, *c.aliases)).cast(pl.UInt32)
        for c in table.columns)
    maybe = pl.col("_object") & (pl.col("_colons") > present)
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
    line = pl.col("line")
    trimmed = lines.with_columns(line.alias("_raw"))
    if not (lines["line"].str.starts_with("{") & lines["line"].str.ends_with("}")).all():
        # only some exports need it (and a clean batch is the common case)
        trimmed = trimmed.with_columns(
            line.str.strip_chars(_WHITESPACE).str.strip_suffix(",")
            .str.strip_chars_end(_WHITESPACE))
    undecodable = trimmed["line"].is_null()
    blank = trimmed["line"] == ""
    too_deep = _too_deep(trimmed["line"])
    has_content = ~blank & ~undecodable & ~too_deep
    content = trimmed if has_content.all() else trimmed.filter(has_content)
    # every top-level key ends in a colon: the pre-filter of the repeated and unknown keys
    decoded = _decode(content, table).with_columns(
        line.str.count_matches(":", literal=True).alias("_colons"))

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
    # Cheap pre-filters: every key token `"name":` ends in its own colon, so a line holding an
    # unknown key has more colons than known key tokens. First against the known keys with a
    # value (free: decoded), then, on the lines left (null values, unknown keys, colons in
    # values), against the known key tokens the line writes (one regex count). A colon inside
    # a value only lets a line through to the exact test below.
    present = pl.sum_horizontal(pl.col(k).is_not_null().cast(pl.Int32) for k in sorted(known))
    landed = landed.filter(pl.col("_colons") > present)
    if landed.is_empty():
        return {}
    written = "|".join(re.escape(k) for k in sorted(known))
    landed = landed.filter(pl.col("_colons") > pl.col("line").str.count_matches(
        rf'"(?:{written})"\s*:'))
    found = (
        landed.select(pl.col("line").str.extract_all(_KEY).list.unique().alias("k"))
        .explode("k").drop_nulls()
        .with_columns(pl.col("k").str.extract(_KEY))
        .filter(~pl.col("k").is_in(sorted(known)))
        .group_by("k").len()
    )
    return dict(zip(found["k"], found["len"], strict=True))

