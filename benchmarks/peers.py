"""The STEDI chain as a user would write it without the graph: the peers of benchmarks/scale.py.

    python benchmarks/peers.py {duckdb,duckdb-4gb,polars} LANDING OUT [--secret S]

reads the JSON-lines landing folders (customer/, accelerometer/, step_trainer/) with the
engine's own JSON reader and explicit column types (no type inference, no line quarantine),
computes the five trusted/curated tables with the graph's semantics and writes
<OUT>/<table>.parquet with the graph's columns and types (stedi_assets/schemas.py):

* `duckdb`: DuckDB `read_json(format='newline_delimited', columns={...})`, then SQL;
* `duckdb-4gb`: the same under `SET memory_limit='4GB'`;
* `polars`: plain Polars, `pl.scan_ndjson(files, schema=...)` and the streaming engine.

The graph's rules they keep (transforms/polars/tables.py):
- a customer is the email trimmed and lower-cased (its identity); the latest record per identity
  wins with the engine's order-free tie-break (`_LATEST_FIRST`); customer_trusted keeps it when
  it has research consent;
- accelerometer readings of consenting customers (semi-join on the identity), step-trainer
  readings of curated customers' devices (semi-join on serialNumber), exact duplicates removed;
- customerKey = HMAC-SHA256(secret, identity of the email) in hex;
- machine_learning_curated: step readings joined with accelerometer readings at the same instant.
Landing quirks the readers must take (they are in generated data): epoch values written as
floats (`1655564376361.0`) and phone numbers as JSON numbers; files from the old app spelling
`timeStamp` (the schema's alias of `timestamp`); the 2022 step-trainer export whose lines end
in `},` (no JSON reader takes those: such files go through a line reader that removes the
comma, as the graph's parser does). A file is told apart by its first line. A line missing a
required key is dropped (the graph quarantines it); a line the reader cannot take (invalid
JSON, a value not of its type) fails the run instead of being quarantined.

Benchmark-only code.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from stedi_assets import schemas
from stedi_assets.transforms.identity import IDENTITY_WHITESPACE

#: the graph's local secret (stedi_assets.settings.LOCAL_PSEUDONYM_SECRET, written out here:
#: importing the settings module loads boto3, 0.3 s that are not the peers' work)
LOCAL_SECRET = "stedi-local-development-only"
TABLES = ("customer_trusted", "accelerometer_trusted", "customer_curated",
          "step_trainer_trusted", "machine_learning_curated")
SOURCES = ("customer", "accelerometer", "step_trainer")
PEERS = ("duckdb", "duckdb-4gb", "polars")
_CONSENT = "shareWithResearchAsOfDate"
#: What the graph's landing parser trims from both ends of a line (transforms/polars/landing.py).
_LINE_BLANKS = " \t\r\n\ufeff"
_DUCKDB_TYPES = {schemas.STRING: "VARCHAR", schemas.INT64: "BIGINT", schemas.FLOAT64: "DOUBLE"}


def _landing(source: str) -> schemas.Table:
    return schemas.TABLES[f"{source}_landing"]


# --------------------------------------------------------------------------------------------
# Landing files
# --------------------------------------------------------------------------------------------

def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(("_", ".")))


def _first_line(path: Path) -> str:
    with path.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.strip(_LINE_BLANKS):
                return line.strip(_LINE_BLANKS)
    return ""


def _file_groups(table: schemas.Table, folder: Path
                 ) -> dict[tuple[tuple[tuple[str, str], ...], bool], list[Path]]:
    """The source's files grouped by (the JSON key each column is spelled with, whether lines
    end in a comma), both told by the file's first line."""
    groups: dict[tuple[tuple[tuple[str, str], ...], bool], list[Path]] = {}
    for path in _files(folder):
        first = _first_line(path)
        keys = tuple(
            (c.name, next((a for a in c.aliases
                           if f'"{a}"' in first and f'"{c.name}"' not in first), c.name))
            for c in table.columns)
        groups.setdefault((keys, first.endswith(",")), []).append(path)
    return groups


# --------------------------------------------------------------------------------------------
# DuckDB
# --------------------------------------------------------------------------------------------

