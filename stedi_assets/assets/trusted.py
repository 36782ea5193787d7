"""Trusted zone: only data of customers whose latest record agrees to share with research."""

from dagster import AssetCheckResult, Output, asset

from stedi_assets.assets.checks import check_result, consent_check, rule_check
from stedi_assets.assets.common import asset_kwargs
from stedi_assets.check_rules import join_coverage_outcome, shared_devices_outcome
from stedi_assets.engines.base import Engine
from stedi_assets.figures import plain
from stedi_assets.resources import CheckSettings, PrivacySettings


@asset(**asset_kwargs("customer_trusted"))
def customer_trusted(engine: Engine, customer_landing, customer_landing_rejects):
    # a quarantined customer line with a readable email counts as a record without consent
    return engine.ops.customer_trusted(customer_landing, customer_landing_rejects)


@asset(**asset_kwargs("accelerometer_trusted"))
def accelerometer_trusted(engine: Engine, privacy: PrivacySettings, accelerometer_landing,
                          customer_trusted):
    readings, removed = engine.ops.without_exact_duplicates(engine.ops.accelerometer_trusted(
        accelerometer_landing, customer_trusted,
        consent_as_of_date=privacy.consent_as_of_date, deduplicate=False))
    return Output(readings, metadata={
        "duplicate_rows_removed": plain(removed),
        "consent_as_of_date": privacy.consent_as_of_date,
    })


@asset(**asset_kwargs("step_trainer_trusted"))
def step_trainer_trusted(engine: Engine, privacy: PrivacySettings, step_trainer_landing,
                         customer_curated, customer_landing, customer_landing_rejects):
    excluded = (engine.ops.non_consenting_devices(customer_landing, customer_landing_rejects)
                if privacy.exclude_shared_devices else None)
    readings, removed = engine.ops.without_exact_duplicates(engine.ops.step_trainer_trusted(
        step_trainer_landing, customer_curated, deduplicate=False, excluded_devices=excluded))
    return Output(readings, metadata={"duplicate_rows_removed": plain(removed),
                                      "shared_devices": privacy.shared_devices})


@rule_check("step_trainer_trusted", "shared_devices",
            ["customer_landing", "customer_landing_rejects"])
def step_trainer_trusted_shared_devices(engine: Engine, privacy: PrivacySettings,
                                        step_trainer_trusted, customer_landing,
                                        customer_landing_rejects) -> AssetCheckResult:
    return check_result(shared_devices_outcome(
        "step_trainer_trusted", engine.ops, step_trainer_trusted, customer_landing,
        customer_landing_rejects, shared_devices=privacy.shared_devices))


@rule_check("step_trainer_trusted", "join_coverage",
            ["accelerometer_trusted", "customer_landing"])
def step_trainer_trusted_join_coverage(
    engine: Engine, checks: CheckSettings, step_trainer_trusted, accelerometer_trusted,
    customer_landing,
) -> AssetCheckResult:
    return check_result(join_coverage_outcome(
        "step_trainer_trusted", engine.ops, step_trainer_trusted, accelerometer_trusted,
        customer_landing, min_join_coverage=checks.min_join_coverage))


trusted_assets = [customer_trusted, accelerometer_trusted, step_trainer_trusted]
trusted_checks = [
    *(consent_check(a.key.path[-1]) for a in trusted_assets),
    step_trainer_trusted_join_coverage,
    step_trainer_trusted_shared_devices,
]
