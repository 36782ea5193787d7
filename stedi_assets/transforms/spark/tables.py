"""The trusted and curated zone tables on Spark, and the privacy rules they apply: the same
columns, types, null handling and semi-join behaviour as transforms/polars/tables.py."""

from __future__ import annotations

from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from stedi_assets import schemas
from stedi_assets.transforms.identity import IDENTITY_WHITESPACE
from stedi_assets.transforms.spark.columns import SPARK_TYPES

_CONSENT = "shareWithResearchAsOfDate"


# --------------------------------------------------------------------------------------------
# Trusted and curated zone tables
# --------------------------------------------------------------------------------------------

def _semi_join(frame: DataFrame, keys: DataFrame, on: str) -> DataFrame:
    """Rows of `frame` whose `on` is among `keys` (never multiplied), columns in their order:
    a join on a column name moves that column first, Polars keeps the order."""
    return frame.join(keys, on=on, how="left_semi").select(*frame.columns)


def _customer_key_udf(secret: str) -> Any:
    """HMAC-SHA256 of an email's identity as a UDF (pseudonyms.customer_key); built here so
    cloudpickle ships it by value."""
    import hashlib
    import hmac

    blanks = IDENTITY_WHITESPACE

    def key(email: str | None) -> str | None:
        if email is None:
            return None
        normalised = email.strip(blanks).lower()
        return hmac.new(secret.encode(), normalised.encode(), hashlib.sha256).hexdigest()

    return F.udf(key, T.StringType())


def _with_customer_key(frame: DataFrame, email: str, secret: str) -> DataFrame:
    """Add `customerKey` for the `email` column, hashing each distinct email once."""
    distinct = frame.select(email).distinct().where(F.col(email).isNotNull())
    keyed = distinct.select(email, _customer_key_udf(secret)(F.col(email)).alias("customerKey"))
    return frame.join(keyed, on=email, how="left")


_BLANKS = "".join(f"\\u{ord(c):04x}" for c in IDENTITY_WHITESPACE)


def _identity(column: str) -> Column:
    """The customer identity of an email column: trimmed and lower-cased (identity.py)."""
    # \z: the very end (Java's $ would also match before a final line terminator)
    return F.lower(F.regexp_replace(F.col(column), f"^[{_BLANKS}]+|[{_BLANKS}]+\\z", ""))


def quarantined_withdrawals(customer_landing_rejects: DataFrame | None) -> DataFrame:
    """(email, lastUpdateDate) of every readable email of a quarantined customer line: each
    counts as a record without research consent (see identity.quarantined_identities; the
    UDF imports it on the executors: the Glue jobs ship the package with --extra-py-files)."""
    schema = "email string, lastUpdateDate bigint"
    if customer_landing_rejects is None:
        return SparkSession.active().createDataFrame([], schema)

    def read(line: str | None) -> list[tuple[str, int | None]]:
        from stedi_assets.transforms.identity import quarantined_identities as found

        return found(line)

    udf = F.udf(read, "array<struct<email:string,lastUpdateDate:bigint>>")
    return customer_landing_rejects.select(F.explode(udf(F.col("line"))).alias("_found")
                                           ).select("_found.email", "_found.lastUpdateDate")


def _ranked_latest(records: DataFrame) -> DataFrame:
    """The winning record per identity (column `_identity` added), in transforms/polars' order:
    a record without lastUpdateDate is the newest when it has no research consent and the
    oldest when it has, then lastUpdateDate; on a tie a record without consent wins, then the
    greatest values of the other columns in schema order (the email's spelling last)."""
    others = [c for c in schemas.TABLES["customer_landing"].column_names
              if c not in ("email", "lastUpdateDate", _CONSENT)]
    withdrawn = F.col(_CONSENT).isNull()
    undated = F.col("lastUpdateDate").isNull()
    tier = F.when(undated & withdrawn, 2).when(undated, 0).otherwise(1)
    window = Window.partitionBy("_identity").orderBy(
        tier.desc(), F.col("lastUpdateDate").desc_nulls_last(), withdrawn.desc(),
        F.col(_CONSENT).desc_nulls_last(), *(F.col(c).desc_nulls_last() for c in others),
        F.col("email").desc_nulls_last())
    return records.withColumn("_identity", _identity("email")).withColumn(
        "_rank", F.row_number().over(window)).filter(F.col("_rank") == 1).drop("_rank")


def _with_withdrawals(customer_landing: DataFrame,
                      customer_landing_rejects: DataFrame | None) -> DataFrame:
    """customer_landing plus one record without consent per quarantined readable email."""
    table = schemas.TABLES["customer_landing"]
    markers = quarantined_withdrawals(customer_landing_rejects).select(*(
        F.col(c.name) if c.name in ("email", "lastUpdateDate")
        else F.lit(None).cast(SPARK_TYPES[c.type]).alias(c.name) for c in table.columns))
    return customer_landing.select(*table.column_names).unionByName(markers)


