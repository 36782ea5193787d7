"""Curated zone: what the data scientists get to train the step-detection model."""


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
from stedi_assets.assets.incremental import changed_readings, plan_update
from stedi_assets.engines.base import Engine
from stedi_assets.increments import TableUpdate, secret_fingerprint, table_version
from stedi_assets.io.iceberg_io import IcebergIOManager
from stedi_assets.resources import CheckSettings, PrivacySettings


@asset(**asset_kwargs("customer_curated"))
def customer_curated(engine: Engine, privacy: PrivacySettings, customer_trusted,
                     accelerometer_trusted):
    return engine.ops.customer_curated(customer_trusted, accelerometer_trusted,
                                       secret=privacy.pseudonym_secret)


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
    pairs = rows(ops.inside(step_trainer_trusted, affected),
                 ops.inside(accelerometer_trusted, affected, time_column="timestamp"))
    return Output(TableUpdate(version, base=plan.base, affected=affected, slice=pairs,
                              full=lambda: rows(step_trainer_trusted, accelerometer_trusted)),
                  metadata=plan.metadata)


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
