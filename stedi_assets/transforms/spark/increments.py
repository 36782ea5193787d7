"""Incremental updates on Spark: the same slices as transforms/polars/increments.py (see
stedi_assets/increments.py), with the same null handling (a null instant is an instant like
any other). Pure functions, DataFrames in -> DataFrames out."""

from __future__ import annotations

from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from stedi_assets.increments import Affected
from stedi_assets.transforms.spark.tables import (
    _CONSENT,
    _identity,
    _with_customer_key,
    customer_curated,
)


def _group_key(column: str) -> Column:
    # a customer is the trimmed, lower-cased email; a device its serial number as landed
    return _identity(column) if column == "user" else F.col(column)


def _present(frame: DataFrame | None) -> bool:
    return frame is not None and not frame.isEmpty()


def flagged(frame: DataFrame, affected: Affected, group_column: str | None = None,
            time_column: str | None = None) -> DataFrame:
    """`frame` with `_affected`: true for a row of an affected slice."""
    group = group_column or affected.group_column
    time = time_column or affected.time_column
    keyed, flags = frame, []
    if group is not None:
        keyed = keyed.withColumn("_group", _group_key(group))
    for groups, name in ((affected.groups, "_in_group"), (affected.new_groups, "_in_new")):
        if _present(groups):
            hits = groups.select("_group").distinct().withColumn(name, F.lit(True))
            keyed = keyed.join(F.broadcast(hits), on="_group", how="left")
            flags.append(F.coalesce(F.col(name), F.lit(False)))
    if _present(affected.times):
        hits = affected.times.select(F.col("_time").alias("_hit_time")).distinct().withColumn(
            "_at_time", F.lit(True))
        keyed = keyed.join(F.broadcast(hits), keyed[time].eqNullSafe(hits["_hit_time"]),
                           "left").drop("_hit_time")
        flags.append(F.coalesce(F.col("_at_time"), F.lit(False)))
    if _present(affected.pairs):
        hits = affected.pairs.select(F.col("_group").alias("_hit_group"),
                                     F.col("_time").alias("_hit_time")).distinct().withColumn(
            "_in_pair", F.lit(True))
        keyed = keyed.join(F.broadcast(hits), keyed["_group"].eqNullSafe(hits["_hit_group"])
                           & keyed[time].eqNullSafe(hits["_hit_time"]), "left")
        flags.append(F.coalesce(F.col("_in_pair"), F.lit(False)))
    flag = reduce(lambda a, b: a | b, flags, F.lit(False))
    return keyed.withColumn("_affected", flag).select(*frame.columns, "_affected")


def _time_frames(affected: Affected) -> list[DataFrame] | None:
    """(`_time`) frames of the instants an update touches, when it names no whole group
    (else None)."""
    if _present(affected.groups) or _present(affected.new_groups):
        return None
    return [f.select("_time") for f in (affected.pairs, affected.times) if f is not None]


def time_bounds(affected: Affected) -> tuple[int, int] | None:
    """The instants an update can touch, when it names no whole group (else None)."""
    times = _time_frames(affected)
    if not times:
        return None
    low, high = reduce(DataFrame.unionByName, times).agg(F.min("_time"), F.max("_time")).first()
    return None if low is None else (int(low), int(high))


def affected_days(affected: Affected, day_ms: int) -> set[int] | None:
    """As on Polars: the days of every instant an update touches (None: a whole group is)."""
    times = _time_frames(affected)
    if times is None:
        return None
    if not times:
        return set()
    day = F.expr(f"(_time - pmod(_time, {day_ms})) div {day_ms}")
    return {int(r[0]) for r in reduce(DataFrame.unionByName, times).where(
        F.col("_time").isNotNull()).select(day).distinct().collect()}


