"""Which Iceberg catalog holds the lakehouse tables, and where each table lives.

- local (the default, no set-up): pyiceberg's SQL catalog in a SQLite file inside the lakehouse
  root, `<root>/iceberg_catalog.db`; the warehouse is the root itself.
- `STEDI_ENV=s3` / `glue`: the AWS Glue Data Catalog, database `STEDI_GLUE_DATABASE`, so Athena
  queries `stedi.customer_trusted` with no DDL.
- `STEDI_ICEBERG_CATALOG_URI`: a SQLAlchemy URI (`sqlite:///…`, `postgresql://…`) for a SQL
  catalog, or an `http(s)://` REST catalog (S3 Tables, Polaris, Nessie; not tested here).

Every table's location is `<root>/<zone>/<table>` (data files in `data/`, metadata in
`metadata/`). Table names are the STEDI names; the landing zone's tables (parsed rows and
rejects) live in the namespace `<database>_landing`, because in the Glue database the landing
names belong to the raw JSON tables over the landing files (as before Iceberg); trusted and
curated tables live in `<database>`. Dagster-free: the Glue job uses it too.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path

from stedi_assets import schemas
from stedi_assets.variables import default

#: The SQLite catalog file of a local lakehouse (inside the root, so the root is the lakehouse).
LOCAL_CATALOG_FILE = "iceberg_catalog.db"


def is_local(root: str) -> bool:
    return "://" not in root or root.startswith("file://")


@dataclass(frozen=True)
class CatalogConfig:
    """How to reach the Iceberg catalog of a lakehouse rooted at `root`."""

    root: str
    #: Glue database / catalog namespace of trusted and curated tables (and landing rejects)
    database: str = default("STEDI_GLUE_DATABASE")
    #: None: SQLite in a local root, the Glue Data Catalog otherwise
    uri: str | None = None
    region: str = default("AWS_REGION")
    s3_endpoint_url: str | None = None
    glue_endpoint_url: str | None = None

    def __post_init__(self) -> None:
        if not self.database:
            raise ValueError("the Iceberg tables need a catalog database: set "
                             "STEDI_GLUE_DATABASE (e.g. stedi)")

    @property
    def kind(self) -> str:
        if self.uri:
            return "rest" if self.uri.startswith(("http://", "https://")) else "sql"
        return "sql" if is_local(self.root) else "glue"

    def namespace(self, table: str) -> str:
        landing = schemas.zone_of(table) == "landing"
        return f"{self.database}_landing" if landing else self.database

    def identifier(self, table: str) -> tuple[str, str]:
        return (self.namespace(table), table)

    def location(self, table: str) -> str:
        root = self.root.removeprefix("file://").rstrip("/")
        if is_local(self.root):
            root = str(Path(root).absolute())
        return f"{root}/{schemas.zone_of(table)}/{table}"

    def file_io_properties(self) -> dict[str, str]:
        """pyiceberg FileIO settings (credentials come from the usual AWS chain)."""
        properties = {"py-io-impl": "pyiceberg.io.pyarrow.PyArrowFileIO"}
        if not is_local(self.root):
            properties["s3.region"] = self.region
            if self.s3_endpoint_url:
                properties["s3.endpoint"] = self.s3_endpoint_url
        return properties

    def catalog_properties(self) -> dict[str, str]:
        properties = self.file_io_properties()
        if self.kind == "sql":
            local = Path(self.root.removeprefix("file://")).absolute()
            properties["uri"] = self.uri or f"sqlite:///{local / LOCAL_CATALOG_FILE}"
            properties["warehouse"] = str(local) if is_local(self.root) else self.root
        elif self.kind == "rest":
            properties["uri"] = self.uri or ""
            properties["warehouse"] = self.root
        else:
            properties["glue.region"] = self.region
            if self.glue_endpoint_url:
                properties["glue.endpoint"] = self.glue_endpoint_url
        return properties

    def load(self):
        """A pyiceberg Catalog (built on each call; cheap, no network until used)."""
        properties = self.catalog_properties()
        if self.kind == "sql":
            from pyiceberg.catalog.sql import SqlCatalog

            if is_local(self.root):
                Path(self.root.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
            return SqlCatalog("stedi", **properties)
        if self.kind == "rest":
            from pyiceberg.catalog.rest import RestCatalog

            return RestCatalog("stedi", **properties)
        from pyiceberg.catalog.glue import GlueCatalog

        return GlueCatalog("stedi", **properties)


# -- commit races ------------------------------------------------------------------------

#: Commit attempts before a step gives up (each waits a little longer, with jitter).
COMMIT_ATTEMPTS = 12


def backoff(attempt: int) -> None:
    """Wait a little longer after each lost commit race, with jitter."""
    time.sleep(min(2.0, 0.05 * 2 ** attempt) * (0.5 + random.random()))


def is_retryable(exc: BaseException) -> bool:
    from pyiceberg.exceptions import (
        CommitFailedException,
        TableAlreadyExistsError,
        ValidationException,
    )

    # ValidationException: pyiceberg's own retry found files another writer added since this
    # replacement began (a conflict for an overwrite): start over from the table as it is now
    if isinstance(exc, CommitFailedException | TableAlreadyExistsError | ValidationException):
        return True
    # SQLite's "database is locked" while another process commits, or two runs creating the
    # same namespace or table at once (a UNIQUE constraint in the SQL catalog)
    name = type(exc).__name__
    return (name == "OperationalError" and "locked" in str(exc)) or (
        name in ("IntegrityError", "NamespaceAlreadyExistsError") and (
            "UNIQUE" in str(exc) or name == "NamespaceAlreadyExistsError"))
