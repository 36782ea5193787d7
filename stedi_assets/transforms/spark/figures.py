"""Figures for the asset checks on Spark (computed from upstream data, never trusting the table
alone), as transforms/polars/figures.py computes them."""

from __future__ import annotations

from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from stedi_assets.transforms.figures import join_coverage_figures
from stedi_assets.transforms.spark.columns import logical_schema
from stedi_assets.transforms.spark.tables import (
    _CONSENT,
    _identity,
    _with_customer_key,
    latest_customer_records,
    non_consenting_devices,
    quarantined_withdrawals,
)


def consenting_customers(customer_landing: DataFrame, secret: str,
                         customer_landing_rejects: DataFrame | None = None,
                         kept: Any = None, earlier: Any = None) -> DataFrame:
    """email (the identity: trimmed, lower-cased), serialNumber, customerKey and consent date
    of every customer whose latest record (quarantined lines included) has research consent.
    Spark computes it every time: `kept` is the Polars engine's store of these sets
    (engines/kept_results.py), always None here, and `earlier` (the changed customers, to
    update a kept set with) is of no use without it."""
    latest = latest_customer_records(customer_landing, customer_landing_rejects).filter(
        F.col(_CONSENT).isNotNull())
    return _with_customer_key(latest.select(_identity("email").alias("email"), "serialNumber",
                                            _CONSENT), "email", secret)


def consent_violations(
    table: DataFrame, consenting: DataFrame, key: str, consenting_key: str,
    time_column: str | None = None, excluded: DataFrame | None = None,
) -> dict[str, Any]:
    """Rows of `table` whose `key` is not the `consenting_key` of a consenting customer (an
    email key matched on its identity); with `time_column`, also rows taken before that
    customer's consent date; with `excluded`, also rows whose key is one of its
    `consenting_key` values. A table carrying the consent date must have it on every row.
    The sample holds at most 5 violating keys (emails as identities)."""
    match = _identity(key) if consenting_key == "email" else F.col(key)
    customers = consenting.select(F.col(consenting_key).alias("_match"),
                                  F.col(_CONSENT).alias("_consent")).dropDuplicates(["_match"])
    marked = table.withColumn("_match", match).join(customers, on="_match", how="left")
    bad = F.col("_consent").isNull()
    if excluded is not None:
        marked = marked.join(excluded.select(F.col(consenting_key).alias("_match")).distinct()
                             .withColumn("_excluded", F.lit(True)), on="_match", how="left")
        bad = bad | F.col("_excluded").isNotNull()
    if time_column:
        bad = bad | (F.col(time_column) < F.col("_consent"))
    if _CONSENT in table.columns:
        bad = bad | F.col(_CONSENT).isNull()
    figures = marked.select(F.count(F.lit(1)).alias("n"),
                            F.sum(F.when(bad, 1).otherwise(0)).alias("v")).first()
    violations = int(figures["v"] or 0)
    sample = []
    if violations:  # a second job (the join again) only when there is something to show
        sample = [r["_match"] for r in marked.filter(bad).select("_match").distinct()
                  .orderBy(F.col("_match").asc_nulls_first()).limit(5).collect()]
    return {"rows_checked": int(figures["n"]), "violations": violations, "sample": sample}


def changed_consent(before: DataFrame, now: DataFrame, consenting_key: str, *,
                    with_date: bool = False, excluded_before: DataFrame | None = None,
                    excluded_now: DataFrame | None = None) -> DataFrame:
    """The `consenting_key` values (column `_match`) whose consent can have worsened between
    two consenting sets (left, date moved, device newly excluded), as
    transforms/polars/figures.py finds them."""
    def records(consenting: DataFrame, excluded: DataFrame | None) -> DataFrame:
        consent = F.col(_CONSENT).cast("long") if with_date else F.lit(0).cast("long")
        frame = consenting.select(F.col(consenting_key).alias("_match"),
                                  consent.alias("_consent"), F.lit(False).alias("_excluded"))
        if excluded is not None:
            frame = frame.unionByName(excluded.select(
                F.col(consenting_key).alias("_match"), F.lit(None).cast("long").alias("_consent"),
                F.lit(True).alias("_excluded")))
        return frame

    old, new = records(before, excluded_before), records(now, excluded_now)
    # EXCEPT (subtract) compares rows as sets, nulls equal
    return old.where(~F.col("_excluded")).subtract(new).unionByName(
        new.where("_excluded").subtract(old)).select("_match").distinct()


def customer_identities(customer_landing: DataFrame,
                        customer_landing_rejects: DataFrame) -> DataFrame:
    """The identities (column `_match`) of the customer records given, as
    transforms/polars/figures.py finds them."""
    withdrawn = quarantined_withdrawals(customer_landing_rejects)
    return customer_landing.select(_identity("email").alias("_match")).unionByName(
        withdrawn.select(_identity("email").alias("_match"))).distinct()


