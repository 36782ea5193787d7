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

from stedi_assets.figures import plain
from stedi_assets.resources import CheckSettings, Engine, PrivacySettings
from stedi_assets.schemas import CONSENT_KEYS


def consent_check(table_name: str) -> AssetChecksDefinition:
    keys = CONSENT_KEYS[table_name]
    matched = ", ".join(f"{k} against customer {c}" for k, c, _ in keys)

    @asset_check(
        asset=table_name, name="consent", blocking=True,
        additional_ins={"customer_landing": AssetIn("customer_landing")},
        description=(
            f"Every row of {table_name} belongs to a customer whose latest customer_landing "
            f"record has shareWithResearchAsOfDate set ({matched}); with consent as of date, "
            "no reading before it. Blocking: a failure stops downstream assets."
        ),
    )
    def _check(engine: Engine, privacy: PrivacySettings, table,
               customer_landing) -> AssetCheckResult:
        consenting = engine.ops.consenting_customers(customer_landing,
                                                     privacy.pseudonym_secret)
        results = [
            plain(engine.ops.consent_violations(
                table, consenting, key, consenting_key,
                time_column=time_column if privacy.consent_as_of_date else None))
            for key, consenting_key, time_column in keys
        ]
        violations = max(r["violations"] for r in results)
        return AssetCheckResult(
            passed=violations == 0,
            severity=AssetCheckSeverity.ERROR,
            description=(
                "every row belongs to a consenting customer" if violations == 0
                else f"{violations} row(s) of non-consenting customers"
            ),
            metadata={
                "rows_checked": results[0]["rows_checked"],
                "violations": violations,
                "violating_keys_sample": [str(v) for r in results for v in r["sample"]][:5],
                "consent_as_of_date": privacy.consent_as_of_date,
            },
        )

    return _check


def join_coverage_result(figures: dict, settings: CheckSettings, extra: dict | None = None,
                         consistent: bool = True) -> AssetCheckResult:
    figures, extra = plain(figures), plain(extra)
    covered = figures["coverage"] >= settings.min_join_coverage
    return AssetCheckResult(
        passed=bool(covered and consistent),
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
