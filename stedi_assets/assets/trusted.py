"""Trusted zone: only data of customers whose latest record agrees to share with research."""

from dagster import AssetCheckResult, AssetIn, Output, asset, asset_check

from stedi_assets.assets.checks import (
    consent_check,
    join_coverage_result,
    shared_devices_result,
)
from stedi_assets.assets.common import asset_kwargs
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


@asset_check(
    asset=step_trainer_trusted, name="shared_devices",
    additional_ins={"customer_landing": AssetIn("customer_landing"),
                    "customer_landing_rejects": AssetIn("customer_landing_rejects")},
    description="Rows from devices that also belong to a customer without research consent "
                "(the serialNumber of that customer's latest record). WARN when there are any; "
                "STEDI_SHARED_DEVICES=exclude drops them.",
)
def step_trainer_trusted_shared_devices(engine: Engine, privacy: PrivacySettings,
                                        step_trainer_trusted, customer_landing,
                                        customer_landing_rejects) -> AssetCheckResult:
    figures = engine.ops.shared_device_rows(step_trainer_trusted, customer_landing,
                                            customer_landing_rejects)
    return shared_devices_result(figures, privacy.shared_devices)


@asset_check(
    asset=step_trainer_trusted, name="join_coverage",
    additional_ins={"accelerometer_trusted": AssetIn("accelerometer_trusted"),
                    "customer_landing": AssetIn("customer_landing")},
    description="Share of step readings with accelerometer readings at the same time, rows per "
                "step reading, and pairs whose phone is not the device owner's. WARN below the "
                "configured coverage.",
)
def step_trainer_trusted_join_coverage(
    engine: Engine, checks: CheckSettings, step_trainer_trusted, accelerometer_trusted,
    customer_landing,
) -> AssetCheckResult:
    figures = engine.ops.join_coverage(step_trainer_trusted, accelerometer_trusted,
                                       customer_landing)
    return join_coverage_result(figures, checks)


trusted_assets = [customer_trusted, accelerometer_trusted, step_trainer_trusted]
trusted_checks = [
    *(consent_check(a.key.path[-1]) for a in trusted_assets),
    step_trainer_trusted_join_coverage,
    step_trainer_trusted_shared_devices,
]
