"""Trusted zone: only data of customers whose latest record agrees to share with research."""

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetExecutionContext,
    Output,
    ResourceParam,
    asset,
)

from stedi_assets.assets.checks import (
    check_result,
    consent_check,
    join_coverage_result,
    rule_check,
)
from stedi_assets.assets.common import asset_kwargs
from stedi_assets.assets.incremental import (
    kept_or_rebuilt,
    plan_update,
    rows_before,
    rows_changed,
)
from stedi_assets.check_rules import shared_devices_outcome
from stedi_assets.engines.base import Engine
from stedi_assets.figures import plain
from stedi_assets.increments import TableUpdate, table_version
from stedi_assets.io.iceberg_io import IcebergIOManager
from stedi_assets.resources import CheckSettings, PrivacySettings


@asset(**asset_kwargs("customer_trusted"))
def customer_trusted(context: AssetExecutionContext, engine: Engine,
                     io_manager: ResourceParam[IcebergIOManager], customer_landing,
                     customer_landing_rejects):
    version = table_version("customer_trusted")
    plan = plan_update(context, io_manager, "customer_trusted", version)
    # a quarantined customer line with a readable email counts as a record without consent
    return kept_or_rebuilt(plan, version, lambda: engine.ops.customer_trusted(
        customer_landing, customer_landing_rejects))


@asset(**asset_kwargs("accelerometer_trusted"))
def accelerometer_trusted(context: AssetExecutionContext, engine: Engine,
                          privacy: PrivacySettings, io_manager: ResourceParam[IcebergIOManager],
                          accelerometer_landing, customer_trusted):
    ops, as_of = engine.ops, privacy.consent_as_of_date
    version = table_version("accelerometer_trusted", consent_as_of_date=as_of)

    def rows(landing):
        return ops.without_exact_duplicates(ops.accelerometer_trusted(
            landing, customer_trusted, consent_as_of_date=as_of, deduplicate=False))

    plan = plan_update(context, io_manager, "accelerometer_trusted", version,
                       landing=("accelerometer_landing",))
    metadata = {"consent_as_of_date": as_of, **plan.metadata}
    if plan.full_reason:
        readings, removed = rows(accelerometer_landing)
        return Output(TableUpdate(version, rows=readings), metadata={
            "duplicate_rows_removed": plain(removed), **metadata})
    affected = ops.accelerometer_trusted_affected(
        rows_changed(io_manager, plan, "accelerometer_landing")[1],
        rows_before(io_manager, plan, "customer_trusted"), customer_trusted,
        consent_as_of_date=as_of)
    readings, removed = rows(ops.inside(accelerometer_landing, affected))
    return Output(TableUpdate(version, base=plan.base, affected=affected, slice=readings,
                              full=lambda: rows(accelerometer_landing)[0]),
                  metadata={"duplicate_rows_removed_in_slices": plain(removed), **metadata})


_CUSTOMER_LANDING = ("customer_landing", "customer_landing_rejects")


@asset(**asset_kwargs("step_trainer_trusted"))
def step_trainer_trusted(context: AssetExecutionContext, engine: Engine,
                         privacy: PrivacySettings, io_manager: ResourceParam[IcebergIOManager],
                         step_trainer_landing, customer_curated, customer_landing,
                         customer_landing_rejects):
    ops, exclude = engine.ops, privacy.exclude_shared_devices
    version = table_version("step_trainer_trusted", shared_devices=privacy.shared_devices)

    def excluded_devices(landing, rejects):
        return ops.non_consenting_devices(landing, rejects) if exclude else None

    excluded = excluded_devices(customer_landing, customer_landing_rejects)

    def rows(landing):
        return ops.without_exact_duplicates(ops.step_trainer_trusted(
            landing, customer_curated, deduplicate=False, excluded_devices=excluded))

    plan = plan_update(context, io_manager, "step_trainer_trusted", version,
                       landing=("step_trainer_landing",))
    metadata = {"shared_devices": privacy.shared_devices, **plan.metadata}
    if plan.full_reason:
        readings, removed = rows(step_trainer_landing)
        return Output(TableUpdate(version, rows=readings), metadata={
            "duplicate_rows_removed": plain(removed), **metadata})
    devices = ops.consented_devices(customer_curated, excluded)
    # the devices as this table last saw them: the same tables read again when they did not
    # move (each is a full pass over the customers)
    excluded_before = excluded if all(plan.unchanged(t) for t in _CUSTOMER_LANDING) else \
        excluded_devices(*(rows_before(io_manager, plan, t) for t in _CUSTOMER_LANDING))
    devices_before = devices if plan.unchanged("customer_curated") and \
        excluded_before is excluded else ops.consented_devices(
            rows_before(io_manager, plan, "customer_curated"), excluded_before)
    affected = ops.step_trainer_trusted_affected(
        rows_changed(io_manager, plan, "step_trainer_landing")[1], devices_before, devices)
    readings, removed = rows(ops.inside(step_trainer_landing, affected))
    return Output(TableUpdate(version, base=plan.base, affected=affected, slice=readings,
                              full=lambda: rows(step_trainer_landing)[0]),
                  metadata={"duplicate_rows_removed_in_slices": plain(removed), **metadata})


@rule_check("step_trainer_trusted", "shared_devices",
            ["customer_landing", "customer_landing_rejects"])
def step_trainer_trusted_shared_devices(engine: Engine, privacy: PrivacySettings,
                                        step_trainer_trusted, customer_landing,
                                        customer_landing_rejects) -> AssetCheckResult:
    return check_result(shared_devices_outcome(
        "step_trainer_trusted", engine.ops, step_trainer_trusted, customer_landing,
        customer_landing_rejects, shared_devices=privacy.shared_devices,
        kept=engine.kept_results))


@rule_check("step_trainer_trusted", "join_coverage",
            ["accelerometer_trusted", "customer_landing"])
def step_trainer_trusted_join_coverage(
    context: AssetCheckExecutionContext, engine: Engine, checks: CheckSettings,
    io_manager: ResourceParam[IcebergIOManager], step_trainer_trusted, accelerometer_trusted,
    customer_landing,
) -> AssetCheckResult:
    return join_coverage_result(context, engine, checks, io_manager, "step_trainer_trusted",
                                step_trainer_trusted, accelerometer_trusted, customer_landing)


trusted_assets = [customer_trusted, accelerometer_trusted, step_trainer_trusted]
trusted_checks = [
    *(consent_check(a.key.path[-1]) for a in trusted_assets),
    step_trainer_trusted_join_coverage,
    step_trainer_trusted_shared_devices,
]