def latest_customer_records(customer_landing: DataFrame,
                            customer_landing_rejects: DataFrame | None = None) -> DataFrame:
    """One record per customer identity (trimmed, lower-cased email): the latest one, where
    every readable email of a quarantined line counts as a record without research consent
    (at its lastUpdateDate when readable, else the newest). A later record without research
    consent withdraws the consent; when the order is uncertain, the record without consent
    wins (see _ranked_latest). The record that wins with consent is always a landed one."""
    return _ranked_latest(_with_withdrawals(customer_landing, customer_landing_rejects)
                          ).drop("_identity")


def non_consenting_devices(customer_landing: DataFrame,
                           customer_landing_rejects: DataFrame | None = None) -> DataFrame:
    """serialNumber of every device that belongs to a customer without research consent: the
    serialNumber of the customer's latest landed record, for every identity whose latest
    record (quarantined lines included) has no consent."""
    table = schemas.TABLES["customer_landing"]
    owners = _ranked_latest(customer_landing.select(*table.column_names)).select(
        "_identity", "serialNumber")
    without_consent = _ranked_latest(
        _with_withdrawals(customer_landing, customer_landing_rejects)
    ).filter(F.col(_CONSENT).isNull()).select("_identity")
    return owners.join(without_consent, on="_identity", how="left_semi").select(
        "serialNumber").where(F.col("serialNumber").isNotNull()).distinct()


def customer_trusted(customer_landing: DataFrame,
                     customer_landing_rejects: DataFrame | None = None) -> DataFrame:
    """Customers whose latest record agrees to share with research: one row per identity,
    the values of their latest landed record as landed."""
    return latest_customer_records(customer_landing, customer_landing_rejects).filter(
        F.col(_CONSENT).isNotNull())


def accelerometer_trusted(
    accelerometer_landing: DataFrame, customer_trusted: DataFrame, *,
    consent_as_of_date: bool = False, deduplicate: bool = True,
) -> DataFrame:
    """Readings of consenting customers, matched on the identity (semi-join: a repeated
    email never multiplies rows); with consent_as_of_date, only readings taken at or after
    the consent date; exact duplicate rows removed."""
    customers = customer_trusted.select(_identity("email").alias("_identity"),
                                        _CONSENT).dropDuplicates(["_identity"])
    readings = accelerometer_landing.withColumn("_identity", _identity("user"))
    if consent_as_of_date:
        kept = readings.join(customers, on="_identity", how="inner").filter(
            F.col("timestamp") >= F.col(_CONSENT)).select(*accelerometer_landing.columns)
    else:
        kept = _semi_join(readings, customers.select("_identity"), "_identity").select(
            *accelerometer_landing.columns)
    return kept.distinct() if deduplicate else kept


def customer_curated(
    customer_trusted: DataFrame, accelerometer_trusted: DataFrame, *, secret: str
) -> DataFrame:
    """Consenting customers with at least one trusted accelerometer reading, identified only by
    their pseudonymous key."""
    table = schemas.TABLES["customer_curated"]
    with_readings = _semi_join(
        customer_trusted.withColumn("_identity", _identity("email")),
        # each spelling once before the identity (as on Polars)
        accelerometer_trusted.select("user").distinct().select(
            _identity("user").alias("_identity")), "_identity"
    ).select(*customer_trusted.columns)
    return _with_customer_key(with_readings, "email", secret).select(
        table.column_names).distinct()


def step_trainer_trusted(
    step_trainer_landing: DataFrame, customer_curated: DataFrame, *,
    deduplicate: bool = True, excluded_devices: DataFrame | None = None,
) -> DataFrame:
    """Readings of Step Trainers that belong to a curated customer (semi-join), exact duplicate
    rows removed. With `excluded_devices` (serialNumber), none of their readings."""
    kept = _semi_join(step_trainer_landing, customer_curated.select("serialNumber"),
                      "serialNumber")
    if excluded_devices is not None:
        kept = kept.join(excluded_devices.select("serialNumber"), on="serialNumber",
                         how="left_anti").select(*step_trainer_landing.columns)
    return kept.distinct() if deduplicate else kept


def machine_learning_curated(
    step_trainer_trusted: DataFrame, accelerometer_trusted: DataFrame, *, secret: str
) -> DataFrame:
    """Step readings paired with accelerometer readings at the same instant; the phone's owner
    appears only as a pseudonymous key."""
    table = schemas.TABLES["machine_learning_curated"]
    accel = accelerometer_trusted.select(
        F.col("timestamp").alias("sensorReadingTime"), "x", "y", "z", "user")
    joined = step_trainer_trusted.join(accel, on="sensorReadingTime", how="inner")
    return _with_customer_key(joined, "user", secret).select(table.column_names)