def restrict_customers(customer_landing: DataFrame, identities: DataFrame) -> DataFrame:
    """The customer records of these identities."""
    return customer_landing.withColumn("_match", _identity("email")).join(
        identities, on="_match", how="left_semi").drop("_match")


def rows_to_verify(added: DataFrame, kept: DataFrame, changed: DataFrame, key: str,
                   consenting_key: str) -> DataFrame:
    """The rows an incremental consent check looks at for one consent key (as
    transforms/polars/figures.py): the added files' rows and the kept rows of changed keys."""
    if changed.isEmpty():  # usually: no customer's consent changed
        return added
    match = _identity(key) if consenting_key == "email" else F.col(key)
    touched = kept.withColumn("_match", match).join(changed, on="_match", how="left_semi"
                                                    ).drop("_match")
    return added.unionByName(touched)


def without_exact_duplicates(frame: DataFrame) -> tuple[DataFrame, int]:
    """`frame` without the rows that are exact copies of an earlier row, and how many rows
    that removes."""
    distinct = frame.distinct()
    return distinct, int(frame.count() - distinct.count())


def exact_duplicates(frame: DataFrame) -> int:
    """How many rows are exact copies of an earlier row."""
    return without_exact_duplicates(frame)[1]


def join_coverage(
    step_trainer_trusted: DataFrame,
    accelerometer_trusted: DataFrame,
    customer_landing: DataFrame,
) -> dict[str, Any]:
    """How well step readings pair with accelerometer readings taken at the same time.

    One Spark job (four counts used to be four jobs, each reading both tables): readings are
    counted per (instant, identity) and step readings per (instant, device), each step group
    meets its instant's reading groups once, and the counts are sums over those meetings."""
    readings = accelerometer_trusted.select(
        F.col("timestamp").alias("sensorReadingTime"), _identity("user").alias("user")
    ).groupBy("sensorReadingTime", "user").agg(F.count(F.lit(1)).alias("_n"))
    steps = step_trainer_trusted.groupBy("sensorReadingTime", "serialNumber").agg(
        F.count(F.lit(1)).alias("_m"))
    owners = _owners(customer_landing).withColumn("_owner", F.lit(True))
    # owners hold each (user, serialNumber) once, and each step group meets each reading group
    # at its instant once, so the second grouping gathers exactly one step group's meetings
    # (grouping keeps null keys together; a null instant meets nothing)
    per_step = steps.join(readings, on="sensorReadingTime", how="left").join(
        owners, on=["serialNumber", "user"], how="left"
    ).groupBy("sensorReadingTime", "serialNumber", "_m").agg(
        F.sum("_n").alias("_pairs"),
        F.sum(F.when(F.col("_owner").isNull(), F.col("_n"))).alias("_foreign"))
    counts = per_step.agg(
        F.sum("_m").alias("step_readings"),
        F.sum(F.when(F.col("_pairs").isNotNull(), F.col("_m"))).alias("matched"),
        F.sum(F.col("_m") * F.col("_pairs")).alias("joined_rows"),
        F.sum(F.col("_m") * F.col("_foreign")).alias("foreign"),
    ).first()
    return join_coverage_figures(*(int(counts[k] or 0) for k in (
        "step_readings", "matched", "joined_rows", "foreign")))


def _owners(customer_landing: DataFrame) -> DataFrame:
    """(user, serialNumber) of every customer record once, matched on the identity."""
    return customer_landing.select(_identity("email").alias("user"), "serialNumber").distinct()


def same_owners(before: DataFrame, now: DataFrame) -> bool:
    """Whether two customer landing tables pair the same identities with the same devices."""
    old, new = _owners(before), _owners(now)
    return old.exceptAll(new).isEmpty() and new.exceptAll(old).isEmpty()


def shared_device_rows(step_trainer_trusted: DataFrame, customer_landing: DataFrame,
                       customer_landing_rejects: DataFrame | None = None,
                       kept: Any = None) -> dict[str, int]:
    """How many rows of step_trainer_trusted (and how many distinct devices) come from devices
    that also belong to a customer without research consent (non_consenting_devices;
    `kept` as in consenting_customers)."""
    devices = non_consenting_devices(customer_landing, customer_landing_rejects)
    shared = step_trainer_trusted.join(devices, on="serialNumber", how="left_semi")
    figures = shared.select(F.count(F.lit(1)).alias("k"),
                            F.countDistinct("serialNumber").alias("d")).first()
    return {"rows_checked": int(step_trainer_trusted.count()),
            "shared_device_rows": int(figures["k"]), "shared_devices": int(figures["d"])}


def row_count(frame: DataFrame) -> int:
    return int(frame.count())


def head_rows(frame: DataFrame, n: int) -> list[dict[str, Any]]:
    return [r.asDict() for r in frame.limit(n).collect()]


def frame_logical_schema(frame: DataFrame) -> dict[str, str]:
    return logical_schema(frame.schema)