def inside(frame: DataFrame, affected: Affected, group_column: str | None = None,
           time_column: str | None = None) -> DataFrame:
    """The rows of `frame` that belong to an affected slice."""
    time = time_column or affected.time_column
    bounds = time_bounds(affected)
    if bounds is not None:  # lets the Parquet reader skip row groups outside the change
        frame = frame.where(F.col(time).between(*bounds) | F.col(time).isNull())
    return flagged(frame, affected, group_column, time_column).where("_affected").drop(
        "_affected")


def changed_groups(old: DataFrame, new: DataFrame, column: str,
                   compared: list[str]) -> DataFrame:
    """`_group` of every group present in only one of the frames, or whose `compared` values
    differ between them."""
    def keyed(frame: DataFrame) -> DataFrame:
        return frame.select(_group_key(column).alias("_group"), *compared).distinct()

    before, after = keyed(old), keyed(new)
    return before.exceptAll(after).unionByName(after.exceptAll(before)).select(
        "_group").distinct()


def new_pairs(landing_added: DataFrame | None, group_column: str,
              time_column: str) -> DataFrame | None:
    if landing_added is None:
        return None
    return landing_added.select(_group_key(group_column).alias("_group"),
                                F.col(time_column).alias("_time")).distinct()


def changed_times(removed: DataFrame | None, added: DataFrame | None,
                  time_column: str) -> DataFrame | None:
    """`_time` of every row in only one of two sets of rows."""
    frames = [f for f in (removed, added) if f is not None]
    if not frames:
        return None
    if len(frames) == 1:
        return frames[0].select(F.col(time_column).alias("_time")).distinct()
    changed = removed.exceptAll(added).unionByName(added.exceptAll(removed))
    return changed.select(F.col(time_column).alias("_time")).distinct()


# --------------------------------------------------------------------------------------------
# One function per incremental table: the slices a change touches
# --------------------------------------------------------------------------------------------

def accelerometer_trusted_affected(landing_added: DataFrame | None,
                                   customers_before: DataFrame, customer_trusted: DataFrame,
                                   *, consent_as_of_date: bool = False) -> Affected:
    compared = [_CONSENT] if consent_as_of_date else []
    groups = changed_groups(
        customers_before.select(F.col("email").alias("user"), *compared),
        customer_trusted.select(F.col("email").alias("user"), *compared), "user", compared)
    # as on Polars: a customer absent from customer_trusted before holds no reading in the
    # table, theirs are only appended (a null email is nobody)
    groups = groups.where(F.col("_group").isNotNull())
    before = customers_before.select(_identity("email").alias("_group"))
    return Affected("accelerometer_trusted",
                    groups=groups.join(before, on="_group", how="left_semi").cache(),
                    new_groups=groups.join(before, on="_group", how="left_anti").cache(),
                    pairs=_cached(new_pairs(landing_added, "user", "timestamp")))


def step_trainer_trusted_affected(landing_added: DataFrame | None,
                                  devices_before: DataFrame, devices: DataFrame) -> Affected:
    return Affected("step_trainer_trusted",
                    groups=changed_groups(devices_before, devices, "serialNumber", []).cache(),
                    pairs=_cached(new_pairs(landing_added, "serialNumber",
                                            "sensorReadingTime")))


def machine_learning_curated_affected(step_removed: DataFrame | None,
                                      step_added: DataFrame | None,
                                      accelerometer_removed: DataFrame | None,
                                      accelerometer_added: DataFrame | None) -> Affected:
    times = [t for t in (changed_times(step_removed, step_added, "sensorReadingTime"),
                         changed_times(accelerometer_removed, accelerometer_added, "timestamp"))
             if t is not None]
    return Affected("machine_learning_curated",
                    times=reduce(DataFrame.unionByName, times).distinct().cache()
                    if times else None)


def consented_devices(customer_curated: DataFrame,
                      excluded_devices: DataFrame | None) -> DataFrame:
    devices = customer_curated.select("serialNumber").where(
        F.col("serialNumber").isNotNull()).distinct()
    if excluded_devices is not None:
        devices = devices.join(excluded_devices.select("serialNumber"), on="serialNumber",
                               how="left_anti")
    return devices


