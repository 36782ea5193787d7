"""Resources by deployment: which landing source, IO manager, catalog and engine each
STEDI_ENV / STEDI_ENGINE gets, built from a `Settings` (which alone reads the environment)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dagster import EnvVar

from stedi_assets.alerts import AlertSettings
from stedi_assets.engines.polars_engine import PolarsEngine
from stedi_assets.io.catalog import GlueCatalog, TableCatalog
from stedi_assets.io.iceberg_io import IcebergIOManager, LocalIcebergIOManager, S3IcebergIOManager
from stedi_assets.io.s3 import is_s3_uri, split_s3_uri
from stedi_assets.resources import (
    CheckSettings,
    LandingSource,
    PrivacySettings,
    S3LandingSource,
)
from stedi_assets.settings import ENVIRONMENTS, LOCAL_PSEUDONYM_SECRET, Settings
from stedi_assets.variables import default

if TYPE_CHECKING:
    from stedi_assets.aws.glue_launch import GlueJobs

# Spark (dagster-pyspark) and Glue (dagster-aws Pipes) modules are imported only when chosen:
# they add about a second to every `dagster` command that loads this code location.


def build_storage(settings: Settings) -> tuple[LandingSource, IcebergIOManager, TableCatalog]:
    """The landing source, the lakehouse IO manager and the catalog for STEDI_ENV."""
    if settings.env not in ENVIRONMENTS:
        raise ValueError(f"STEDI_ENV must be one of {ENVIRONMENTS}, got {settings.env!r}")
    landing: LandingSource = (
        S3LandingSource(root=settings.landing_root, folders=settings.landing_folders,
                        region=settings.aws.region, endpoint_url=settings.aws.s3_endpoint_url,
                        anonymous=settings.aws.landing_anonymous)
        if is_s3_uri(settings.landing_root)
        else LandingSource(root=settings.landing_root, folders=settings.landing_folders)
    )
    if settings.env == "local":
        if is_s3_uri(settings.lakehouse_root):
            raise ValueError("STEDI_LAKEHOUSE_ROOT is on S3: set STEDI_ENV=s3 as well")
        catalog = TableCatalog()
        return landing, LocalIcebergIOManager(**_iceberg(settings)), catalog
    if not is_s3_uri(settings.lakehouse_root):
        raise ValueError(f"STEDI_ENV={settings.env} needs STEDI_LAKEHOUSE_ROOT=s3://bucket/"
                         f"prefix/, got {settings.lakehouse_root!r}")
    aws = settings.aws
    catalog = (GlueCatalog(database=aws.glue_database, region=aws.region,
                           endpoint_url=aws.glue_endpoint_url)
               if aws.glue_database else TableCatalog())
    if not aws.glue_database and not settings.iceberg_catalog_uri:
        raise ValueError(f"STEDI_ENV={settings.env} keeps the tables in the Glue Data Catalog: "
                         "set STEDI_GLUE_DATABASE (e.g. stedi), or another catalog "
                         "with STEDI_ICEBERG_CATALOG_URI")
    return landing, S3IcebergIOManager(**_iceberg(settings)), catalog


def _iceberg(settings: Settings) -> dict[str, object]:
    """The IO manager's settings: root, catalog, retention (and S3/Glue endpoints)."""
    aws = settings.aws
    return {"root": settings.lakehouse_root,
            "database": aws.glue_database or default("STEDI_GLUE_DATABASE"),
            "catalog_uri": settings.iceberg_catalog_uri, "region": aws.region,
            "endpoint_url": aws.s3_endpoint_url, "glue_endpoint_url": aws.glue_endpoint_url,
            "snapshot_retention_seconds": settings.snapshot_retention_seconds}


def _pseudonym_secret(settings: Settings) -> str | EnvVar:
    on_s3 = [name for name, root in (("STEDI_LANDING_ROOT", settings.landing_root),
                                     ("STEDI_LAKEHOUSE_ROOT", settings.lakehouse_root))
             if is_s3_uri(root)]
    if not settings.pseudonym_secret:
        where = (f"STEDI_ENV={settings.env}" if settings.env != "local"
                 else f"{' and '.join(on_s3)} {'is' if len(on_s3) == 1 else 'are'} on S3")
        raise ValueError(
            f"STEDI_PSEUDONYM_SECRET must be set when {where}: it keys the pseudonymous "
            "customerKey of the curated tables (keep it in e.g. AWS Secrets Manager); the "
            "public development key is only used with STEDI_ENV=local and local folders"
        )
    if settings.pseudonym_secret == LOCAL_PSEUDONYM_SECRET and (on_s3 or settings.env != "local"):
        raise ValueError(
            "STEDI_PSEUDONYM_SECRET is the public development key: it is only allowed with "
            "STEDI_ENV=local and local folders (anyone can reverse keys made with it); set a "
            "secret key")
    # from the environment it stays an EnvVar: the UI shows its name, never its value
    if settings.pseudonym_secret_from_env:
        return EnvVar("STEDI_PSEUDONYM_SECRET")
    return settings.pseudonym_secret


