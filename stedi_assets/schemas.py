"""The one description of every STEDI table: zone, columns, logical types, descriptions, keys.

Everything else derives from here: the landing readers (which JSON keys to decode, which are
required), both engines' output column order, the schema checks, the `dagster/column_schema`
metadata and the catalog DDL (`stedi-ddl`, the Glue registration). No I/O and no engine
code lives in this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Logical types. Each engine / catalog maps them to its own type names.
STRING = "string"
INT64 = "int64"
FLOAT64 = "float64"

#: Logical type -> Hive/Glue/Athena type name.
CATALOG_TYPES = {STRING: "string", INT64: "bigint", FLOAT64: "double"}

ZONES = ("landing", "trusted", "curated")


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    description: str
    #: A landing line without this key (or with null) cannot become a row.
    required: bool = False
    #: Other spellings of the key seen in landing files (older exports).
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Table:
    name: str
    zone: str
    description: str
    columns: tuple[Column, ...]
    #: For landing tables: the source folder under the landing root.
    source: str | None = None
    keys: tuple[str, ...] = field(default_factory=tuple)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]


def _epoch(name: str, what: str, required: bool = False) -> Column:
    return Column(name, INT64, f"{what} (epoch milliseconds, UTC)", required=required)


CUSTOMER_COLUMNS = (
    Column("customerName", STRING, "Customer's full name (direct identifier)"),
    Column("email", STRING, "Customer's email as landed; the customer is identified by it "
           "trimmed and lower-cased (also how accelerometer `user` matches it)", required=True),
    Column("phone", STRING, "Phone number as text (landing files carry numbers or strings)"),
    Column("birthDay", STRING, "Birthday as text, e.g. 1965-01-01 (direct identifier)"),
    Column("serialNumber", STRING, "Serial number of the customer's Step Trainer"),
    _epoch("registrationDate", "When the customer registered"),
    _epoch("lastUpdateDate", "When the customer record was last updated"),
    _epoch("shareWithResearchAsOfDate",
           "Since when the customer agreed to share data with research; null = no consent"),
    _epoch("shareWithPublicAsOfDate", "Since when the customer shares with the public; null = no"),
    _epoch("shareWithFriendsAsOfDate", "Since when the customer shares with friends; null = no"),
)

ACCELEROMETER_COLUMNS = (
    Column("user", STRING, "Email of the customer whose phone took the reading, as landed "
           "(matched to customer email trimmed and lower-cased)", required=True),
    Column("timestamp", INT64, "When the reading was taken (epoch milliseconds, UTC)",
           required=True, aliases=("timeStamp",)),
    Column("x", FLOAT64, "Acceleration on the x axis"),
    Column("y", FLOAT64, "Acceleration on the y axis"),
    Column("z", FLOAT64, "Acceleration on the z axis"),
)

STEP_TRAINER_COLUMNS = (
    Column("sensorReadingTime", INT64, "When the reading was taken (epoch milliseconds, UTC)",
           required=True),
    Column("serialNumber", STRING, "Serial number of the Step Trainer that took the reading",
           required=True),
    Column("distanceFromObject", INT64, "Distance measured by the sensor"),
)

CUSTOMER_KEY = Column(
    "customerKey", STRING,
    "Pseudonymous customer key: HMAC-SHA256 of the trimmed, lower-cased email under the "
    "project's secret (hex)",
)

#: Curated customers: no direct identifier (name, email, phone, birthday), a pseudonymous key.
CUSTOMER_CURATED_COLUMNS = (
    CUSTOMER_KEY,
    *(c for c in CUSTOMER_COLUMNS
      if c.name not in {"customerName", "email", "phone", "birthDay"}),
)

MACHINE_LEARNING_COLUMNS = (
    STEP_TRAINER_COLUMNS[0],
    STEP_TRAINER_COLUMNS[1],
    STEP_TRAINER_COLUMNS[2],
    *ACCELEROMETER_COLUMNS[2:],
    Column("customerKey", STRING,
           "Pseudonymous key of the customer whose phone took the accelerometer reading "
           "(HMAC-SHA256 of the trimmed, lower-cased email)"),
)

REJECT_COLUMNS = (
    Column("file", STRING, "The landing file the line came from"),
    Column("line_number", INT64, "1-based line number in that file"),
    Column("line", STRING, "The raw text of the line"),
    Column("reason", STRING, "Why the line could not become a row"),
)

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table("customer_landing", "landing",
              "Every customer record from the website/fulfilment export, as landed.",
              CUSTOMER_COLUMNS, source="customer", keys=("email",)),
        Table("accelerometer_landing", "landing",
              "Every accelerometer reading from the mobile app, as landed.",
              ACCELEROMETER_COLUMNS, source="accelerometer", keys=("user", "timestamp")),
        Table("step_trainer_landing", "landing",
              "Every Step Trainer distance reading, as landed.",
              STEP_TRAINER_COLUMNS, source="step_trainer",
              keys=("serialNumber", "sensorReadingTime")),
        Table("customer_trusted", "trusted",
              "Customers whose latest record agrees to share their data with research "
              "(shareWithResearchAsOfDate is set; a quarantined customer line counts as a "
              "record without consent): one row per trimmed, lower-cased email, the latest "
              "landed record as landed.",
              CUSTOMER_COLUMNS, keys=("email",)),
        Table("accelerometer_trusted", "trusted",
              "Accelerometer readings of customers in customer_trusted.",
              ACCELEROMETER_COLUMNS, keys=("user", "timestamp")),
        Table("step_trainer_trusted", "trusted",
              "Step Trainer readings of devices owned by customers in customer_curated "
              "(with STEDI_SHARED_DEVICES=exclude, not of devices that also belong to a "
              "customer without consent).",
              STEP_TRAINER_COLUMNS, keys=("serialNumber", "sensorReadingTime")),
        Table("customer_curated", "curated",
              "Consenting customers who have accelerometer data, one row each, identified only "
              "by a pseudonymous key (no name, email, phone or birthday).",
              CUSTOMER_CURATED_COLUMNS, keys=("customerKey",)),
        Table("machine_learning_curated", "curated",
              "Step Trainer readings paired with accelerometer readings taken at the same "
              "time, for training the step-detection model. No direct identifiers; the "
              "customer appears only as a pseudonymous key.",
              MACHINE_LEARNING_COLUMNS, keys=("serialNumber", "sensorReadingTime")),
        *(Table(f"{source}_landing_rejects", "landing",
                f"Quarantine: every line of the {source} landing files that could not become a "
                "row, with its file, line number, raw text and the reason.",
                REJECT_COLUMNS, source=None, keys=("file", "line_number"))
          for source in ("customer", "accelerometer", "step_trainer")),
    )
}

LANDING_TABLES = [t for t in TABLES.values() if t.zone == "landing" and t.source]


#: table -> [(its column, the consenting-customer column it must match, reading time column)]
#: for the consent checks (local assets and Glue steps alike). The time column is checked
#: against the consent date when consent_as_of_date is on.
CONSENT_KEYS: dict[str, list[tuple[str, str, str | None]]] = {
    "customer_trusted": [("email", "email", None)],
    "accelerometer_trusted": [("user", "email", "timestamp")],
    "step_trainer_trusted": [("serialNumber", "serialNumber", None)],
    "customer_curated": [("customerKey", "customerKey", None)],
    "machine_learning_curated": [("serialNumber", "serialNumber", None),
                                 ("customerKey", "customerKey", None)],
}


def rejects_table(landing: Table) -> Table:
    return TABLES[f"{landing.source}_landing_rejects"]


def zone_of(table_name: str) -> str:
    try:
        return TABLES[table_name].zone
    except KeyError:
        raise KeyError(f"unknown STEDI table {table_name!r}; known: {sorted(TABLES)}") from None


def schema_problems(actual: dict[str, str], table: Table) -> list[str]:
    """Compare an actual {column: logical type} mapping with the table's declared schema."""
    problems = []
    for col in table.columns:
        if col.name not in actual:
            problems.append(f"missing column {col.name!r}")
        elif actual[col.name] != col.type:
            problems.append(f"column {col.name!r} is {actual[col.name]}, expected {col.type}")
    extra = [name for name in actual if name not in table.column_names]
    if extra:
        problems.append(f"unexpected columns {extra}")
    return problems
