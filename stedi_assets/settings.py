"""Settings: the one place that reads the environment (nothing else calls os.environ).

Every variable is declared once, with its default, in stedi_assets/variables.py (which also
generates docs/configuration.md); `from_env` reads them with those defaults. `Settings` groups
them: the core settings, then `aws` (S3 and the Glue Data Catalog), `glue` (Glue jobs), `spark`
and `alerts`. A secret records whether it came from the process environment, so Dagster can be
given an EnvVar instead of its value. Credentials are never read here: boto3 and Polars use the
standard AWS chain themselves.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from stedi_assets import schemas
from stedi_assets.io.s3 import is_s3_uri
from stedi_assets.variables import VARIABLES, default, duration_seconds

ENVIRONMENTS = ("local", "s3", "glue")
ENGINES = ("polars", "spark")
SHARED_DEVICES = ("include", "exclude")
#: Only for local folders: a documented, public key, so local runs need no set-up.
LOCAL_PSEUDONYM_SECRET = "stedi-local-development-only"


def _get(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    return value if value is not None else default(name)


def _default_data_dir() -> Path:
    """<repo>/data for a checkout (editable install); ./data otherwise."""
    repo = Path(__file__).resolve().parents[1]
    if (repo / "pyproject.toml").is_file():
        return repo / "data"
    return Path.cwd() / "data"


def _share(env: Mapping[str, str], name: str) -> float:
    value = _get(env, name)
    try:
        share = float(value)
    except (TypeError, ValueError):
        share = -1.0
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"{name} must be a number between 0 and 1, got {value!r}")
    return share


def _whole(env: Mapping[str, str], name: str, minimum: int) -> int:
    value = (env.get(name) or "").strip() or default(name)
    if not value.isdigit() or int(value) < minimum:
        raise ValueError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


def _switch(env: Mapping[str, str], name: str) -> bool:
    value = (env.get(name) or "").strip().lower() or default(name)
    if value in {"1", "on", "true", "yes"}:
        return True
    if value in {"0", "off", "false", "no"}:
        return False
    raise ValueError(f"{name} must be on or off, got {value!r}")


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    value = (env.get(name) or "").strip().lower() or default(name)
    if value not in choices:
        raise ValueError(f"{name} must be {' or '.join(choices)}, got {value!r}")
    return value


def _in_process_env(env: Mapping[str, str], name: str) -> bool:
    """The setting is set, and to what this process's environment holds: Dagster can then be
    given EnvVar(name), which it resolves from the process environment where it runs."""
    return bool(env.get(name)) and os.environ.get(name) == env.get(name)


@dataclass(frozen=True)
class AwsSettings:
    """S3 and the Glue Data Catalog (STEDI_ENV=s3 and glue)."""

    region: str = default("AWS_REGION")
    s3_endpoint_url: str | None = None
    glue_endpoint_url: str | None = None
    #: empty: no catalog registration
    glue_database: str = default("STEDI_GLUE_DATABASE")
    landing_anonymous: bool = False


@dataclass(frozen=True)
class GlueSettings:
    """The Glue jobs of STEDI_ENV=glue and stedi-deploy (STEDI_GLUE_*)."""

    job_prefix: str = default("STEDI_GLUE_JOB_PREFIX")
    #: None: <lakehouse root>/_glue/
    scripts_uri: str | None = None
    role_arn: str | None = None
    worker_type: str = default("STEDI_GLUE_WORKER_TYPE")
    workers: int = int(default("STEDI_GLUE_WORKERS"))
    #: None: the lakehouse's bucket
    pipes_bucket: str | None = None
    pseudonym_secret_id: str | None = None
    python_modules: str = default("STEDI_GLUE_PYTHON_MODULES")


@dataclass(frozen=True)
class SparkSettings:
    """The Spark session of STEDI_ENGINE=spark."""

    master: str = default("STEDI_SPARK_MASTER")
    remote: str | None = None
    conf: Mapping[str, str] = field(default_factory=dict)

    def session_config(self) -> dict[str, str]:
        """The spark_config of the session: master (or Connect remote), UTC, then the extras.
        The Python workers' interpreter is PYSPARK_PYTHON, set where the session starts
        (engines/spark_engine.LakehouseSpark), not a Spark setting."""
        config = {"spark.remote": self.remote} if self.remote else {"spark.master": self.master}
        config["spark.sql.session.timeZone"] = "UTC"
        config.update(self.conf)
        return config


@dataclass(frozen=True)
class AlertingSettings:
    """Where alerts go besides the Dagster log."""

    webhook_url: str | None = None
    #: the webhook URL (a credential) came from the process environment: Dagster gets an EnvVar
    webhook_url_from_env: bool = False
    ui_url: str = default("STEDI_UI_URL")


@dataclass(frozen=True)
class Settings:
    landing_root: str
    lakehouse_root: str
    min_join_coverage: float = float(default("STEDI_MIN_JOIN_COVERAGE"))
    max_reject_share: float = float(default("STEDI_MAX_REJECT_SHARE"))
    consent_as_of_date: bool = False
    shared_devices: str = default("STEDI_SHARED_DEVICES")
    #: None outside local folders when STEDI_PSEUDONYM_SECRET is not set
    pseudonym_secret: str | None = LOCAL_PSEUDONYM_SECRET
    #: the secret came from the process environment (Dagster then gets it as an EnvVar)
    pseudonym_secret_from_env: bool = False
    env: str = default("STEDI_ENV")
    engine: str = default("STEDI_ENGINE")
    landing_folders: dict[str, str] = field(default_factory=dict)
    #: STEDI_LANDING_CACHE: `auto`, `off` or a folder (see landing_cache_folder)
    landing_cache: str = default("STEDI_LANDING_CACHE")
    automation: bool = True
    sensor_interval_seconds: int = int(default("STEDI_SENSOR_INTERVAL_SECONDS"))
    #: 0: no freshness policy on the curated tables
    freshness_hours: int = int(default("STEDI_FRESHNESS_HOURS"))
    #: STEDI_SNAPSHOT_RETENTION in seconds (0: only the current snapshot is kept)
    snapshot_retention_seconds: int = duration_seconds(
        "STEDI_SNAPSHOT_RETENTION", default("STEDI_SNAPSHOT_RETENTION"))
    #: None: SQLite in a local root, the Glue Data Catalog for s3://
    iceberg_catalog_uri: str | None = None
    aws: AwsSettings = field(default_factory=AwsSettings)
    glue: GlueSettings = field(default_factory=GlueSettings)
    spark: SparkSettings = field(default_factory=SparkSettings)
    alerts: AlertingSettings = field(default_factory=AlertingSettings)

    def landing_cache_folder(self) -> str | None:
        """Where the Polars engine keeps parsed landing files; None when off."""
        choice = self.landing_cache.strip()
        if choice.lower() == "off":
            return None
        if choice.lower() in {"", "auto", "on"}:  # "on" would otherwise be a folder named on
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
        stedi_env = (env.get("STEDI_ENV") or "").strip().lower() or default("STEDI_ENV")
        landing_root = env.get("STEDI_LANDING_ROOT", str(data / "landing"))
        lakehouse_root = env.get("STEDI_LAKEHOUSE_ROOT", str(data / "lakehouse"))
        # The public development key only for local folders (keys made with it can be reversed
        # by anyone with a list of candidate emails); elsewhere the key must be set.
        pseudonym_secret = env.get("STEDI_PSEUDONYM_SECRET") or (
            LOCAL_PSEUDONYM_SECRET if stedi_env == "local"
            and not any(map(is_s3_uri, (landing_root, lakehouse_root))) else None)
        return cls(
            landing_root=landing_root,
            lakehouse_root=lakehouse_root,
            min_join_coverage=_share(env, "STEDI_MIN_JOIN_COVERAGE"),
            max_reject_share=_share(env, "STEDI_MAX_REJECT_SHARE"),
            consent_as_of_date=_switch(env, "STEDI_CONSENT_AS_OF_DATE"),
            shared_devices=_choice(env, "STEDI_SHARED_DEVICES", SHARED_DEVICES),
            pseudonym_secret=pseudonym_secret,
            pseudonym_secret_from_env=_in_process_env(env, "STEDI_PSEUDONYM_SECRET"),
            env=stedi_env,
            engine=_choice(env, "STEDI_ENGINE", ENGINES),
            landing_folders=_source_folders(_get(env, "STEDI_LANDING_PREFIXES")),
            landing_cache=_get(env, "STEDI_LANDING_CACHE"),
            automation=_switch(env, "STEDI_AUTOMATION"),
            sensor_interval_seconds=_whole(env, "STEDI_SENSOR_INTERVAL_SECONDS", 1),
            freshness_hours=_whole(env, "STEDI_FRESHNESS_HOURS", 0),
            snapshot_retention_seconds=duration_seconds(
                "STEDI_SNAPSHOT_RETENTION", _get(env, "STEDI_SNAPSHOT_RETENTION")),
            iceberg_catalog_uri=(env.get("STEDI_ICEBERG_CATALOG_URI") or "").strip() or None,
            aws=_aws(env),
            glue=_glue(env),
            spark=_spark(env),
            alerts=AlertingSettings(
                webhook_url=env.get("STEDI_ALERT_WEBHOOK_URL") or None,
                webhook_url_from_env=_in_process_env(env, "STEDI_ALERT_WEBHOOK_URL"),
                ui_url=_get(env, "STEDI_UI_URL")),
        )


def _aws(env: Mapping[str, str]) -> AwsSettings:
    endpoint = env.get("AWS_ENDPOINT_URL") or None
    return AwsSettings(
        region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or default("AWS_REGION"),
        s3_endpoint_url=env.get("AWS_ENDPOINT_URL_S3") or endpoint,
        glue_endpoint_url=env.get("AWS_ENDPOINT_URL_GLUE") or endpoint,
        glue_database=_get(env, "STEDI_GLUE_DATABASE").strip(),
        landing_anonymous=_switch(env, "STEDI_LANDING_ANONYMOUS"),
    )


def _glue(env: Mapping[str, str]) -> GlueSettings:
    known = {v.name for v in VARIABLES if v.group == "glue"}
    unknown = sorted(k for k in env if k.startswith("STEDI_GLUE_") and k not in known
                     and k != "STEDI_GLUE_DATABASE" and env[k].strip())
    if unknown:
        raise ValueError(f"unknown settings {unknown}; known: {sorted(known)}")

    def value(name: str) -> str | None:
        return (env.get(name) or "").strip() or default(name)

    return GlueSettings(
        job_prefix=value("STEDI_GLUE_JOB_PREFIX"), scripts_uri=value("STEDI_GLUE_SCRIPTS_URI"),
        role_arn=value("STEDI_GLUE_ROLE_ARN"), worker_type=value("STEDI_GLUE_WORKER_TYPE"),
        workers=_whole(env, "STEDI_GLUE_WORKERS", 2),
        pipes_bucket=value("STEDI_GLUE_PIPES_BUCKET"),
        pseudonym_secret_id=value("STEDI_GLUE_PSEUDONYM_SECRET_ID"),
        python_modules=value("STEDI_GLUE_PYTHON_MODULES"),
    )


def _spark(env: Mapping[str, str]) -> SparkSettings:
    try:
        extra = json.loads(env.get("STEDI_SPARK_CONF") or default("STEDI_SPARK_CONF"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"STEDI_SPARK_CONF must be a JSON object: {exc}") from None
    if not isinstance(extra, dict):
        raise ValueError("STEDI_SPARK_CONF must be a JSON object of Spark settings")
    return SparkSettings(master=_get(env, "STEDI_SPARK_MASTER"),
                         remote=env.get("STEDI_SPARK_REMOTE") or None,
                         conf={str(k): str(v) for k, v in extra.items()})


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