def _cached(frame: DataFrame | None) -> DataFrame | None:
    return None if frame is None else frame.cache()


def customer_curated_update(curated: DataFrame, customer_trusted: DataFrame,
                            accelerometer_removed: DataFrame | None,
                            accelerometer_added: DataFrame | None, *, secret: str,
                            customers_before: DataFrame | None = None,
                            readings_follow_customers_before: bool = True
                            ) -> DataFrame | None:
    """As on Polars: customer_curated (`curated`, computed from `customers_before` — None:
    from `customer_trusted` as it is — and the readings as they were) once
    accelerometer_trusted lost `accelerometer_removed` and gained `accelerometer_added`; None
    when only the whole table can tell (rebuild)."""
    def identities(readings: DataFrame) -> DataFrame:
        return readings.select("user").distinct().select(_identity("user").alias("_identity"))

    added = identities(accelerometer_added) if accelerometer_added is not None else None
    if accelerometer_removed is not None:
        removed = identities(accelerometer_removed)
        if added is not None:
            removed = removed.join(added, on="_identity", how="left_anti")
        # a customer who does not consent now holds no row whatever they read
        consenting = customer_trusted.select(_identity("email").alias("_identity"))
        if not removed.join(consenting, on="_identity", how="left_semi").isEmpty():
            return None
    if customers_before is None and accelerometer_added is None:
        return curated
    held, parts = curated, []
    if accelerometer_added is not None:
        parts.append(customer_curated(customer_trusted, accelerometer_added, secret=secret))
    if customers_before is not None:
        held, recomputed = _changed_customers(curated, customer_trusted, customers_before,
                                              added, secret=secret,
                                              follow=readings_follow_customers_before)
        if recomputed is None:
            return None
        parts.append(recomputed)
    gained = reduce(DataFrame.unionByName, [p.select(*curated.columns) for p in parts])
    # EXCEPT compares nulls as equal, as the Polars anti-join with nulls_equal does
    return held.unionByName(gained.subtract(held))


def _changed_customers(curated: DataFrame, customer_trusted: DataFrame,
                       customers_before: DataFrame, added: DataFrame | None, *,
                       secret: str, follow: bool) -> tuple[DataFrame, DataFrame | None]:
    """As on Polars: (the rows of `curated` whose customer_trusted row did not change, the
    rows of the changed customers who consent now and held a row before)."""
    names = customer_trusted.columns
    now, then = customer_trusted.select(*names), customers_before.select(*names)
    changed = now.subtract(then).unionByName(then.subtract(now)).select(
        _identity("email").alias("_identity")).where(F.col("_identity").isNotNull()).distinct()

    def of_changed(customers: DataFrame) -> DataFrame:
        return customers.withColumn("_identity", _identity("email")).join(
            changed, on="_identity", how="left_semi")

    # a customer's key is the HMAC of their identity: their row before, whatever its spelling
    before = _with_customer_key(of_changed(then), "email", secret)
    held = curated.join(before.select("customerKey"), on="customerKey", how="left_anti")
    readers = before.join(curated.select("customerKey"), on="customerKey",
                          how="left_semi").select("_identity")
    changed_now = of_changed(now)
    if not follow:
        unknown = changed_now.join(before, on="_identity", how="left_anti")
        if added is not None:
            unknown = unknown.join(added, on="_identity", how="left_anti")
        if not unknown.isEmpty():
            return curated, None
    recomputed = changed_now.join(readers, on="_identity", how="left_semi").drop("_identity")
    return held, _with_customer_key(recomputed, "email", secret).select(*curated.columns)


def concat_frames(frames: list[DataFrame]) -> DataFrame:
    """The rows of every frame (the same columns, matched by name), one after the other."""
    return reduce(DataFrame.unionByName, frames)
