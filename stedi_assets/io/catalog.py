"""Glue Data Catalog tables for the STEDI zones, so Athena can query them.

The zone tables are Apache Iceberg tables: the Iceberg catalog (io/iceberg_catalog.py)
registers them with every commit. What this module registers are the raw landing tables: JSON
SerDe tables over the landing files (like the seeds' customer_landing.sql), one description per
table derived from `schemas` feeding both the Glue `TableInput` and the `CREATE EXTERNAL
TABLE` DDL (`stedi-ddl`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dagster import ConfigurableResource
from pydantic import PrivateAttr

from stedi_assets import schemas
from stedi_assets.io.s3 import aws_errors


class CatalogError(Exception):
    """A Glue Data Catalog problem the user must fix; the message names database and table."""


@dataclass(frozen=True)
class StorageFormat:
    classification: str
    serde: str
    serde_parameters: dict[str, str]
    input_format: str
    output_format: str


JSON_LINES = StorageFormat(
    "json",
    "org.openx.data.jsonserde.JsonSerDe",
    # As in the seeds' landing DDL; case-insensitive keys also read older `timeStamp` files.
    {"ignore.malformed.json": "FALSE", "dots.in.keys": "FALSE", "case.insensitive": "TRUE",
     "mapping": "TRUE"},
    "org.apache.hadoop.mapred.TextInputFormat",
    "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
)


def _folder(location: str) -> str:
    return location.rstrip("/") + "/"


def catalog_columns(table_name: str,
                    column_types: dict[str, str] | None = None) -> list[dict[str, str]]:
    """Glue columns (Name, Type, Comment) in declared order. `column_types` are the logical
    types actually stored (from the Parquet schema); without them the declared types are used."""
    table = schemas.TABLES[table_name]
    types = column_types or {c.name: c.type for c in table.columns}
    extra = [name for name in types if name not in table.column_names]
    if extra:
        raise CatalogError(f"{table_name} holds columns not in schemas.py: {extra}")
    columns = []
    for column in table.columns:
        logical = types.get(column.name, column.type)
        if logical not in schemas.CATALOG_TYPES:
            raise CatalogError(
                f"{table_name}.{column.name} is stored as {logical!r}, which has no catalog "
                f"type (known: {sorted(schemas.CATALOG_TYPES)})"
            )
        columns.append({"Name": column.name, "Type": schemas.CATALOG_TYPES[logical],
                        "Comment": column.description[:255]})
    return columns


def table_input(table_name: str, location: str,
                column_types: dict[str, str] | None = None) -> dict[str, Any]:
    """The Glue `TableInput` of a raw landing table: JSON lines at `location`."""
    fmt = JSON_LINES
    return {
        "Name": table_name,
        "Description": schemas.TABLES[table_name].description,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"classification": fmt.classification, "EXTERNAL": "TRUE"},
        "StorageDescriptor": {
            "Columns": catalog_columns(table_name, column_types),
            "Location": _folder(location),
            "InputFormat": fmt.input_format,
            "OutputFormat": fmt.output_format,
            "SerdeInfo": {"SerializationLibrary": fmt.serde, "Parameters": fmt.serde_parameters},
        },
    }


def _quoted(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def iceberg_table_comment(database: str, table_name: str, location: str) -> str:
    """How an Iceberg table is described by stedi-ddl: as comments only (every commit already
    registers it in the catalog; running Athena's CREATE TABLE ... 'table_type'='ICEBERG' over
    its location would start a second, empty table there)."""
    columns = "\n".join(f"--   `{c['Name']}` {c['Type']}  -- {c['Comment']}"
                        for c in catalog_columns(table_name))
    return (f"-- `{database}`.`{table_name}`: Apache Iceberg table (format v2) at {location}\n"
            "-- registered by every commit (Glue: table_type=ICEBERG, metadata_location); "
            "nothing to create.\n"
            f"-- columns:\n{columns}")


def create_table_ddl(database: str, table_name: str, location: str) -> str:
    """`CREATE EXTERNAL TABLE` (Athena/Hive DDL) of a raw landing table: what the catalog
    registers over the landing JSON files."""
    spec = table_input(table_name, location)
    storage = spec["StorageDescriptor"]
    columns = ",\n".join(
        f"  `{c['Name']}` {c['Type']} COMMENT {_quoted(c['Comment'])}" for c in storage["Columns"]
    )
    serde_properties = ",\n".join(
        f"  {_quoted(k)} = {_quoted(v)}" for k, v in storage["SerdeInfo"]["Parameters"].items()
    )
    return (
        f"CREATE EXTERNAL TABLE IF NOT EXISTS `{database}`.`{table_name}` (\n{columns}\n)\n"
        f"COMMENT {_quoted(spec['Description'])}\n"
        f"ROW FORMAT SERDE {_quoted(storage['SerdeInfo']['SerializationLibrary'])}\n"
        f"WITH SERDEPROPERTIES (\n{serde_properties}\n)\n"
        f"STORED AS INPUTFORMAT {_quoted(storage['InputFormat'])}\n"
        f"OUTPUTFORMAT {_quoted(storage['OutputFormat'])}\n"
        f"LOCATION {_quoted(storage['Location'])}\n"
        f"TBLPROPERTIES ('classification' = {_quoted(spec['Parameters']['classification'])});"
    )


class TableCatalog(ConfigurableResource):
    """No catalog: registering a table does nothing (local runs). Methods return the
    registered `database.table`, or None when nothing was registered."""

    def register_json_table(self, table_name: str, location: str) -> str | None:
        return None


class GlueCatalog(TableCatalog):
    """Creates or updates tables in a Glue Data Catalog database (created if missing).
    Credentials come from the standard AWS chain."""

    database: str
    region: str
    endpoint_url: str | None = None
    _glue: Any = PrivateAttr(default=None)

    def _client(self) -> Any:
        if self._glue is None:
            import boto3  # only a Glue catalog needs it (see io/s3.py)
            from botocore.config import Config

            self._glue = boto3.session.Session().client(
                "glue", region_name=self.region, endpoint_url=self.endpoint_url or None,
                config=Config(connect_timeout=5, retries={"max_attempts": 3, "mode": "standard"}),
            )
        return self._glue

    def register_json_table(self, table_name: str, location: str) -> str | None:
        if not location.startswith("s3://"):
            return None  # Athena cannot read a local landing folder
        return self._upsert(table_input(table_name, location))

    def _upsert(self, spec: dict[str, Any]) -> str:
        name = f"{self.database}.{spec['Name']}"
        glue = self._client()
        try:
            self._ensure_database(glue)
            try:
                glue.create_table(DatabaseName=self.database, TableInput=spec)
            except glue.exceptions.AlreadyExistsException:
                glue.update_table(DatabaseName=self.database, TableInput=spec)
        except aws_errors() as exc:
            from botocore.exceptions import ClientError

            where = f"endpoint {self.endpoint_url}" if self.endpoint_url else self.region
            code = exc.response["Error"]["Code"] if isinstance(exc, ClientError) else ""
            raise CatalogError(
                f"cannot create or update Glue table {name} ({where}): "
                f"{code or type(exc).__name__}: {str(exc).splitlines()[0][:300]}. "
                "Check the AWS credentials and glue:CreateTable/UpdateTable/CreateDatabase "
                "permissions, or set STEDI_GLUE_DATABASE= (empty) to skip catalog registration."
            ) from None
        return name

    def _ensure_database(self, glue: Any) -> None:
        try:
            glue.get_database(Name=self.database)
        except glue.exceptions.EntityNotFoundException:
            try:
                glue.create_database(DatabaseInput={
                    "Name": self.database, "Description": "STEDI lakehouse zones"})
            except glue.exceptions.AlreadyExistsException:
                pass
