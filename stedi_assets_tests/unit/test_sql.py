"""stedi-sql over a local lakehouse: the seeds' verification queries, read-only, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from stedi_assets.cli import sql_main
from stedi_assets.definitions import Settings
from stedi_assets.deployments import build_storage
from stedi_assets.io.iceberg_io import LocalIcebergIOManager, TableNotMaterializedError
from stedi_assets.io.lakehouse_sql import SqlError, referenced_tables, run_sql
from stedi_assets_tests.support.s3_helpers import failure_messages, materialize_lakehouse
from stedi_assets_tests.support.tiny_landing import (
    CUSTOMERS_WITHOUT_CONSENT,
    EXPECTED_COUNTS,
    write_tiny_landing,
)


@pytest.fixture(scope="module")
def lakehouse(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("sql")
    settings = Settings.from_env({"STEDI_LANDING_ROOT": str(write_tiny_landing(tmp / "landing")),
                                  "STEDI_LAKEHOUSE_ROOT": str(tmp / "lakehouse")})
    result = materialize_lakehouse(settings)
    assert result.success, failure_messages(result)
    return tmp / "lakehouse"


@pytest.fixture
def io_manager(lakehouse) -> LocalIcebergIOManager:
    return LocalIcebergIOManager(root=str(lakehouse))


def test_row_counts_of_every_table(io_manager):
    query = " UNION ALL ".join(
        f"SELECT '{name}' AS table_name, count(*) AS row_count FROM {name}"
        for name in EXPECTED_COUNTS
    )
    result = run_sql(io_manager, query)
    assert dict(zip(result["table_name"], result["row_count"], strict=True)) == EXPECTED_COUNTS


def test_customers_with_null_research_consent(io_manager):
    result = run_sql(io_manager, "SELECT count(*) AS n FROM customer_landing "
                                 "WHERE shareWithResearchAsOfDate IS NULL")
    assert result["n"].to_list() == [CUSTOMERS_WITHOUT_CONSENT]


def test_distinct_emails_and_joins_across_zones(io_manager):
    result = run_sql(io_manager, """
        -- which curated customers own the step readings in machine_learning_curated
        -- (curated tables know customers only by their pseudonymous key)
        SELECT t.email, count(*) AS readings
        FROM machine_learning_curated m
        JOIN customer_curated c USING (serialNumber)
        JOIN customer_trusted t USING (serialNumber)
        GROUP BY t.email ORDER BY t.email""")
    assert result.rows() == [("ann@example.com", 2), ("bob@example.com", 1)]


@pytest.mark.parametrize("statement", [
    "DROP TABLE customer_landing", "CREATE TABLE x AS SELECT * FROM customer_landing",
    "TRUNCATE customer_trusted", "", "/* SELECT */ DELETE FROM customer_trusted",
])
def test_only_reading_statements_run(io_manager, statement):
    with pytest.raises(SqlError, match="only read-only statements are allowed"):
        run_sql(io_manager, statement)


def test_unmaterialized_table_is_named(tmp_path):
    empty = LocalIcebergIOManager(root=str(tmp_path))
    with pytest.raises(TableNotMaterializedError,
                       match="table customer_curated has not been materialized yet"):
        run_sql(empty, "SELECT * FROM customer_curated")


def test_referenced_tables_are_whole_words():
    assert referenced_tables("select * from CUSTOMER_TRUSTED join customer_trusted_x") == \
        ["customer_trusted"]


@pytest.mark.slow
def test_cli_prints_csv_and_reports_errors(lakehouse, monkeypatch, capsys):
    monkeypatch.setenv("STEDI_LAKEHOUSE_ROOT", str(lakehouse))
    monkeypatch.delenv("STEDI_ENV", raising=False)
    assert build_storage(Settings.from_env())[1].root == str(lakehouse)

    assert sql_main(["SELECT count(DISTINCT email) AS emails FROM customer_landing",
                     "--format", "csv"]) == 0
    assert capsys.readouterr().out == "emails\n4\n"

    assert sql_main(["SELECT nosuchcolumn FROM customer_trusted"]) == 2
    assert "stedi-sql: error:" in capsys.readouterr().err


CANARY = "canary-line-that-must-not-be-read"


@pytest.fixture
def outside_file(tmp_path) -> Path:
    """A file outside the lakehouse that a query must not read (a stand-in for /etc/shadow)."""
    path = tmp_path / "shadow.csv"
    path.write_text(f"{CANARY},x\n{CANARY},y\n")
    return path


@pytest.mark.parametrize("template", [
    "SELECT * FROM read_csv('{path}', has_header => false)",
    "SELECT * FROM READ_CSV('{path}')",
    'SELECT * FROM "read_csv"(\'{path}\')',
    "SELECT * FROM `Read_Json`('{path}')",
    "SELECT * FROM read_ndjson /* comment */ ('{path}')",
    "SELECT * FROM read_parquet('{path}')",
    "SELECT * FROM read_ipc('{path}')",
    "WITH x AS (SELECT * FROM read_csv('{path}')) SELECT * FROM customer_landing, x",
    "SELECT (SELECT max(column_1) FROM read_csv('{path}', has_header => false)) AS m "
    "FROM customer_landing",
])
def test_files_outside_the_lakehouse_cannot_be_read(io_manager, outside_file, template):
    with pytest.raises(SqlError, match="stedi-sql reads only the lakehouse tables") as refused:
        run_sql(io_manager, template.format(path=outside_file))
    assert CANARY not in str(refused.value)


def test_plan_check_refuses_any_scan_that_is_not_a_table(io_manager, outside_file):
    """The allow-list behind the spelling check: a planned query may only scan its tables."""
    import polars as pl

    from stedi_assets.io.lakehouse_sql import _check_sources

    frames = {"customer_landing": io_manager.scan_table("customer_landing")}
    own = pl.SQLContext(frames).execute("SELECT count(*) FROM customer_landing", eager=False)
    _check_sources(own, frames)  # the table itself: allowed
    foreign = pl.SQLContext(frames).execute(
        f"SELECT * FROM customer_landing CROSS JOIN read_csv('{outside_file}')", eager=False)
    with pytest.raises(SqlError, match=f"also reads Csv SCAN \\[{outside_file}\\]"):
        _check_sources(foreign, frames)
    other_table = {"customer_trusted": io_manager.scan_table("customer_trusted")}
    with pytest.raises(SqlError, match="reads only the lakehouse tables"):
        _check_sources(own, other_table)


def _one_line_error(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("stedi-sql: error: "), captured.err
    return lines[0]


@pytest.fixture
def cli_env(lakehouse, monkeypatch):
    monkeypatch.setenv("STEDI_LAKEHOUSE_ROOT", str(lakehouse))
    monkeypatch.delenv("STEDI_ENV", raising=False)


@pytest.mark.slow
def test_cli_refuses_outside_files_in_one_line(cli_env, outside_file, capsys):
    assert sql_main([f"SELECT * FROM read_csv('{outside_file}', has_header => false)"]) == 2
    line = _one_line_error(capsys)
    assert "reads only the lakehouse tables" in line and CANARY not in line


@pytest.mark.slow
def test_cli_polars_panic_is_one_line(cli_env, capsys):
    # Polars 2.1 panics (pyo3 PanicException, with a Rust message on stderr) on this cast
    assert sql_main(["SELECT CAST(9223372036854775807 AS TIMESTAMP) AS t"]) == 2
    line = _one_line_error(capsys)
    assert "Polars failed (internal error)" in line and "panicked" not in line


@pytest.mark.slow
def test_cli_cross_join_is_stopped_at_the_memory_limit(cli_env, capsys):
    query = ("SELECT c.*, a.*, b.* FROM customer_landing c CROSS JOIN generate_series(1, 200000) a "
             "CROSS JOIN generate_series(1, 200000) b")
    assert sql_main([query, "--max-memory", "600M", "--timeout", "300"]) == 3
    assert "used more than --max-memory 600 MiB" in _one_line_error(capsys)


@pytest.mark.slow
def test_cli_long_query_is_stopped_at_the_time_limit(cli_env, capsys):
    query = ("SELECT count(*) FROM generate_series(1, 100000) a "
             "CROSS JOIN generate_series(1, 100000) b CROSS JOIN customer_landing c")
    assert sql_main([query, "--timeout", "3"]) == 3
    assert "ran longer than --timeout 3 s" in _one_line_error(capsys)
