"""Every environment variable the project reads, declared once: name, default, meaning and
group. settings.py reads them with these defaults, other modules take their defaults from here
(`default()`), and docs/configuration.md is generated from the same list
(`python -m stedi_assets.variables > docs/configuration.md`; a test fails when it is stale).
Nothing here reads the environment."""

from __future__ import annotations

import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Variable:
    name: str
    #: as written in the environment; None: unset by default (the meaning says what then)
    default: str | None
    meaning: str
    group: str = "core"
    #: a credential: reaches Dagster as an EnvVar, never shown
    secret: bool = False


_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def duration_seconds(name: str, text: str) -> int:
    """A duration as the variables write it: '7d' -> 604800, '12h', '30m', '45s', '0' -> 0."""
    value = text.strip().lower()
    number, unit = (value[:-1], value[-1]) if value[-1:] in _UNITS else (value, "s")
    if not number.isdigit() or (unit == "s" and value[-1:] != "s" and value != "0"):
        raise ValueError(f"{name} must be a whole number with d, h, m or s (e.g. 7d), or 0; "
                         f"got {text!r}")
    return int(number) * _UNITS[unit]


VARIABLES: tuple[Variable, ...] = (
    Variable("STEDI_ENV", "local", "`local`: files on this machine, Iceberg tables in a SQLite "
             "catalog inside the lakehouse root; `s3`: lakehouse on S3, Iceberg tables in the Glue "
             "Data Catalog; `glue`: as `s3`, and every step runs as an AWS Glue job launched "
             "through Dagster Pipes"),
    Variable("STEDI_LANDING_ROOT", None, "folder or `s3://bucket/prefix/` holding `customer/`, "
             "`accelerometer/`, `step_trainer/` (unset: `<repo>/data/landing`)"),
    Variable("STEDI_LANDING_PREFIXES", "", "rename source folders, e.g. `customer=customers` "
             "for the seeds' bucket layout (empty: each source's folder is its name)"),
    Variable("STEDI_LAKEHOUSE_ROOT", None, "where the `<zone>/<table>/` tables are written; "
             "`s3://bucket/prefix/` with `STEDI_ENV=s3` or `glue` "
             "(unset: `<repo>/data/lakehouse`)"),
    Variable("STEDI_ENGINE", "polars", "`polars` or `spark`"),
    Variable("STEDI_MIN_JOIN_COVERAGE", "0.5", "the join-coverage checks WARN below this share"),
    Variable("STEDI_MAX_REJECT_SHARE", "0.01",
             "the quarantine-rate checks WARN above this share of quarantined lines"),
    Variable("STEDI_CONSENT_AS_OF_DATE", "off", "`on`: drop accelerometer readings taken before "
             "the customer's research consent date"),
    Variable("STEDI_SHARED_DEVICES", "include", "`exclude`: drop the readings of Step Trainers "
             "that also belong to a customer without consent (from step_trainer_trusted and "
             "machine_learning_curated)"),
    Variable("STEDI_PSEUDONYM_SECRET", None, "HMAC key of the pseudonymous `customerKey`; "
             "required unless `STEDI_ENV=local` and both roots are local folders (then the public "
             "key `stedi-local-development-only`, and every run that uses it logs a warning)",
             secret=True),
    Variable("STEDI_LANDING_CACHE", "auto", "where the Polars engine keeps each landing file's "
             "parsed rows so a run parses only new or rewritten files: `auto` or `on` "
             "(`<lakehouse root>/_landing_cache` for a local lakehouse, off on S3), `off`, or a "
             "local folder. Its `_checks` folder keeps the consent checks' set of consenting "
             "customers (and the devices of the others) while the customer tables do not move "
             "(docs/incremental.md)"),
    Variable("STEDI_SNAPSHOT_RETENTION", "7d", "how long each table keeps older Iceberg "
             "snapshots (time travel) before they are expired and their files deleted (erasure): "
             "a number with `d`, `h`, `m` or `s`; `0` keeps only the current snapshot"),
    Variable("STEDI_ICEBERG_CATALOG_URI", None, "the Iceberg catalog: unset = SQLite inside a "
             "local lakehouse root, the Glue Data Catalog for an `s3://` root; or a SQLAlchemy "
             "URI (`sqlite:///…`, `postgresql://…`), or an `http(s)://` REST catalog (untested)"),
    Variable("STEDI_AUTOMATION", "on", "`on` starts the landing sensor and declarative "
             "automation with `dagster dev`; `off` leaves them stopped (startable in the UI)"),
    Variable("STEDI_SENSOR_INTERVAL_SECONDS", "15",
             "how often the landing sensor and the automation sensor run"),
    Variable("STEDI_FRESHNESS_HOURS", "26", "curated tables fail their freshness policy when not "
             "materialized for this many hours (a stalled landing feed); `0` sets no policy"),
    Variable("STEDI_GLUE_DATABASE", "stedi", "catalog database of the Iceberg tables (trusted and "
             "curated; the landing zone's in `<database>_landing`) and of the raw landing JSON "
             "tables; one per lakehouse. Empty (e.g. on MinIO): no Glue registration, and then "
             "`STEDI_ICEBERG_CATALOG_URI` must name the Iceberg catalog", group="aws"),
    Variable("AWS_REGION", "us-east-1", "region for S3 and Glue (`AWS_DEFAULT_REGION` is read "
             "when `AWS_REGION` is unset)", group="aws"),
    Variable("AWS_ENDPOINT_URL", None, "custom endpoint (MinIO, LocalStack, moto); "
             "`AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL_GLUE` override it per service",
             group="aws"),
    Variable("STEDI_LANDING_ANONYMOUS", "off", "`on` reads an `s3://` landing root unsigned "
             "(a public bucket such as the seeds')", group="aws"),
    Variable("STEDI_GLUE_JOB_PREFIX", "stedi-", "Glue job names are `<prefix><step>`",
             group="glue"),
    Variable("STEDI_GLUE_SCRIPTS_URI", None, "where `stedi-deploy` puts the job script and the "
             "package zip (unset: `<lakehouse root>/_glue/`)", group="glue"),
    Variable("STEDI_GLUE_ROLE_ARN", None, "the IAM role the jobs run as (`stedi-deploy` "
             "requires it)", group="glue"),
    Variable("STEDI_GLUE_WORKER_TYPE", "G.1X", "Glue worker type (`G.1X`, `G.2X`, ...)",
             group="glue"),
    Variable("STEDI_GLUE_WORKERS", "2", "number of Glue workers (at least 2)", group="glue"),
    Variable("STEDI_GLUE_PIPES_BUCKET", None, "bucket for the Pipes context and messages "
             "(unset: the lakehouse's)", group="glue"),
    Variable("STEDI_GLUE_PSEUDONYM_SECRET_ID", None, "Secrets Manager secret the jobs read the "
             "pseudonym key from (unset: Dagster sends it in the Pipes context, deleted after "
             "every run)", group="glue"),
    Variable("STEDI_GLUE_PYTHON_MODULES",
             "dagster-pipes==1.13.27,polars==2.1.0,pyiceberg==0.12.0",
             "`--additional-python-modules` of the jobs", group="glue"),
    Variable("STEDI_SPARK_MASTER", "local[*]", "Spark master URL for `STEDI_ENGINE=spark`",
             group="spark"),
    Variable("STEDI_SPARK_REMOTE", None, "Spark Connect URL (`sc://host:15002`), used instead "
             "of the master", group="spark"),
    Variable("STEDI_SPARK_CONF", "{}", "extra Spark settings as a JSON object, e.g. "
             '`{"spark.driver.memory": "4g"}`', group="spark"),
    Variable("STEDI_ALERT_WEBHOOK_URL", None, "where alerts are POSTed as JSON "
             "(Slack-compatible; unset: the Dagster log only)", group="alerts", secret=True),
    Variable("STEDI_UI_URL", "http://127.0.0.1:3000", "base URL of the Dagster UI in alert links",
             group="alerts"),
)
_BY_NAME = {v.name: v for v in VARIABLES}
GROUP_TITLES = {"core": "The graph", "aws": "S3 and the Glue Data Catalog",
                "glue": "Glue jobs (`STEDI_ENV=glue`, `stedi-deploy`)",
                "spark": "Spark (`STEDI_ENGINE=spark`)", "alerts": "Alerts"}


