"""The AWS Glue job script: one step of the STEDI graph on Spark, reported to Dagster via Pipes.

    glue_job.py --stedi-step customer_trusted --stedi-lakehouse-root s3://lake/stedi
                [--stedi-landing-root s3://landing/] [--stedi-landing-folders '{"customer":
                "customers"}'] [--stedi-consent-as-of-date on] [--stedi-shared-devices exclude]
                [--stedi-pseudonym-secret-id ID]
                [--stedi-aws-region R] [--stedi-s3-endpoint-url URL] ...

Plain PySpark (no `awsglue` needed). A thin shell: arguments -> SparkSession -> the step's
wiring (`glue_steps`) over `transforms/spark` -> Pipes messages. On Glue, Dagster's
PipesGlueClient adds `--dagster-pipes-context/--dagster-pipes-messages`: the context is read
from S3 and the messages written to S3. Started by PipesSubprocessClient (tests, local runs),
the Pipes defaults (environment variables, a messages file) are used instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

import boto3
from dagster_pipes import (
    DAGSTER_PIPES_CONTEXT_CLI_ARGUMENT,
    DAGSTER_PIPES_CONTEXT_ENV_VAR,
    DAGSTER_PIPES_MESSAGES_CLI_ARGUMENT,
    DAGSTER_PIPES_MESSAGES_ENV_VAR,
    PipesContext,
    PipesMappingParamsLoader,
    PipesS3ContextLoader,
    PipesS3MessageWriter,
    open_dagster_pipes,
)

from stedi_assets import check_rules, schemas
from stedi_assets.aws import glue_arguments, glue_steps
from stedi_assets.aws.glue_steps import CheckReport, LandingInput, StepOptions, StepResult
from stedi_assets.figures import plain
from stedi_assets.io import spark_files
from stedi_assets.io.check_verdicts import record_verdict, refuse_blocked
from stedi_assets.io.iceberg_catalog import CatalogConfig
from stedi_assets.io.iceberg_tables import IcebergTables, TableSnapshot
from stedi_assets.io.landing_files import list_s3_landing_files, scan_landing_folder
from stedi_assets.io.landing_reader import check_compression
from stedi_assets.io.local_paths import ensure_table_inside
from stedi_assets.io.s3 import S3Store, is_s3_uri
from stedi_assets.variables import default, duration_seconds

#: How often the job flushes Pipes messages to S3 (seconds).
MESSAGE_INTERVAL = 5


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """The --stedi-* arguments Dagster encoded (aws/glue_arguments.py, both directions)."""
    return glue_arguments.decode(argv, glue_steps.STEP_OUTPUTS)


def _client(service: str, args: argparse.Namespace) -> Any:
    """A boto3 client from the standard AWS credential chain (the Glue job's role on Glue)."""
    endpoint = args.stedi_s3_endpoint_url if service == "s3" else ""
    return boto3.session.Session().client(service, region_name=args.stedi_aws_region or None,
                                          endpoint_url=endpoint or None)


def _cli_value(argv: Sequence[str], name: str) -> str | None:
    argv = list(argv)
    return argv[argv.index(name) + 1] if name in argv[:-1] else None


def open_pipes(argv: Sequence[str], args: argparse.Namespace):
    """The Pipes session: S3 context and messages when launched by PipesGlueClient, the
    defaults of PipesSubprocessClient otherwise."""
    context_param = _cli_value(argv, DAGSTER_PIPES_CONTEXT_CLI_ARGUMENT)
    if context_param is None:
        return open_dagster_pipes()
    s3 = _client("s3", args)
    return open_dagster_pipes(
        context_loader=PipesS3ContextLoader(client=s3),
        message_writer=PipesS3MessageWriter(client=s3, interval=MESSAGE_INTERVAL),
        params_loader=PipesMappingParamsLoader({
            DAGSTER_PIPES_CONTEXT_ENV_VAR: context_param,
            DAGSTER_PIPES_MESSAGES_ENV_VAR:
                _cli_value(argv, DAGSTER_PIPES_MESSAGES_CLI_ARGUMENT) or "",
        }),
    )


def pseudonym_secret(args: argparse.Namespace, pipes: PipesContext) -> str:
    if args.stedi_pseudonym_secret_id:
        secrets = _client("secretsmanager", args)
        return secrets.get_secret_value(SecretId=args.stedi_pseudonym_secret_id)["SecretString"]
    secret = pipes.extras.get("pseudonym_secret")
    if not secret:
        raise ValueError("no pseudonym secret: pass --stedi-pseudonym-secret-id (AWS Secrets "
                         "Manager) or launch the job from Dagster, which sends it in the extras")
    return secret


def _pipes_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """Pipes reads a dict value as {raw_value, type}: send mappings and lists as JSON (every
    figure as a plain Python value, see `figures.plain`)."""
    return {key: {"raw_value": value, "type": "json"} if isinstance(value, dict | list)
            else value for key, value in plain(metadata).items()}


def report(pipes: PipesContext, result: StepResult) -> None:
    """Each written table as a materialization, each check as a check result."""
    for table in result.tables:
        columns = [{"name": c.name, "type": table.column_types.get(c.name, c.type),
                    "description": c.description}
                   for c in schemas.TABLES[table.table].columns]
        pipes.report_asset_materialization(asset_key=table.table, metadata={
            "dagster/row_count": plain(table.rows),
            "dagster/column_schema": {"raw_value": {"columns": columns}, "type": "table_schema"},
            "dagster/uri": {"raw_value": table.uri, "type": "path"},
            **_pipes_metadata(table.metadata),
        })
    for check in result.checks:
        # Pipes has no result description: it travels as metadata, where there is one
        described = {} if check.description is None else {"description": check.description}
        pipes.report_asset_check(asset_key=check.table, check_name=check.name,
                                 passed=bool(check.passed), severity=check.severity,
                                 metadata={**described, **_pipes_metadata(check.metadata)})


class SparkTableIO:
    """The lakehouse's Iceberg tables as Spark reads and writes them: Spark writes the data
    files, pyiceberg commits them (the Glue Data Catalog on AWS). Each table is read at one
    snapshot per step, recorded with what the step writes."""

    def __init__(self, spark: Any, tables: IcebergTables, retention_seconds: int,
                 run_id: str = ""):
        self.spark, self.tables = spark, tables
        self.retention_seconds, self.run_id = retention_seconds, run_id
        self.root = tables.config.root.rstrip("/")
        self._reads: dict[str, TableSnapshot] = {}
        self._commits: dict[str, dict[str, Any]] = {}

    def uri(self, table: str) -> str:
        return self.tables.location(table)

    def read(self, table: str) -> Any:
        if table not in self._reads:  # one snapshot per table for the whole step
            self._reads[table] = self.tables.snapshot(table)
        return spark_files.read_snapshot(self.spark, self._reads[table])

    def write(self, table: str, frame: Any) -> Any:
        from pyspark.sql.pandas.types import to_arrow_schema

        if not is_s3_uri(self.root) and "://" not in self.root:  # a local root (tests, dev)
            ensure_table_inside(self.uri(table), self.root)
        reads = {t: s.snapshot_id for t, s in self._reads.items()}
        refuse_blocked(self.tables, reads, table)  # never from rows that failed a blocking check
        self.tables.before_write(table)
        files = spark_files.write_data_files(self.spark, frame, self.tables, table)
        published, self._commits[table] = self.tables.publish_and_expire(
            table, files, to_arrow_schema(frame.schema), reads, self.run_id,
            self.retention_seconds)
        return spark_files.read_snapshot(
            self.spark, self.tables.snapshot(table, published.snapshot_id))

    def commit_metadata(self, table: str) -> dict[str, Any]:
        return self._commits.get(table, {})

    def record_verdicts(self, checks: Sequence[CheckReport]) -> None:
        """Each blocking check's verdict on the snapshot this step wrote and it judged
        (io/check_verdicts.py): a failure blocks that snapshot for every later reader."""
        for check in checks:
            written = self._commits.get(check.table, {}).get("iceberg/snapshot_id")
            if check_rules.RULES[(check.table, check.name)].blocking and written:
                record_verdict(self.tables, check.table, int(written), check.name,
                               bool(check.passed), self.run_id)


def table_io(spark: Any, args: argparse.Namespace, run_id: str) -> SparkTableIO:
    """The job's tables from its arguments (catalog, endpoints, retention)."""
    config = CatalogConfig(
        root=args.stedi_lakehouse_root,
        database=args.stedi_glue_database or default("STEDI_GLUE_DATABASE"),
        uri=args.stedi_iceberg_catalog_uri or None,
        region=args.stedi_aws_region or default("AWS_REGION"),
        s3_endpoint_url=args.stedi_s3_endpoint_url or None,
        glue_endpoint_url=args.stedi_glue_endpoint_url or None)
    retention = duration_seconds("--stedi-snapshot-retention", args.stedi_snapshot_retention)
    return SparkTableIO(spark, IcebergTables(config), retention, run_id)


def read_landing(spark: Any, args: argparse.Namespace, step: str) -> LandingInput:
    """The source's files listed (local folder or S3 prefix), their lines read by Spark, and
    the lines counted in the raw bytes (on the executors)."""
    from stedi_assets.io import spark_landing_reader  # Spark only where the job runs

    source = step.removeprefix("land_")
    folder = json.loads(args.stedi_landing_folders or "{}").get(source, source)
    store, skipped = None, []
    if is_s3_uri(args.stedi_landing_root):
        store = S3Store(args.stedi_aws_region or "us-east-1",
                        args.stedi_s3_endpoint_url or None)
        files = list_s3_landing_files(args.stedi_landing_root, folder, store)
    else:
        listing = scan_landing_folder(args.stedi_landing_root, folder)
        files, skipped = listing.files, listing.skipped
    for path in files:
        check_compression(path, store)  # gzip only, named .gz: what both engines read alike
    lines = spark_landing_reader.read_landing_lines(spark, files)
    counted = spark_landing_reader.count_landing_lines(spark, files, store)
    return LandingInput(lines, files, sum(counted.values()), tuple(skipped))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    with open_pipes(argv, args) as pipes:
        from pyspark.sql import SparkSession

        from stedi_assets.transforms import spark as spark_engine

        step = args.stedi_step
        spark = SparkSession.builder.appName(f"stedi-{step}").getOrCreate()
        options = StepOptions(
            consent_as_of_date=args.stedi_consent_as_of_date == "on",
            shared_devices=args.stedi_shared_devices,
            pseudonym_secret="" if step.startswith("land_") else pseudonym_secret(args, pipes),
            min_join_coverage=args.stedi_min_join_coverage,
            max_reject_share=args.stedi_max_reject_share,
        )
        pipes.log.info(f"STEDI step {step}: writing {glue_steps.STEP_OUTPUTS[step]} under "
                       f"{args.stedi_lakehouse_root}")
        landing = read_landing(spark, args, step) if step.startswith("land_") else None
        if landing is not None and landing.skipped:  # paths and reasons, never file contents
            pipes.log.warning(f"{len(landing.skipped)} landing entry(ies) skipped (not read):\n"
                              + "\n".join(landing.skipped))
        io = table_io(spark, args, _cli_value(argv, "--JOB_RUN_ID") or "")
        result = glue_steps.run_step(step, spark_engine, io, options, landing)
        io.record_verdicts(result.checks)
        report(pipes, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
