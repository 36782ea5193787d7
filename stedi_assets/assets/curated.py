"""Curated zone: what the data scientists get to train the step-detection model."""


from dagster import AssetCheckResult, AssetIn, asset, asset_check

from stedi_assets.assets.checks import consent_check, join_coverage_result
from stedi_assets.assets.common import asset_kwargs
from stedi_assets.engines.base import Engine
from stedi_assets.figures import plain
from stedi_assets.resources import CheckSettings, PrivacySettings


@asset(**asset_kwargs("customer_curated"))
def customer_curated(engine: Engine, privacy: PrivacySettings, customer_trusted,
                     accelerometer_trusted):
    return engine.ops.customer_curated(customer_trusted, accelerometer_trusted,
                                       secret=privacy.pseudonym_secret)


@asset(**asset_kwargs("machine_learning_curated"))
def machine_learning_curated(engine: Engine, privacy: PrivacySettings, step_trainer_trusted,
                             accelerometer_trusted):
    return engine.ops.machine_learning_curated(step_trainer_trusted, accelerometer_trusted,
                                               secret=privacy.pseudonym_secret)


@asset_check(
    asset=machine_learning_curated, name="join_coverage",
    additional_ins={"step_trainer_trusted": AssetIn("step_trainer_trusted"),
                    "accelerometer_trusted": AssetIn("accelerometer_trusted"),
                    "customer_landing": AssetIn("customer_landing")},
    description="The join recomputed from its inputs: coverage of step readings, rows per step "
                "reading, pairs whose phone is not the device owner's, and that the table holds "
                "exactly the joined rows. WARN below the configured coverage.",
)
def machine_learning_curated_join_coverage(
    engine: Engine, checks: CheckSettings, machine_learning_curated, step_trainer_trusted,
    accelerometer_trusted, customer_landing,
) -> AssetCheckResult:
    figures = engine.ops.join_coverage(step_trainer_trusted, accelerometer_trusted,
                                       customer_landing)
    rows = plain(engine.ops.row_count(machine_learning_curated))
    return join_coverage_result(figures, checks, extra={"rows_in_table": rows},
                                consistent=rows == figures["joined_rows"])


curated_assets = [customer_curated, machine_learning_curated]
curated_checks = [
    *(consent_check(a.key.path[-1]) for a in curated_assets),
    machine_learning_curated_join_coverage,
]
