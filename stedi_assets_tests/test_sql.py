"""stedi-sql over a local lakehouse: the seeds' verification queries, read-only, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from stedi_assets.cli import sql_main
from stedi_assets.definitions import Settings, build_storage
from stedi_assets.io.lakehouse_sql import SqlError, referenced_tables, run_sql
from stedi_assets.io.parquet import LocalParquetIOManager, TableNotMaterializedError
from stedi_assets_tests.s3_helpers import failure_messages, materialize_lakehouse
from stedi_assets_tests.tiny_landing import (
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
def io_manager(lakehouse) -> LocalParquetIOManager:
    return LocalParquetIOManager(root=str(lakehouse))


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
    empty = LocalParquetIOManager(root=str(tmp_path))
    with pytest.raises(TableNotMaterializedError,
                       match="table customer_curated has not been materialized yet"):
        run_sql(empty, "SELECT * FROM customer_curated")


def test_referenced_tables_are_whole_words():
    assert referenced_tables("select * from CUSTOMER_TRUSTED join customer_trusted_x") == \
        ["customer_trusted"]


def test_cli_prints_csv_and_reports_errors(lakehouse, monkeypatch, capsys):
    monkeypatch.setenv("STEDI_LAKEHOUSE_ROOT", str(lakehouse))
    monkeypatch.delenv("STEDI_ENV", raising=False)
    assert build_storage(Settings.from_env())[1].root == str(lakehouse)

    assert sql_main(["SELECT count(DISTINCT email) AS emails FROM customer_landing",
                     "--format", "csv"]) == 0
    assert capsys.readouterr().out == "emails\n4\n"

    assert sql_main(["SELECT nosuchcolumn FROM customer_trusted"]) == 2
    assert "stedi-sql: error:" in capsys.readouterr().err
