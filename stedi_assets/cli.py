"""Console commands over the lakehouse, configured by the same environment as the graph.

- `stedi-sql "SELECT count(*) FROM customer_trusted"`: read-only SQL over the zone tables, run
  in a child process stopped after --timeout seconds or above --max-memory (resident memory),
  so a runaway query (an accidental cross join) cannot take the machine
- `stedi-ddl`: the CREATE EXTERNAL TABLE statements the Glue catalog registration is equal to
- `stedi-deploy`: upload the Glue job script and package, create or update the Glue jobs
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime

import polars as pl

from stedi_assets import schemas
from stedi_assets.io.catalog import create_table_ddl, iceberg_table_comment
from stedi_assets.io.iceberg_tables import IcebergTableError, TableNotMaterializedError
from stedi_assets.io.lakehouse_sql import SqlError, run_sql
from stedi_assets.io.s3 import StorageError

USER_ERRORS = (SqlError, StorageError, TableNotMaterializedError, IcebergTableError,
               ValueError)


def _storage():
    from stedi_assets.deployments import build_storage
    from stedi_assets.settings import Settings

    settings = Settings.from_env()
    return (settings, *build_storage(settings))


#: Defaults of the stedi-sql limits (0 turns a limit off).
DEFAULT_TIMEOUT_SECONDS = 300.0
DEFAULT_MAX_MEMORY = "50%"  # of this machine's physical memory
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def memory_limit(text: str) -> int | None:
    """'2G', '512M', '50%' (of physical memory) or '0' (no limit) -> bytes or None."""
    value = text.strip().upper().removesuffix("B").removesuffix("I")
    try:
        if value.endswith("%"):
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
            limit = int(total * float(value[:-1]) / 100)
        else:
            unit = value[-1:] if value[-1:] in _UNITS else ""
            limit = int(float(value[: len(value) - len(unit)]) * _UNITS[unit])
    except (ValueError, OSError):
        raise argparse.ArgumentTypeError(f"not a memory size: {text!r} (e.g. 2G, 512M, 50%, "
                                         "0 for no limit)") from None
    if limit < 0:
        raise argparse.ArgumentTypeError(f"a memory size cannot be negative: {text!r}")
    return limit or None


def as_of(text: str) -> dict[str, int]:
    """'8231…' (digits: a snapshot id) or an ISO 8601 time -> {snapshot_id | as_of_ms}."""
    value = text.strip()
    if value.isdigit():
        return {"snapshot_id": int(value)}
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a snapshot id or an ISO 8601 time: {text!r} (e.g. 2026-11-25T09:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return {"as_of_ms": int(moment.timestamp() * 1000)}


def sql_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="stedi-sql",
        description="Run read-only SQL over the lakehouse tables (STEDI_ENV, "
                    "STEDI_LAKEHOUSE_ROOT, ... as for the graph). Only the lakehouse tables "
                    "can be read. Tables: " + ", ".join(schemas.TABLES),
    )
    parser.add_argument("query", nargs="?",
                        help='e.g. "SELECT count(DISTINCT email) FROM customer_landing"')
    parser.add_argument("--as-of", type=as_of, metavar="SNAPSHOT_ID|TIME",
                        help="time travel: read the table at that snapshot id, or every table "
                        "as it was at that time (ISO 8601, e.g. 2026-11-25T09:00:00Z; UTC "
                        "when no zone is given)")
    parser.add_argument("--snapshots", metavar="TABLE", choices=list(schemas.TABLES),
                        help="list the table's snapshots (id, time, rows, run) instead of a "
                        "query")
    parser.add_argument("--format", choices=("table", "csv", "ndjson"), default="table")
    parser.add_argument("--max-rows", type=int, default=50,
                        help="rows shown in table format (default 50)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_SECONDS,
                        metavar="SECONDS", help="stop the query after this many seconds "
                        f"(default {DEFAULT_TIMEOUT_SECONDS:g}; 0: no limit)")
    parser.add_argument("--max-memory", type=memory_limit, default=DEFAULT_MAX_MEMORY,
                        metavar="SIZE", help="stop the query when it uses more memory, e.g. 2G, "
                        f"512M, 25%% (default {DEFAULT_MAX_MEMORY}% of physical memory; 0: no "
                        "limit)")
    args = parser.parse_args(argv)
    if (args.query is None) == (args.snapshots is None):
        parser.error("give a query, or --snapshots TABLE")
    request = {"query": args.query, "format": args.format, "max_rows": args.max_rows,
               "snapshots": args.snapshots, "as_of": args.as_of}
    return _supervise(request, args.timeout or None, args.max_memory)


def _rss_bytes(pid: int) -> int:
    """Resident memory of a process (Linux /proc; 0 where there is none)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _copy_lines(source, target) -> None:
    for line in source:
        target.write(line)
    target.flush()


