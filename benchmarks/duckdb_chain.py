"""The STEDI chain hand-written in DuckDB SQL: the best single-node peer of the Polars graph.

`python benchmarks/duckdb_chain.py LANDING OUT [--secret S]` reads the JSON-lines landing files
line by line (like the Polars reader: trimmed, BOM and one trailing comma removed, required keys
and types checked), computes the five trusted/curated tables with the same semantics (latest
record per email wins, with the engine's order-free tie-break; semi-joins, exact duplicates
removed, customerKey = HMAC-SHA256 of the email, computed in SQL) and writes
<OUT>/<table>.parquet. Benchmark-only code.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import duckdb

LOCAL_SECRET = "stedi-local-development-only"
TABLES = ("customer_trusted", "accelerometer_trusted", "customer_curated",
          "step_trainer_trusted", "machine_learning_curated")


def _lines(folder: Path) -> str:
    """Every line of every file of a source folder, trimmed like the Polars reader."""
    return (f"SELECT rtrim(rtrim(trim(line, ' \t\r\n\ufeff'), ','), ' \t\r\n') AS line "
            f"FROM read_csv('{folder}/*', columns={{'line': 'VARCHAR'}}, header=false, "
            "delim='\x01', quote='', escape='', auto_detect=false)")


#: The engine's latest-record rule (transforms/polars: latest_customer_records), latest first: the
#: greatest lastUpdateDate; on a tie a record without research consent wins, then the greatest
#: consent date and the greatest values of the other columns in schema order (null is the
#: smallest value everywhere), so the choice never depends on the order records landed in.
_LATEST_FIRST = ", ".join([
    "lastUpdateDate DESC NULLS LAST", "(shareWithResearchAsOfDate IS NULL) DESC",
    "shareWithResearchAsOfDate DESC NULLS LAST",
    *(f"{c} DESC NULLS LAST" for c in (
        "customerName", "phone", "birthDay", "serialNumber", "registrationDate",
        "shareWithPublicAsOfDate", "shareWithFriendsAsOfDate")),
])


def _int(expr: str) -> str:
    return f"coalesce(try_cast({expr} AS BIGINT), try_cast(try_cast({expr} AS DOUBLE) AS BIGINT))"


def _hmac_sql(secret: str, column: str) -> str:
    """HMAC-SHA256(secret, column) in hex, from DuckDB's sha256 over BLOBs (RFC 2104)."""
    key = secret.encode()
    key = hashlib.sha256(key).digest() if len(key) > 64 else key
    key = key.ljust(64, b"\0")
    ipad = bytes(b ^ 0x36 for b in key).hex()
    opad = bytes(b ^ 0x5C for b in key).hex()
    inner = f"unhex(sha256(unhex('{ipad}') || encode({column})))"
    return f"sha256(unhex('{opad}') || {inner})"


def run(landing: Path, out: Path, secret: str = LOCAL_SECRET, threads: int | None = None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads={threads}")
    con.execute("SET preserve_insertion_order=false")
    con.execute(f"""
    CREATE TEMP TABLE customer AS
    WITH j AS (SELECT json_extract_string(line, [
        '$.customerName','$.email','$.phone','$.birthDay','$.serialNumber','$.registrationDate',
        '$.lastUpdateDate','$.shareWithResearchAsOfDate','$.shareWithPublicAsOfDate',
        '$.shareWithFriendsAsOfDate']) AS v FROM ({_lines(landing / 'customer')})
        WHERE json_valid(line) AND line <> '')
    SELECT v[1] AS customerName, v[2] AS email, v[3] AS phone, v[4] AS birthDay,
           v[5] AS serialNumber, {_int('v[6]')} AS registrationDate,
           {_int('v[7]')} AS lastUpdateDate, {_int('v[8]')} AS shareWithResearchAsOfDate,
           {_int('v[9]')} AS shareWithPublicAsOfDate, {_int('v[10]')} AS shareWithFriendsAsOfDate
    FROM j WHERE v[2] IS NOT NULL""")
    con.execute(f"""
    CREATE TEMP TABLE customer_trusted AS
    SELECT * EXCLUDE (rn) FROM (
        SELECT *, row_number() OVER (PARTITION BY email ORDER BY {_LATEST_FIRST}) AS rn
        FROM customer)
    WHERE rn = 1 AND shareWithResearchAsOfDate IS NOT NULL;
    CREATE TEMP TABLE accelerometer_trusted AS
    SELECT DISTINCT user, timestamp, x, y, z FROM (
        SELECT v[1] AS user, {_int('coalesce(v[2], v[3])')} AS timestamp,
               try_cast(v[4] AS DOUBLE) AS x, try_cast(v[5] AS DOUBLE) AS y,
               try_cast(v[6] AS DOUBLE) AS z
        FROM (SELECT json_extract_string(line, ['$.user','$.timestamp','$.timeStamp','$.x',
                                                '$.y','$.z']) AS v
              FROM ({_lines(landing / 'accelerometer')}) WHERE json_valid(line)))
    WHERE user IS NOT NULL AND timestamp IS NOT NULL
      AND user IN (SELECT email FROM customer_trusted);
    CREATE TEMP TABLE customer_curated AS
    SELECT DISTINCT customerName, {_hmac_sql(secret, 'email')} AS customerKey, phone,
           birthDay, serialNumber, registrationDate, lastUpdateDate,
           shareWithResearchAsOfDate, shareWithPublicAsOfDate, shareWithFriendsAsOfDate
    FROM customer_trusted WHERE email IN (SELECT DISTINCT user FROM accelerometer_trusted);
    CREATE TEMP TABLE step_trainer_trusted AS
    SELECT DISTINCT sensorReadingTime, serialNumber, distanceFromObject FROM (
        SELECT {_int('v[1]')} AS sensorReadingTime, v[2] AS serialNumber,
               {_int('v[3]')} AS distanceFromObject
        FROM (SELECT json_extract_string(line, ['$.sensorReadingTime','$.serialNumber',
                                                '$.distanceFromObject']) AS v
              FROM ({_lines(landing / 'step_trainer')}) WHERE json_valid(line)))
    WHERE sensorReadingTime IS NOT NULL AND serialNumber IS NOT NULL
      AND serialNumber IN (SELECT serialNumber FROM customer_curated);
    """)
    con.execute(f"""
    COPY (SELECT s.sensorReadingTime, s.serialNumber, s.distanceFromObject, a.x, a.y, a.z,
                 {_hmac_sql(secret, 'a.user')} AS customerKey
          FROM step_trainer_trusted s JOIN accelerometer_trusted a
            ON s.sensorReadingTime = a.timestamp)
    TO '{out}/machine_learning_curated.parquet' (FORMAT parquet)""")
    for table in TABLES[:-1]:
        con.execute(f"COPY {table} TO '{out}/{table}.parquet' (FORMAT parquet)")


def table_figures(con: duckdb.DuckDBPyConnection, source: str | list[str],
                  columns: list[str]) -> tuple[int, int]:
    """(rows, order-independent checksum) of a Parquet table (a file, a glob or a list of
    files, e.g. an Iceberg snapshot's data files) over the given columns."""
    files = [source] if isinstance(source, str) else list(source)
    listing = "[" + ", ".join(f"'{f}'" for f in files) + "]"
    row = con.execute(f"SELECT count(*), coalesce(sum(hash({', '.join(columns)})), 0)::HUGEINT "
                      f"FROM read_parquet({listing})").fetchone()
    return int(row[0]), int(row[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("landing", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--secret", default=LOCAL_SECRET)
    args = parser.parse_args()
    run(args.landing, args.out, args.secret)


if __name__ == "__main__":
    main()