#: The engine's latest-record rule (transforms/polars/tables.py: _ranked_latest), latest first:
#: a record without lastUpdateDate is the newest when it has no research consent and the oldest
#: when it has; then the greatest lastUpdateDate; on a tie a record without research consent
#: wins, then the greatest consent date and the greatest values of the other columns in schema
#: order, the email's spelling last (null is the smallest value everywhere), so the choice never
#: depends on the order records landed in.
_LATEST_FIRST = ", ".join([
    f"CASE WHEN lastUpdateDate IS NULL AND {_CONSENT} IS NULL THEN 2 "
    "WHEN lastUpdateDate IS NULL THEN 0 ELSE 1 END DESC",
    "lastUpdateDate DESC NULLS LAST", f"({_CONSENT} IS NULL) DESC",
    f"{_CONSENT} DESC NULLS LAST",
    *(f"{c} DESC NULLS LAST" for c in _landing("customer").column_names
      if c not in ("email", "lastUpdateDate", _CONSENT)),
    "email DESC NULLS LAST",
])


def _sql_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _identity_sql(column: str) -> str:
    """The customer identity of an email column: trimmed (identity.IDENTITY_WHITESPACE) and
    lower-cased."""
    return f"lower(trim({column}, {_sql_text(IDENTITY_WHITESPACE)}))"


def _hmac_sql(secret: str, column: str) -> str:
    """HMAC-SHA256(secret, column) in hex, from DuckDB's sha256 over BLOBs (RFC 2104)."""
    key = secret.encode()
    key = hashlib.sha256(key).digest() if len(key) > 64 else key
    key = key.ljust(64, b"\0")
    ipad = bytes(b ^ 0x36 for b in key).hex()
    opad = bytes(b ^ 0x5C for b in key).hex()
    inner = f"unhex(sha256(unhex('{ipad}') || encode({column})))"
    return f"sha256(unhex('{opad}') || {inner})"


def _duckdb_source(source: str, folder: Path) -> str:
    """A query giving the typed rows of a landing folder (columns as in the schema; rows
    missing a required key left out)."""
    table = _landing(source)
    types = {c.name: _DUCKDB_TYPES[c.type] for c in table.columns}
    parts = []
    for (keys, comma), files in _file_groups(table, folder).items():
        listing = "[" + ", ".join(_sql_text(str(f)) for f in files) + "]"
        spelled = {key: types[name] for name, key in keys}
        select = ", ".join(f'"{key}" AS "{name}"' for name, key in keys)
        if not comma:
            columns = "{" + ", ".join(f"{_sql_text(k)}: '{t}'" for k, t in spelled.items()) + "}"
            parts.append(f"SELECT {select} FROM read_json({listing}, "
                         f"format='newline_delimited', columns={columns})")
        else:  # lines ending in "}," : read as text, trimmed like the graph's parser
            blanks = _sql_text(_LINE_BLANKS)
            structure = _sql_text(json.dumps(spelled))
            parts.append(
                f"SELECT {select} FROM (SELECT unnest(json_transform(rtrim(rtrim(trim("
                f"line, {blanks}), ','), {blanks}), {structure})) FROM read_csv({listing}, "
                "columns={'line': 'VARCHAR'}, header=false, delim='\x01', quote='', "
                "escape='', auto_detect=false) WHERE trim(line, " + blanks + ") <> '')")
    required = " AND ".join(f'"{c}" IS NOT NULL' for c in table.required_columns)
    return f"SELECT * FROM ({' UNION ALL '.join(parts)}) WHERE {required}"