def default(name: str) -> str | None:
    """The declared default of a variable, as written in the environment."""
    return _BY_NAME[name].default


def configuration_markdown() -> str:
    """docs/configuration.md's table of settings, generated from VARIABLES."""
    out = ["<!-- generated by `python -m stedi_assets.variables`: do not edit the tables -->",
           "# Configuration", "",
           "Every setting is an environment variable, declared once with its default in "
           "`stedi_assets/variables.py` and read in one place, `stedi_assets/settings.py`. "
           "Secrets reach Dagster as `EnvVar`s: the UI, its GraphQL API and the run logs show "
           "the variable's name, never its value."]
    for group, title in GROUP_TITLES.items():
        out += ["", f"## {title}", "", "| variable | default | meaning |", "|---|---|---|"]
        for v in (v for v in VARIABLES if v.group == group):
            shown = "unset" if v.default is None else f"`{v.default}`" if v.default else "empty"
            secret = " **Secret.**" if v.secret else ""
            out.append(f"| `{v.name}` | {shown} | {v.meaning}.{secret} |")
    return "\n".join(out) + "\n" + CONFIGURATION_NOTES


CONFIGURATION_NOTES = """
## Notes

The public development key can only key tables built from local folders: with an `s3://`
landing or lakehouse root and no `STEDI_PSEUDONYM_SECRET`, loading the code location stops with
`STEDI_PSEUDONYM_SECRET must be set ...`, and every run that does use the development key logs
a warning (keys made with a public key can be reversed from a list of emails).

To run the graph on the real Udacity data beside the repository:

```bash
STEDI_LANDING_ROOT=../shared/stedi-reference/udacity-2023-cleaned/landing \\
STEDI_LAKEHOUSE_ROOT=/tmp/stedi-lakehouse \\
.venv/bin/dagster asset materialize -m stedi_assets.definitions --select '*'
```

Runs use Dagster's in-process executor: a process per step would cost seconds per asset on a
small machine.
"""


if __name__ == "__main__":  # python -m stedi_assets.variables > docs/configuration.md
    sys.stdout.write(configuration_markdown())
