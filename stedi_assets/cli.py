"""Console commands over the lakehouse, configured by the same environment as the graph.

- `stedi-sql "SELECT count(*) FROM customer_trusted"`: read-only SQL over the zone tables
- `stedi-ddl`: the CREATE EXTERNAL TABLE statements the Glue catalog registration is equal to
- `stedi-deploy`: upload the Glue job script and package, create or update the Glue jobs
"""

from __future__ import annotations

import argparse
import sys

import polars as pl

from stedi_assets import schemas
from stedi_assets.aws.catalog import create_table_ddl
from stedi_assets.io.lakehouse_sql import SqlError, run_sql
from stedi_assets.io.parquet import TableNotMaterializedError
from stedi_assets.io.s3 import StorageError

USER_ERRORS = (SqlError, StorageError, TableNotMaterializedError, ValueError)


def _storage():
    from stedi_assets.deployments import build_storage
    from stedi_assets.settings import Settings

    settings = Settings.from_env()
    return (settings, *build_storage(settings))


def sql_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="stedi-sql",
        description="Run read-only SQL over the lakehouse tables (STEDI_ENV, "
                    "STEDI_LAKEHOUSE_ROOT, ... as for the graph). Tables: "
                    + ", ".join(schemas.TABLES),
    )
    parser.add_argument("query", help='e.g. "SELECT count(DISTINCT email) FROM customer_landing"')
    parser.add_argument("--format", choices=("table", "csv", "ndjson"), default="table")
    parser.add_argument("--max-rows", type=int, default=50,
                        help="rows shown in table format (default 50)")
    args = parser.parse_args(argv)
    try:
        _, _, io_manager, _ = _storage()
        result = run_sql(io_manager, args.query)
    except USER_ERRORS as exc:
        print(f"stedi-sql: error: {exc}", file=sys.stderr)
        return 2
    if args.format == "csv":
        sys.stdout.write(result.write_csv())
    elif args.format == "ndjson":
        sys.stdout.write(result.write_ndjson())
    else:
        with pl.Config(tbl_rows=args.max_rows, tbl_cols=-1, fmt_str_lengths=80,
                       tbl_hide_dataframe_shape=False):
            print(result)
    return 0


def ddl_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="stedi-ddl",
        description="Print CREATE EXTERNAL TABLE DDL (Athena/Glue) for every STEDI table, "
                    "located where the current settings put them.",
    )
    parser.add_argument("--database", help="database name (default: STEDI_GLUE_DATABASE or "
                                           "stedi)")
    args = parser.parse_args(argv)
    try:
        settings, landing, io_manager, _ = _storage()
    except USER_ERRORS as exc:
        print(f"stedi-ddl: error: {exc}", file=sys.stderr)
        return 2
    database = args.database or settings.glue_database or "stedi"
    statements = [
        create_table_ddl(
            database, table.name,
            landing.folder(table.source) if table.source
            else io_manager.table_uri(table.name),
        )
        for table in schemas.TABLES.values()
    ]
    print(f"CREATE DATABASE IF NOT EXISTS `{database}`;\n")
    print("\n\n".join(statements))
    return 0


def deploy_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="stedi-deploy",
        description="Upload the Glue job script and the stedi_assets package to "
                    "STEDI_GLUE_SCRIPTS_URI and create or update one AWS Glue job per step "
                    "(Glue 5.0; STEDI_GLUE_JOB_PREFIX, STEDI_GLUE_ROLE_ARN, "
                    "STEDI_GLUE_WORKER_TYPE, STEDI_GLUE_WORKERS). Safe to run again.",
    )
    parser.parse_args(argv)
    from stedi_assets.aws.glue_deploy import DeployError, deploy
    from stedi_assets.deployments import build_glue_jobs
    from stedi_assets.settings import Settings

    try:
        deploy(build_glue_jobs(Settings.from_env()))
    except (DeployError, *USER_ERRORS) as exc:
        print(f"stedi-deploy: error: {exc}", file=sys.stderr)
        return 2
    return 0