def run_duckdb(landing: Path, out: Path, secret: str = LOCAL_SECRET,
               memory_limit: str | None = None, threads: int | None = None) -> None:
    import duckdb

    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    if memory_limit:
        con.execute(f"SET memory_limit='{memory_limit}'")
    if threads:
        con.execute(f"SET threads={threads}")
    con.execute("SET preserve_insertion_order=false")
    con.execute("SET enable_progress_bar=false")
    customer = ", ".join(_landing("customer").column_names)
    curated = ", ".join(c if c != "customerKey" else f"{_hmac_sql(secret, _identity_sql('email'))}"
                        " AS customerKey"
                        for c in schemas.TABLES["customer_curated"].column_names)
    con.execute(f"""
    CREATE TEMP TABLE customer_trusted AS
    SELECT {customer} FROM (
        SELECT *, row_number() OVER (PARTITION BY {_identity_sql('email')}
                                     ORDER BY {_LATEST_FIRST}) AS rn
        FROM ({_duckdb_source('customer', landing / 'customer')}))
    WHERE rn = 1 AND {_CONSENT} IS NOT NULL;
    CREATE TEMP TABLE accelerometer AS
    {_duckdb_source('accelerometer', landing / 'accelerometer')};
    -- trimming with a set of characters costs ~0.8 s per million rows in DuckDB: take each
    -- user spelling once, keep those whose identity consents, and match rows on the spelling
    CREATE TEMP TABLE accelerometer_trusted AS
    SELECT DISTINCT * FROM accelerometer WHERE user IN (
        SELECT user FROM (SELECT DISTINCT user FROM accelerometer)
        WHERE {_identity_sql('user')} IN (SELECT {_identity_sql('email')} FROM customer_trusted));
    DROP TABLE accelerometer;
    CREATE TEMP TABLE customer_curated AS
    SELECT DISTINCT {curated} FROM customer_trusted
    WHERE {_identity_sql('email')} IN (
        SELECT {_identity_sql('user')} FROM (SELECT DISTINCT user FROM accelerometer_trusted));
    CREATE TEMP TABLE step_trainer_trusted AS
    SELECT DISTINCT * FROM ({_duckdb_source('step_trainer', landing / 'step_trainer')})
    WHERE serialNumber IN (SELECT serialNumber FROM customer_curated);
    """)
    # customerKey once per distinct user, not once per joined row
    con.execute(f"""
    COPY (WITH keys AS (SELECT user, {_hmac_sql(secret, _identity_sql('user'))} AS customerKey
                        FROM (SELECT DISTINCT user FROM accelerometer_trusted))
          SELECT s.sensorReadingTime, s.serialNumber, s.distanceFromObject, a.x, a.y, a.z,
                 k.customerKey
          FROM step_trainer_trusted s JOIN accelerometer_trusted a
            ON s.sensorReadingTime = a.timestamp
          JOIN keys k ON a.user = k.user)
    TO '{out}/machine_learning_curated.parquet' (FORMAT parquet)""")
    for table in TABLES[:-1]:
        con.execute(f"COPY {table} TO '{out}/{table}.parquet' (FORMAT parquet)")


# --------------------------------------------------------------------------------------------
# Polars
# --------------------------------------------------------------------------------------------

def _polars_source(source: str, folder: Path):
    """A LazyFrame of the typed rows of a landing folder (columns as in the schema; rows
    missing a required key left out). Epoch columns are read as Float64 (the JSON reader
    refuses `1655564376361.0` as Int64) and kept when whole, like the graph's parser."""
    import polars as pl

    table = _landing(source)
    read = {schemas.STRING: pl.String, schemas.INT64: pl.Float64, schemas.FLOAT64: pl.Float64}
    schema = {key: read[c.type] for c in table.columns for key in (c.name, *c.aliases)}
    plain, comma = [], []
    for (_, commas), files in _file_groups(table, folder).items():
        (comma if commas else plain).extend(str(f) for f in files)
    parts = []
    if plain:
        parts.append(pl.scan_ndjson(plain, schema=schema))
    if comma:  # lines ending in "}," : read as text, trimmed like the graph's parser
        line = (pl.col("line").str.strip_chars(_LINE_BLANKS).str.strip_suffix(",")
                .str.strip_chars_end(_LINE_BLANKS))
        parts.append(pl.scan_lines(comma).select(line).filter(line != "").select(
            pl.col("line").str.json_decode(pl.Struct(schema))).unnest("line"))

    def typed(column: schemas.Column) -> pl.Expr:
        value = pl.coalesce(pl.col(key) for key in (column.name, *column.aliases))
        if column.type == schemas.INT64:
            whole = value.is_finite() & (value == value.floor()) & (value.abs() < 2.0**63)
            value = pl.when(whole).then(value).cast(pl.Int64)
        return value.alias(column.name)

    frame = pl.concat(parts, how="vertical") if len(parts) > 1 else parts[0]
    return frame.select(typed(c) for c in table.columns).drop_nulls(table.required_columns)


