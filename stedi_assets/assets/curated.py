"""Curated zone: what the data scientists get to train the step-detection model."""

import json
from dataclasses import replace

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetExecutionContext,
    Output,
    ResourceParam,
    asset,
)

from stedi_assets.assets.checks import consent_check, join_coverage_result, rule_check
from stedi_assets.assets.common import asset_kwargs
from stedi_assets.assets.incremental import (
    READING_TABLES,
    changed_readings,
    kept_or_rebuilt,
    plan_update,
    rows_added_only,
    rows_before,
    rows_changed,
)
from stedi_assets.engines.base import Engine
from stedi_assets.increments import (
    UPSTREAM_PROPERTY,
    Affected,
    TableUpdate,
    secret_fingerprint,
    table_version,
)
from stedi_assets.io.iceberg_io import IcebergIOManager
from stedi_assets.resources import CheckSettings, PrivacySettings


@asset(**asset_kwargs("customer_curated"))
def customer_curated(context: AssetExecutionContext, engine: Engine, privacy: PrivacySettings,
                     io_manager: ResourceParam[IcebergIOManager], customer_trusted,
                     accelerometer_trusted):
    ops, secret = engine.ops, privacy.pseudonym_secret
    version = table_version("customer_curated", secret=secret_fingerprint(secret))

    def rows():
        return ops.customer_curated(customer_trusted, accelerometer_trusted, secret=secret)

    plan = plan_update(context, io_manager, "customer_curated", version)
    if plan.full_reason or plan.inputs_unchanged:
        return kept_or_rebuilt(plan, version, rows)
    readings, customers = "accelerometer_trusted", "customer_trusted"
    why_not = _why_not_updated(io_manager, plan, readings, customers)
    if why_not:
        return kept_or_rebuilt(replace(plan, full_reason=why_not), version, rows)
    # the customers whose customer_trusted row changed, and those who became readers, are
    # recomputed (a whole pass over accelerometer_trusted's users otherwise)
    moved = not plan.unchanged(customers)
    customers_then = {"customers_before": rows_before(io_manager, plan, customers),
                      "readings_follow_customers_before":
                          _read_from(io_manager, plan, readings, customers)} if moved else {}
    updated = ops.customer_curated_update(io_manager.scan_snapshot(plan.base), customer_trusted,
                                          *rows_changed(io_manager, plan, readings),
                                          secret=secret, **customers_then)
    if updated is None:
        return kept_or_rebuilt(replace(plan, full_reason="a reader's rows were removed, or a "
                                       "newly consenting customer's readings are not known"),
                               version, rows)
    if moved:  # rows recomputed: the commit says whether they changed
        return Output(TableUpdate(version, rows=updated),
                      metadata={**plan.metadata, "incremental/customers_changed": True})
    gained = ops.row_count(updated) - plan.base.rows  # it only grows: 0 = no new reader
    return Output(TableUpdate(version, base=plan.base, full=rows) if gained == 0 else
                  TableUpdate(version, rows=updated),
                  metadata={**plan.metadata, "incremental/customers_added": gained})


def _why_not_updated(store: IcebergIOManager, plan, readings: str, customers: str
                     ) -> str | None:
    """Why customer_curated is rebuilt instead of updated from the readings' change, or None.
    Not from a full rebuild of the readings (its change is the whole table), nor, when the
    customers moved too, from a change larger than the table (a withdrawal rewrites most day
    files: reading every user of the files removed and added would cost more than one pass
    over the table's users)."""
    if plan.unchanged(readings):
        return None
    if store.tables.changed_instants(readings, plan.consumed[readings],
                                     plan.loaded[readings]) is None:
        return (f"what changed in {readings} since it was last read is not known (rebuilt "
                "in full, written by another writer, or its history expired)")
    change = plan.changes[readings]
    if not plan.unchanged(customers) and change.rows_added + change.rows_removed > \
            store.snapshot(readings, plan.loaded[readings]).rows:
        return f"{customers} moved and {readings} changed more rows than it holds"
    return None


def _read_from(store: IcebergIOManager, plan, readings: str, customers: str) -> bool:
    """The `readings` snapshot this table last read was computed from the `customers`
    snapshot it last read (so it holds no reading of a customer outside it), as its commit
    or a later run's note records."""
    recorded = store.tables.recorded_properties(readings, plan.consumed[readings])
    return any(str(json.loads(properties.get(UPSTREAM_PROPERTY, "{}")).get(customers))
               == str(plan.consumed[customers]) for properties in recorded)


@asset(**asset_kwargs("machine_learning_curated"))
def machine_learning_curated(context: AssetExecutionContext, engine: Engine,
                             privacy: PrivacySettings,
                             io_manager: ResourceParam[IcebergIOManager],
                             step_trainer_trusted, accelerometer_trusted):
    ops, secret = engine.ops, privacy.pseudonym_secret
    version = table_version("machine_learning_curated", secret=secret_fingerprint(secret))

    def rows(steps, readings):
        return ops.machine_learning_curated(steps, readings, secret=secret)

    plan = plan_update(context, io_manager, "machine_learning_curated", version)
    if plan.full_reason:
        return Output(TableUpdate(version, rows=rows(step_trainer_trusted,
                                                     accelerometer_trusted)),
                      metadata=plan.metadata)
    affected = changed_readings(io_manager, ops, plan.consumed, plan.loaded, plan.changes)

    def full():
        return rows(step_trainer_trusted, accelerometer_trusted)

    added = rows_added_only(io_manager, plan, READING_TABLES)
    if added is not None and any(frame is not None for frame in added.values()):
        # readings were only added: every pair the table holds stays, and the new pairs are
        # those with a new step reading (against every accelerometer reading now) or a new
        # accelerometer reading (against the step readings as they were), each once —
        # appended, no data file rewritten
        new_steps, new_readings = added["step_trainer_trusted"], added["accelerometer_trusted"]
        steps_then = rows_before(io_manager, plan, "step_trainer_trusted")
        pairs = [rows(new_steps, ops.inside(accelerometer_trusted, affected,
                                            time_column="timestamp"))
                 if new_steps is not None else None,
                 rows(ops.inside(steps_then, affected), new_readings)
                 if new_readings is not None else None]
        return Output(TableUpdate(version, base=plan.base,
                                  affected=Affected("machine_learning_curated"),
                                  slice=ops.concat_frames([p for p in pairs if p is not None]),
                                  full=full),
                      metadata={**plan.metadata, "incremental/appended_only": True})
    pairs = rows(ops.inside(step_trainer_trusted, affected),
                 ops.inside(accelerometer_trusted, affected, time_column="timestamp"))
    return Output(TableUpdate(version, base=plan.base, affected=affected, slice=pairs,
                              full=full),
                  metadata={**plan.metadata, "incremental/appended_only": False})


@rule_check("machine_learning_curated", "join_coverage",
            ["step_trainer_trusted", "accelerometer_trusted", "customer_landing"])
def machine_learning_curated_join_coverage(
    context: AssetCheckExecutionContext, engine: Engine, checks: CheckSettings,
    io_manager: ResourceParam[IcebergIOManager], machine_learning_curated,
    step_trainer_trusted, accelerometer_trusted, customer_landing,
) -> AssetCheckResult:
    return join_coverage_result(context, engine, checks, io_manager, "machine_learning_curated",
                                step_trainer_trusted, accelerometer_trusted, customer_landing,
                                rows_in_table=engine.ops.row_count(machine_learning_curated))


curated_assets = [customer_curated, machine_learning_curated]
curated_checks = [
    *(consent_check(a.key.path[-1]) for a in curated_assets),
    machine_learning_curated_join_coverage,
]