def _supervise(request: dict, timeout: float | None, max_memory: int | None) -> int:
    """Run the query in a child process (it prints the result itself) and stop it at the
    limits; every failure is one line on stderr."""
    child = subprocess.Popen(
        [sys.executable, "-c", "from stedi_assets.cli import sql_child; sql_child()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    errors: list[str] = []
    readers = [threading.Thread(target=lambda: errors.extend(child.stderr), daemon=True),
               threading.Thread(target=_copy_lines, args=(child.stdout, sys.stdout), daemon=True)]
    for reader in readers:
        reader.start()
    try:
        child.stdin.write(json.dumps(request))
        child.stdin.close()
    except BrokenPipeError:  # the child failed before reading it: its stderr says why
        pass
    started, stopped = time.monotonic(), None
    try:
        while child.poll() is None:
            if timeout and time.monotonic() - started > timeout:
                stopped = f"the query ran longer than --timeout {timeout:g} s and was stopped"
            elif max_memory and _rss_bytes(child.pid) > max_memory:
                stopped = (f"the query used more than --max-memory {max_memory / 2**20:,.0f} "
                           "MiB and was stopped")
            if stopped:
                child.kill()
                break
            time.sleep(0.05)
    except KeyboardInterrupt:
        stopped = "interrupted"
    finally:
        if child.poll() is None:  # interrupted (Ctrl-C): never leave the query running
            child.kill()
        child.wait()
        for reader in readers:
            reader.join(timeout=5)
    if child.returncode == 0:
        return 0
    ours = [line.strip() for line in errors if line.startswith("stedi-sql: error:")]
    if stopped:
        message = stopped
    elif ours:
        print(ours[-1], file=sys.stderr)
        return 2
    elif child.returncode < 0:
        message = (f"the query process was killed by signal {-child.returncode} (out of "
                   "memory?)")
    else:
        last = next((line.strip() for line in reversed(errors) if line.strip()), "")
        message = f"the query failed: {last or f'exit code {child.returncode}'}"
    print(f"stedi-sql: error: {message}", file=sys.stderr)
    return 3


def sql_child() -> None:
    """The child process of stedi-sql: the request as JSON on stdin, the result on stdout."""
    request = json.loads(sys.stdin.read())
    try:
        _, _, io_manager, _ = _storage()
        if request.get("snapshots"):
            result = pl.DataFrame(io_manager.tables.history(request["snapshots"]))
            result = result.with_columns(pl.col("snapshot_id").cast(pl.String))
        else:
            result = run_sql(io_manager, request["query"], **(request.get("as_of") or {}))
    except USER_ERRORS as exc:
        print(f"stedi-sql: error: {exc}", file=sys.stderr)
        sys.exit(2)
    if request["format"] == "csv":
        sys.stdout.write(result.write_csv())
    elif request["format"] == "ndjson":
        sys.stdout.write(result.write_ndjson())
    else:
        with pl.Config(tbl_rows=request["max_rows"], tbl_cols=-1, fmt_str_lengths=80,
                       tbl_hide_dataframe_shape=False):
            print(result)
    sys.exit(0)


def ddl_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="stedi-ddl",
        description="Print the Athena/Glue DDL of the raw landing JSON tables and describe the "
                    "Iceberg tables (registered by every commit), located where the current "
                    "settings put them.",
    )
    parser.add_argument("--database", help="database name (default: STEDI_GLUE_DATABASE or "
                                           "stedi)")
    args = parser.parse_args(argv)
    try:
        settings, landing, io_manager, _ = _storage()
    except USER_ERRORS as exc:
        print(f"stedi-ddl: error: {exc}", file=sys.stderr)
        return 2
    database = args.database or settings.aws.glue_database or "stedi"
    landing_database = f"{database}_landing"
    statements = [
        create_table_ddl(database, table.name, landing.folder(table.source)) if table.source
        else iceberg_table_comment(landing_database if table.zone == "landing" else database,
                                   table.name, io_manager.table_uri(table.name))
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
