"""Check factories shared by the trusted and curated zones.

Every figure is computed from upstream data (customer_landing, the trusted readings), never by
trusting the table under test alone.
"""


from dagster import (
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetIn,
    asset_check,
)

from stedi_assets.resources import CheckSettings, Engine

#: table -> (its customer key column, the customer_landing column it must match)
CONSENT_KEYS = {
    "customer_trusted": ("email", "email"),
    "accelerometer_trusted": ("user", "email"),
    "step_trainer_trusted": ("serialNumber", "serialNumber"),
    "customer_curated": ("email", "email"),
    "machine_learning_curated": ("serialNumber", "serialNumber"),
}


def consent_check(table_name: str) -> AssetChecksDefinition:
    key, customer_key = CONSENT_KEYS[table_name]

    @asset_check(
        asset=table_name, name="consent", blocking=True,
        additional_ins={"customer_landing": AssetIn("customer_landing")},
        description=(
            f"Every row of {table_name} belongs to a customer whose shareWithResearchAsOfDate "
            f"is set in customer_landing ({key} matched against customer {customer_key}). "
            "Blocking: a failure stops downstream assets."
        ),
    )
    def _check(engine: Engine, table, customer_landing) -> AssetCheckResult:
        figures = engine.ops.consent_violations(table, customer_landing, key, customer_key)
        return AssetCheckResult(
            passed=figures["violations"] == 0,
            severity=AssetCheckSeverity.ERROR,
            description=(
                "every row belongs to a consenting customer" if figures["violations"] == 0
                else f"{figures['violations']} row(s) of non-consenting customers"
            ),
            metadata={
                "rows_checked": figures["rows_checked"],
                "violations": figures["violations"],
                "violating_keys_sample": [str(v) for v in figures["sample"]],
            },
        )

    return _check


def join_coverage_result(figures: dict, settings: CheckSettings, extra: dict | None = None,
                         consistent: bool = True) -> AssetCheckResult:
    covered = figures["coverage"] >= settings.min_join_coverage
    return AssetCheckResult(
        passed=covered and consistent,
        severity=AssetCheckSeverity.WARN,
        description=(
            f"{figures['coverage']:.1%} of step readings found accelerometer readings at the "
            f"same time (warn below {settings.min_join_coverage:.0%}); "
            f"{figures['foreign_share']:.1%} of joined pairs pair a device with another "
            "customer's phone"
        ),
        metadata={
            **figures,
            "coverage": float(round(figures["coverage"], 6)),
            "rows_per_matched_reading": float(round(figures["rows_per_matched_reading"], 6)),
            "foreign_share": float(round(figures["foreign_share"], 6)),
            "warn_below": settings.min_join_coverage,
            **(extra or {}),
        },
    )
