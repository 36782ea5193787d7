"""Settings: the one place that reads the environment (nothing else calls os.environ).

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
- STEDI_SHARED_DEVICES: `include` (default) keeps a Step Trainer's readings once one of its
  owners consented; `exclude` drops the readings of devices that also belong to a customer
  without research consent (from step_trainer_trusted and machine_learning_curated)
- STEDI_PSEUDONYM_SECRET: HMAC key of the pseudonymous customerKey; required unless STEDI_ENV
  is local and both roots are local folders (then a public development key,
  LOCAL_PSEUDONYM_SECRET, is used and every run that uses it logs a warning)
- STEDI_ALERT_WEBHOOK_URL: where alerts are POSTed as JSON (default: none, log only); a
  credential, so Dagster gets it as EnvVar("STEDI_ALERT_WEBHOOK_URL"), as the pseudonym secret
- STEDI_UI_URL: base URL of the Dagster UI used in alert links (default http://127.0.0.1:3000)
- STEDI_AUTOMATION: `on` (default) starts the landing sensor and declarative automation
  with `dagster dev`; `off` leaves them stopped (they can still be started in the UI)
- STEDI_SENSOR_INTERVAL_SECONDS: how often the landing sensor and the automation sensor run
  (default 15)
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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from stedi_assets import schemas
from stedi_assets.io.s3 import is_s3_uri

ENVIRONMENTS = ("local", "s3", "glue")
ENGINES = ("polars", "spark")
SHARED_DEVICES = ("include", "exclude")
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


def _seconds(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name, "").strip() or str(default)
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{name} must be a whole number of seconds >= 1, got {value!r}")
    return int(value)


def _in_process_env(env: Mapping[str, str], name: str) -> bool:
    """The setting is set, and to what this process's environment holds: Dagster can then be
    given EnvVar(name), which it resolves from the process environment where it runs."""
    return bool(env.get(name)) and os.environ.get(name) == env.get(name)


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
    #: the webhook URL (a credential) came from STEDI_ALERT_WEBHOOK_URL: Dagster gets an EnvVar
    alert_webhook_url_from_env: bool = False
    ui_url: str = "http://127.0.0.1:3000"
    automation: bool = True
    sensor_interval_seconds: int = 15
    max_reject_share: float = 0.01
    consent_as_of_date: bool = False
    #: None outside the local environment when STEDI_PSEUDONYM_SECRET is not set
    pseudonym_secret: str | None = LOCAL_PSEUDONYM_SECRET
    #: the secret came from STEDI_PSEUDONYM_SECRET (Dagster then gets it as an EnvVar)
    pseudonym_secret_from_env: bool = False
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
    #: STEDI_SHARED_DEVICES: `include` or `exclude` (see the module docstring)
    shared_devices: str = "include"

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
            min_join_coverage=min_join_coverage,
            max_reject_share=_share(env, "STEDI_MAX_REJECT_SHARE", "0.01"),
            consent_as_of_date=_switch(env, "STEDI_CONSENT_AS_OF_DATE", default=False),
            pseudonym_secret=pseudonym_secret,
            pseudonym_secret_from_env=_in_process_env(env, "STEDI_PSEUDONYM_SECRET"),
            alert_webhook_url=env.get("STEDI_ALERT_WEBHOOK_URL") or None,
            alert_webhook_url_from_env=_in_process_env(env, "STEDI_ALERT_WEBHOOK_URL"),
            ui_url=env.get("STEDI_UI_URL", "http://127.0.0.1:3000"),
            automation=_switch(env, "STEDI_AUTOMATION", default=True),
            sensor_interval_seconds=_seconds(env, "STEDI_SENSOR_INTERVAL_SECONDS", 15),
            env=stedi_env,
            landing_folders=_source_folders(env.get("STEDI_LANDING_PREFIXES", "")),
            landing_anonymous=_switch(env, "STEDI_LANDING_ANONYMOUS", default=False),
            glue_database=env.get("STEDI_GLUE_DATABASE", "stedi").strip(),
            aws_region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            s3_endpoint_url=env.get("AWS_ENDPOINT_URL_S3") or endpoint,
            glue_endpoint_url=env.get("AWS_ENDPOINT_URL_GLUE") or endpoint,
            glue=glue,
            landing_cache=env.get("STEDI_LANDING_CACHE", "auto"),
            shared_devices=_shared_devices(env),
            **_engine_settings(env),
        )


def _shared_devices(env: Mapping[str, str]) -> str:
    value = env.get("STEDI_SHARED_DEVICES", "").strip().lower() or "include"
    if value not in SHARED_DEVICES:
        raise ValueError(f"STEDI_SHARED_DEVICES must be include or exclude, got {value!r}")
    return value


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


def _engine_settings(env: Mapping[str, str]) -> dict[str, object]:
    """STEDI_ENGINE and, for spark, the session settings (STEDI_SPARK_*)."""
    engine = env.get("STEDI_ENGINE", "polars").strip().lower()
    if engine not in ENGINES:
        raise ValueError(f"STEDI_ENGINE must be one of {ENGINES}, got {engine!r}")
    remote = env.get("STEDI_SPARK_REMOTE")
    master = env.get("STEDI_SPARK_MASTER", "local[*]")
    config = {"spark.remote": remote} if remote else {"spark.master": master}
    config["spark.sql.session.timeZone"] = "UTC"
    # The Python workers' interpreter is PYSPARK_PYTHON, set where the session starts
    # (spark_resources.LakehouseSpark), not a Spark setting.
    try:
        extra = json.loads(env.get("STEDI_SPARK_CONF") or "{}")
    except json.JSONDecodeError as exc:
        raise ValueError(f"STEDI_SPARK_CONF must be a JSON object: {exc}") from None
    if not isinstance(extra, dict):
        raise ValueError("STEDI_SPARK_CONF must be a JSON object of Spark settings")
    config.update({str(k): str(v) for k, v in extra.items()})
    return {"engine": engine, "spark_config": config}
