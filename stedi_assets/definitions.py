"""The one place that reads the environment and picks engine, storage and settings.

- STEDI_ENV: `local` (default; files on this machine, no catalog), `s3` (lakehouse on S3,
  tables registered in the Glue Data Catalog) or `glue` (as s3, but every step runs as an AWS
  Glue job launched through Dagster Pipes; see the README and the STEDI_GLUE_* settings)
- STEDI_LANDING_ROOT: folder or s3://bucket/prefix/ holding customer/, accelerometer/,
  step_trainer/ (default <repo>/data/landing)
- STEDI_LANDING_PREFIXES: rename source folders, e.g. `customer=customers` for the seeds'
  s3://cd0030bucket/ layout (default: none; each source's folder is its name)
- STEDI_LANDING_ANONYMOUS: 1 reads an s3:// landing root unsigned (public bucket; default 0)
- STEDI_LAKEHOUSE_ROOT: where the <zone>/<table>/ Parquet tables go (default <repo>/data/lakehouse;
  must be s3://bucket/prefix/ when STEDI_ENV=s3)
- STEDI_GLUE_DATABASE: Glue database for the s3 environment (default `stedi`; empty = no catalog)
- AWS_REGION / AWS_DEFAULT_REGION: region (default us-east-1)
- AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL_GLUE): custom endpoint, e.g. MinIO
- STEDI_MIN_JOIN_COVERAGE: the join-coverage checks WARN below this share (default 0.5)
- STEDI_MAX_REJECT_SHARE: the quarantine-rate checks WARN above this share (default 0.01)
- STEDI_CONSENT_AS_OF_DATE: `on` drops accelerometer readings taken before the customer's
  research consent date (default off)
- STEDI_PSEUDONYM_SECRET: HMAC key of the pseudonymous customerKey; required outside the
  local environment (locally it defaults to a public development key, LOCAL_PSEUDONYM_SECRET)
- STEDI_ALERT_WEBHOOK_URL: where alerts are POSTed as JSON (default: none, log only)
- STEDI_UI_URL: base URL of the Dagster UI used in alert links (default http://127.0.0.1:3000)
- STEDI_AUTOMATION: `on` (default) starts the landing sensor and declarative automation
  with `dagster dev`; `off` leaves them stopped (they can still be started in the UI)
- STEDI_LANDING_CACHE: folder where the Polars engine keeps each landing file's parsed rows so
  a landing step parses only new or rewritten files (default `auto`: <lakehouse root>/
  _landing_cache for a local lakehouse, off for one on S3; `off` parses everything every run)
- STEDI_ENGINE: polars (default) or spark
- STEDI_SPARK_MASTER: Spark master URL for STEDI_ENGINE=spark (default local[*])
- STEDI_SPARK_REMOTE: Spark Connect URL (sc://host:15002); used instead of the master
- STEDI_SPARK_CONF: extra Spark settings as a JSON object, e.g. {"spark.driver.memory": "4g"}
- STEDI_GLUE_JOB_PREFIX: Glue job names are <prefix><step> (default `stedi-`)
- STEDI_GLUE_SCRIPTS_URI: where `stedi-deploy` puts the job script and package (default
  <lakehouse root>/_glue/)
- STEDI_GLUE_ROLE_ARN: IAM role the Glue jobs run as (needed by `stedi-deploy`)
- STEDI_GLUE_WORKER_TYPE / STEDI_GLUE_WORKERS: worker type and count (default G.1X, 2)
- STEDI_GLUE_PIPES_BUCKET: bucket for the Pipes context and messages (default: the lakehouse's)
- STEDI_GLUE_PSEUDONYM_SECRET_ID: Secrets Manager secret the jobs read the pseudonym key from
  (default none: Dagster sends STEDI_PSEUDONYM_SECRET in the Pipes context, never as argument)
- STEDI_GLUE_PYTHON_MODULES: pip requirements the jobs install (default
  dagster-pipes==1.13.27,polars==2.1.0)
Credentials are never read here: boto3 and Polars use the standard AWS chain themselves.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from dagster import Definitions, EnvVar, in_process_executor, map_asset_specs

from stedi_assets import schemas
from stedi_assets.alerts import AlertSettings, stedi_alerts
from stedi_assets.assets import curated, landing, trusted
from stedi_assets.assets.common import KINDS
from stedi_assets.automation import automation_sensors, full_graph_job, stedi_daily
from stedi_assets.aws.catalog import GlueCatalog, TableCatalog
from stedi_assets.io.parquet import LocalParquetIOManager, ParquetIOManager, S3ParquetIOManager
from stedi_assets.io.s3 import is_s3_uri, split_s3_uri
from stedi_assets.resources import (
    CheckSettings,
    LandingSource,
    PolarsEngine,
    PrivacySettings,
    S3LandingSource,
)

if TYPE_CHECKING:
    from stedi_assets.aws.glue_launch import GlueJobs

# Spark (dagster-pyspark) and Glue (dagster-aws Pipes) modules are imported only when chosen:
# they add about a second to every `dagster` command that loads this code location.

ENVIRONMENTS = ("local", "s3", "glue")
ENGINES = ("polars", "spark")
#: Only for the local environment: a documented, public key, so local runs need no set-up.
LOCAL_PSEUDONYM_SECRET = "stedi-local-development-only"


def _default_data_dir() -> Path:
    """<repo>/data for a checkout (editable install); ./data otherwise."""
    repo = Path(__file__).resolve().parents[1]
    if (repo / "pyproject.toml").is_file():
        return repo / "data"
    return Path.cwd() / "data"


def _share(env: Mapping[str, str], name: str, default: str) -> float:
    value = env.get(name, default)
    try:
        share = float(value)
    except ValueError:
        share = -1.0
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"{name} must be a number between 0 and 1, got {value!r}")
    return share


def _switch(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = env.get(name, "").strip().lower()
    if not value:
        return default
    if value in {"1", "on", "true", "yes"}:
        return True
    if value in {"0", "off", "false", "no"}:
        return False
    raise ValueError(f"{name} must be on or off, got {value!r}")


@dataclass(frozen=True)
class Settings:
    landing_root: str
    lakehouse_root: str
    min_join_coverage: float
    alert_webhook_url: str | None = None
    ui_url: str = "http://127.0.0.1:3000"
    automation: bool = True
    max_reject_share: float = 0.01
    consent_as_of_date: bool = False
    #: None outside the local environment when STEDI_PSEUDONYM_SECRET is not set
    pseudonym_secret: str | None = LOCAL_PSEUDONYM_SECRET
    env: str = "local"
    landing_folders: dict[str, str] = field(default_factory=dict)
    landing_anonymous: bool = False
    glue_database: str = "stedi"
    aws_region: str = "us-east-1"
    s3_endpoint_url: str | None = None
    glue_endpoint_url: str | None = None
    engine: str = "polars"
    spark_config: Mapping[str, str] = field(default_factory=dict)
    #: STEDI_GLUE_* for STEDI_ENV=glue and stedi-deploy (see the module docstring)
    glue: dict[str, str] = field(default_factory=dict)
    #: STEDI_LANDING_CACHE: `auto`, `off` or a folder (see landing_cache_folder)
    landing_cache: str = "auto"

    def landing_cache_folder(self) -> str | None:
        """Where the Polars engine keeps parsed landing files; None when off."""
        choice = self.landing_cache.strip()
        if choice.lower() == "off":
            return None
        if choice.lower() in {"", "auto"}:
            if is_s3_uri(self.lakehouse_root):
                return None
            return str(Path(self.lakehouse_root) / "_landing_cache")
        if is_s3_uri(choice):
            raise ValueError(f"STEDI_LANDING_CACHE must be a local folder, `auto` or `off`, "
                             f"got {choice!r}")
        return choice

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        data = _default_data_dir()
        min_join_coverage = _share(env, "STEDI_MIN_JOIN_COVERAGE", "0.5")
        stedi_env = env.get("STEDI_ENV", "local").strip().lower() or "local"
        endpoint = env.get("AWS_ENDPOINT_URL") or None
        glue = {k[len("STEDI_GLUE_"):].lower(): v.strip() for k, v in env.items()
                if k.startswith("STEDI_GLUE_") and k != "STEDI_GLUE_DATABASE" and v.strip()}
        # Locally a public development key; elsewhere it must come from the environment.
        pseudonym_secret = env.get("STEDI_PSEUDONYM_SECRET") or (
            LOCAL_PSEUDONYM_SECRET if stedi_env == "local" else None)
        return cls(
            landing_root=env.get("STEDI_LANDING_ROOT", str(data / "landing")),
            lakehouse_root=env.get("STEDI_LAKEHOUSE_ROOT", str(data / "lakehouse")),
            min_join_coverage=min_join_coverage,
            max_reject_share=_share(env, "STEDI_MAX_REJECT_SHARE", "0.01"),
            consent_as_of_date=_switch(env, "STEDI_CONSENT_AS_OF_DATE", default=False),
            pseudonym_secret=pseudonym_secret,
            alert_webhook_url=env.get("STEDI_ALERT_WEBHOOK_URL") or None,
            ui_url=env.get("STEDI_UI_URL", "http://127.0.0.1:3000"),
            automation=_switch(env, "STEDI_AUTOMATION", default=True),
            env=stedi_env,
            landing_folders=_source_folders(env.get("STEDI_LANDING_PREFIXES", "")),
            landing_anonymous=_switch(env, "STEDI_LANDING_ANONYMOUS", default=False),
            glue_database=env.get("STEDI_GLUE_DATABASE", "stedi").strip(),
            aws_region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            s3_endpoint_url=env.get("AWS_ENDPOINT_URL_S3") or endpoint,
            glue_endpoint_url=env.get("AWS_ENDPOINT_URL_GLUE") or endpoint,
            glue=glue,
            landing_cache=env.get("STEDI_LANDING_CACHE", "auto"),
            **_engine_settings(env),
        )


def _source_folders(spec: str) -> dict[str, str]:
    """'customer=customers,step_trainer=step' -> {'customer': 'customers', ...}."""
    sources = [t.source for t in schemas.LANDING_TABLES]
    folders = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        source, sep, folder = (part.strip() for part in item.partition("="))
        if not sep or source not in sources or not folder:
            raise ValueError(f"STEDI_LANDING_PREFIXES wants source=folder pairs with a source "
                             f"in {sources}, got {item!r}")
        folders[source] = folder
    return folders


def build_storage(settings: Settings) -> tuple[LandingSource, ParquetIOManager, TableCatalog]:
    """The landing source, the lakehouse IO manager and the catalog for STEDI_ENV."""
    if settings.env not in ENVIRONMENTS:
        raise ValueError(f"STEDI_ENV must be one of {ENVIRONMENTS}, got {settings.env!r}")
    landing: LandingSource = (
        S3LandingSource(root=settings.landing_root, folders=settings.landing_folders,
                        region=settings.aws_region, endpoint_url=settings.s3_endpoint_url,
                        anonymous=settings.landing_anonymous)
        if is_s3_uri(settings.landing_root)
        else LandingSource(root=settings.landing_root, folders=settings.landing_folders)
    )
    if settings.env == "local":
        if is_s3_uri(settings.lakehouse_root):
            raise ValueError("STEDI_LAKEHOUSE_ROOT is on S3: set STEDI_ENV=s3 as well")
        catalog = TableCatalog()
        return landing, LocalParquetIOManager(root=settings.lakehouse_root), catalog
    if not is_s3_uri(settings.lakehouse_root):
        raise ValueError(f"STEDI_ENV={settings.env} needs STEDI_LAKEHOUSE_ROOT=s3://bucket/"
                         f"prefix/, got {settings.lakehouse_root!r}")
    catalog = (GlueCatalog(database=settings.glue_database, region=settings.aws_region,
                           endpoint_url=settings.glue_endpoint_url)
               if settings.glue_database else TableCatalog())
    io_manager = S3ParquetIOManager(root=settings.lakehouse_root, region=settings.aws_region,
                                    endpoint_url=settings.s3_endpoint_url, catalog=catalog)
    return landing, io_manager, catalog


def _pseudonym_secret(settings: Settings) -> str | EnvVar:
    if not settings.pseudonym_secret:
        raise ValueError(
            f"STEDI_PSEUDONYM_SECRET must be set when STEDI_ENV={settings.env}: it keys the "
            "pseudonymous customerKey of the curated tables (keep it in e.g. AWS Secrets "
            "Manager); the local development key is only used with STEDI_ENV=local"
        )
    # from the environment it stays an EnvVar: the UI shows its name, never its value
    if os.environ.get("STEDI_PSEUDONYM_SECRET") == settings.pseudonym_secret:
        return EnvVar("STEDI_PSEUDONYM_SECRET")
    return settings.pseudonym_secret


def _engine_settings(env: Mapping[str, str]) -> dict[str, object]:
    """STEDI_ENGINE and, for spark, the session settings (STEDI_SPARK_*)."""
    engine = env.get("STEDI_ENGINE", "polars").strip().lower()
    if engine not in ENGINES:
        raise ValueError(f"STEDI_ENGINE must be one of {ENGINES}, got {engine!r}")
    remote = env.get("STEDI_SPARK_REMOTE")
    master = env.get("STEDI_SPARK_MASTER", "local[*]")
    config = {"spark.remote": remote} if remote else {"spark.master": master}
    config["spark.sql.session.timeZone"] = "UTC"
    if not remote and master.startswith("local"):
        config["spark.pyspark.python"] = sys.executable  # Python workers match the driver
    try:
        extra = json.loads(env.get("STEDI_SPARK_CONF") or "{}")
    except json.JSONDecodeError as exc:
        raise ValueError(f"STEDI_SPARK_CONF must be a JSON object: {exc}") from None
    if not isinstance(extra, dict):
        raise ValueError("STEDI_SPARK_CONF must be a JSON object of Spark settings")
    config.update({str(k): str(v) for k, v in extra.items()})
    return {"engine": engine, "spark_config": config}


def engine_resources(settings: Settings, io_manager: ParquetIOManager) -> dict[str, object]:
    """The engine and the IO manager that hands it frames of its own kind."""
    if settings.engine == "spark":
        if settings.env != "local":
            raise ValueError("STEDI_ENGINE=spark works with STEDI_ENV=local (local paths, or "
                             "a cluster's shared filesystem); on AWS run Spark as Glue jobs "
                             "with STEDI_ENV=glue")
        from dagster_pyspark import PySparkResource

        from stedi_assets.io.spark_parquet import SparkParquetIOManager
        from stedi_assets.spark_resources import SparkEngine

        pyspark = PySparkResource(spark_config=dict(settings.spark_config))
        return {
            "engine": SparkEngine(pyspark=pyspark),
            "io_manager": SparkParquetIOManager(root=settings.lakehouse_root, pyspark=pyspark),
        }
    return {"engine": PolarsEngine(landing_cache=settings.landing_cache_folder()),
            "io_manager": io_manager}


def build_glue_jobs(settings: Settings) -> GlueJobs:
    """The Glue jobs of STEDI_ENV=glue (and of stedi-deploy) from the STEDI_GLUE_* settings."""
    from stedi_assets.aws.glue_launch import GlueJobs

    glue, root = settings.glue, settings.lakehouse_root.rstrip("/")
    if not is_s3_uri(root):
        raise ValueError(f"Glue jobs need STEDI_LAKEHOUSE_ROOT=s3://bucket/prefix/, got {root!r}")
    known = {"job_prefix", "scripts_uri", "role_arn", "worker_type", "workers", "pipes_bucket",
             "pseudonym_secret_id", "python_modules"}
    if set(glue) - known:
        raise ValueError(f"unknown settings {sorted(f'STEDI_GLUE_{k.upper()}' for k in glue)}"
                         f"; known: {sorted(f'STEDI_GLUE_{k.upper()}' for k in known)}")
    if not glue.get("workers", "2").isdigit() or int(glue.get("workers", "2")) < 2:
        raise ValueError(f"STEDI_GLUE_WORKERS must be a whole number >= 2, got "
                         f"{glue.get('workers')!r}")
    secret_id = glue.get("pseudonym_secret_id", "")
    arguments = {
        "--stedi-lakehouse-root": root, "--stedi-landing-root": settings.landing_root,
        "--stedi-landing-folders": json.dumps(settings.landing_folders, sort_keys=True),
        "--stedi-consent-as-of-date": "on" if settings.consent_as_of_date else "off",
        "--stedi-min-join-coverage": str(settings.min_join_coverage),
        "--stedi-max-reject-share": str(settings.max_reject_share),
        "--stedi-aws-region": settings.aws_region,
        **({"--stedi-s3-endpoint-url": settings.s3_endpoint_url}
           if settings.s3_endpoint_url else {}),
        **({"--stedi-pseudonym-secret-id": secret_id} if secret_id else {}),
    }
    return GlueJobs(
        job_prefix=glue.get("job_prefix", "stedi-"), region=settings.aws_region,
        glue_endpoint_url=settings.glue_endpoint_url, s3_endpoint_url=settings.s3_endpoint_url,
        pipes_bucket=glue.get("pipes_bucket") or split_s3_uri(root)[0], run_arguments=arguments,
        pseudonym_secret=None if secret_id else _pseudonym_secret(settings),
        scripts_uri=glue.get("scripts_uri", f"{root}/_glue/"), role_arn=glue.get("role_arn"),
        worker_type=glue.get("worker_type", "G.1X"), workers=int(glue.get("workers", "2")),
        python_modules=glue.get("python_modules", "dagster-pipes==1.13.27,polars==2.1.0"),
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
        ),
        "alerts": AlertSettings(webhook_url=settings.alert_webhook_url,
                                ui_base_url=settings.ui_url),
    }


all_assets = [*landing.landing_assets, *trusted.trusted_assets, *curated.curated_assets]
all_asset_checks = [*landing.landing_checks, *trusted.trusted_checks, *curated.curated_checks]


def build_definitions(settings: Settings, **resource_overrides: object) -> Definitions:
    # Kinds show the engine that computes the tables (the asset modules default to polars).
    kinds = {settings.engine, *(KINDS - set(ENGINES))}
    if settings.env == "glue":
        from stedi_assets.assets.glue import glue_assets
    return Definitions(
        assets=glue_assets(all_assets, all_asset_checks) if settings.env == "glue" else
        map_asset_specs(lambda spec: spec.replace_attributes(kinds=kinds), all_assets),
        # on Glue the checks run in the jobs and come back through Pipes with the tables
        asset_checks=[] if settings.env == "glue" else all_asset_checks,
        resources={**build_resources(settings), **resource_overrides},
        jobs=[full_graph_job],
        schedules=[stedi_daily],
        sensors=[stedi_alerts, *automation_sensors(settings.automation)],
        # One process for the whole run: a process per step costs seconds each on a small box.
        executor=in_process_executor,
    )


defs = build_definitions(Settings.from_env())