def run_polars(landing: Path, out: Path, secret: str = LOCAL_SECRET) -> None:
    import polars as pl

    from stedi_assets.transforms.pseudonyms import customer_key

    out.mkdir(parents=True, exist_ok=True)

    def identity(column: str) -> pl.Expr:
        return pl.col(column).str.strip_chars(IDENTITY_WHITESPACE).str.to_lowercase()

    def with_key(frame: pl.DataFrame, column: str) -> pl.DataFrame:
        return frame.with_columns(pl.col(column).map_elements(
            lambda e: customer_key(e, secret), return_dtype=pl.String).alias("customerKey"))

    # customer_trusted: latest record per identity (the rule of _LATEST_FIRST), with consent
    others = [c for c in _landing("customer").column_names
              if c not in ("email", "lastUpdateDate", _CONSENT)]
    undated, withdrawn = pl.col("lastUpdateDate").is_null(), pl.col(_CONSENT).is_null()
    customer_trusted = (
        _polars_source("customer", landing / "customer")
        .with_columns(identity("email").alias("_identity"), withdrawn.alias("_withdrawn"),
                      pl.when(undated & withdrawn).then(2).when(undated).then(0).otherwise(1)
                      .alias("_tier"))
        .sort("_tier", "lastUpdateDate", "_withdrawn", _CONSENT, *others, "email",
              nulls_last=False)
        .unique("_identity", keep="last")
        .filter(pl.col(_CONSENT).is_not_null())
        .collect(engine="streaming"))
    customer_trusted.select(_landing("customer").column_names).write_parquet(
        out / "customer_trusted.parquet")

    # accelerometer_trusted: readings of consenting identities, exact duplicates removed
    (_polars_source("accelerometer", landing / "accelerometer")
     .join(customer_trusted.lazy().select("_identity"), left_on=identity("user"),
           right_on="_identity", how="semi")
     .unique()
     .sink_parquet(out / "accelerometer_trusted.parquet"))
    accelerometer_trusted = pl.scan_parquet(out / "accelerometer_trusted.parquet")

    # customer_curated: consenting customers with readings, by pseudonymous key
    users = accelerometer_trusted.select(pl.col("user").unique()).collect(engine="streaming")
    readers = users.select(identity("user").alias("_identity")).unique()
    customer_curated = with_key(
        customer_trusted.join(readers, on="_identity", how="semi"), "email"
    ).select(schemas.TABLES["customer_curated"].column_names).unique()
    customer_curated.write_parquet(out / "customer_curated.parquet")

    # step_trainer_trusted: readings of curated customers' devices, exact duplicates removed
    (_polars_source("step_trainer", landing / "step_trainer")
     .join(customer_curated.lazy().select("serialNumber"), on="serialNumber", how="semi")
     .unique()
     .sink_parquet(out / "step_trainer_trusted.parquet"))

    # machine_learning_curated: step readings with the accelerometer readings at that instant
    (pl.scan_parquet(out / "step_trainer_trusted.parquet")
     .join(accelerometer_trusted.select("timestamp", "x", "y", "z", "user"),
           left_on="sensorReadingTime", right_on="timestamp")
     .join(with_key(users, "user").lazy(), on="user", how="left")
     .select(schemas.TABLES["machine_learning_curated"].column_names)
     .sink_parquet(out / "machine_learning_curated.parquet"))


# --------------------------------------------------------------------------------------------
# Comparing outputs
# --------------------------------------------------------------------------------------------

def table_figures(con, source: str | list[str], columns: list[str]) -> tuple[int, int]:
    """(rows, order-independent checksum) of a Parquet table (a file, a glob or a list of
    files, e.g. an Iceberg snapshot's data files) over the given columns, on a DuckDB
    connection."""
    files = [source] if isinstance(source, str) else list(source)
    listing = "[" + ", ".join(_sql_text(str(f)) for f in files) + "]"
    row = con.execute(f"SELECT count(*), coalesce(sum(hash({', '.join(columns)})), 0)::HUGEINT "
                      f"FROM read_parquet({listing})").fetchone()
    return int(row[0]), int(row[1])


def run(peer: str, landing: Path, out: Path, secret: str = LOCAL_SECRET) -> None:
    if peer == "polars":
        run_polars(landing, out, secret)
    else:
        run_duckdb(landing, out, secret, memory_limit="4GB" if peer == "duckdb-4gb" else None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("peer", choices=PEERS)
    parser.add_argument("landing", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--secret", default=LOCAL_SECRET)
    args = parser.parse_args()
    run(args.peer, args.landing, args.out, args.secret)


if __name__ == "__main__":
    main()