def _alert_webhook_url(settings: Settings) -> str | EnvVar | None:
    # a Slack webhook URL is a credential: from the environment it reaches Dagster by name only
    if settings.alerts.webhook_url_from_env:
        return EnvVar("STEDI_ALERT_WEBHOOK_URL")
    return settings.alerts.webhook_url


def engine_resources(settings: Settings, io_manager: IcebergIOManager) -> dict[str, object]:
    """The engine and the IO manager that hands it frames of its own kind."""
    if settings.engine == "spark":
        if settings.env != "local":
            raise ValueError("STEDI_ENGINE=spark works with STEDI_ENV=local (local paths, or "
                             "a cluster's shared filesystem); on AWS run Spark as Glue jobs "
                             "with STEDI_ENV=glue")
        from stedi_assets.engines.spark_engine import LakehouseSpark, SparkEngine
        from stedi_assets.io.spark_iceberg import SparkIcebergIOManager

        pyspark = LakehouseSpark(spark_config=settings.spark.session_config())
        return {
            "engine": SparkEngine(pyspark=pyspark),
            "io_manager": SparkIcebergIOManager(**_iceberg(settings), pyspark=pyspark),
        }
    return {"engine": PolarsEngine(landing_cache=settings.landing_cache_folder()),
            "io_manager": io_manager}


def build_glue_jobs(settings: Settings) -> GlueJobs:
    """The Glue jobs of STEDI_ENV=glue (and of stedi-deploy) from the STEDI_GLUE_* settings."""
    from stedi_assets.aws import glue_arguments
    from stedi_assets.aws.glue_launch import GlueJobs

    glue, aws, root = settings.glue, settings.aws, settings.lakehouse_root.rstrip("/")
    if not is_s3_uri(root):
        raise ValueError(f"Glue jobs need STEDI_LAKEHOUSE_ROOT=s3://bucket/prefix/, got {root!r}")
    arguments = glue_arguments.encode({
        "lakehouse_root": root, "landing_root": settings.landing_root,
        "landing_folders": settings.landing_folders,
        "consent_as_of_date": settings.consent_as_of_date,
        "shared_devices": settings.shared_devices,
        "min_join_coverage": settings.min_join_coverage,
        "max_reject_share": settings.max_reject_share,
        "aws_region": aws.region, "s3_endpoint_url": aws.s3_endpoint_url,
        "glue_endpoint_url": aws.glue_endpoint_url, "glue_database": aws.glue_database,
        "iceberg_catalog_uri": settings.iceberg_catalog_uri,
        "snapshot_retention": f"{settings.snapshot_retention_seconds}s",
        "pseudonym_secret_id": glue.pseudonym_secret_id,
    })
    return GlueJobs(
        job_prefix=glue.job_prefix, region=aws.region,
        glue_endpoint_url=aws.glue_endpoint_url, s3_endpoint_url=aws.s3_endpoint_url,
        pipes_bucket=glue.pipes_bucket or split_s3_uri(root)[0], run_arguments=arguments,
        pseudonym_secret=None if glue.pseudonym_secret_id else _pseudonym_secret(settings),
        scripts_uri=glue.scripts_uri or f"{root}/_glue/", role_arn=glue.role_arn,
        worker_type=glue.worker_type, workers=glue.workers, python_modules=glue.python_modules,
    )


def build_resources(settings: Settings) -> dict[str, object]:
    landing, io_manager, catalog = build_storage(settings)
    glue = {"glue": build_glue_jobs(settings)} if settings.env == "glue" else {}
    return {
        **glue,
        **engine_resources(settings, io_manager),
        "landing": landing,
        "catalog": catalog,
        "checks": CheckSettings(min_join_coverage=settings.min_join_coverage,
                                max_reject_share=settings.max_reject_share),
        "privacy": PrivacySettings(
            pseudonym_secret="" if glue else _pseudonym_secret(settings),
            consent_as_of_date=settings.consent_as_of_date,
            shared_devices=settings.shared_devices,
        ),
        "alerts": AlertSettings(webhook_url=_alert_webhook_url(settings),
                                ui_base_url=settings.alerts.ui_url),
    }
