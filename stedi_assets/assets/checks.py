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

from stedi_assets.engines.base import Engine
from stedi_assets.figures import plain
from stedi_assets.resources import CheckSettings, PrivacySettings
from stedi_assets.schemas import CONSENT_KEYS
from stedi_assets.transforms.pseudonyms import reported_keys


def consent_check(table_name: str) -> AssetChecksDefinition:
    keys = CONSENT_KEYS[table_name]
    matched = ", ".join(f"{k} against customer {c}" for k, c, _ in keys)

    @asset_check(
        asset=table_name, name="consent", blocking=True,
        additional_ins={"customer_landing": AssetIn("customer_landing"),
                        "customer_landing_rejects": AssetIn("customer_landing_rejects")},
        description=(
            f"Every row of {table_name} belongs to a customer whose latest record (a "
            "quarantined customer line counts as one without consent) has "
            f"shareWithResearchAsOfDate set ({matched}, emails matched trimmed and "
            "lower-cased); with consent as of date, no reading before it; with "
            "STEDI_SHARED_DEVICES=exclude, no device of a non-consenting customer. Reports "
            "counts and pseudonymous keys only. Blocking: a failure stops downstream assets."
        ),
    )
    def _check(engine: Engine, privacy: PrivacySettings, table, customer_landing,
               customer_landing_rejects) -> AssetCheckResult:
        consenting = engine.ops.consenting_customers(customer_landing, privacy.pseudonym_secret,
                                                     customer_landing_rejects)
        excluded = (engine.ops.non_consenting_devices(customer_landing, customer_landing_rejects)
                    if privacy.exclude_shared_devices else None)
        results = [
            plain(engine.ops.consent_violations(
                table, consenting, key, consenting_key,
                time_column=time_column if privacy.consent_as_of_date else None,
                excluded=excluded if consenting_key == "serialNumber" else None))
            for key, consenting_key, time_column in keys
        ]
        sample = [k for (_, consenting_key, _), r in zip(keys, results, strict=True)
                  for k in reported_keys(r["sample"], consenting_key,
                                         privacy.pseudonym_secret)][:5]
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
                "violating_keys_sample": sample,
                "consent_as_of_date": privacy.consent_as_of_date,
                "shared_devices": privacy.shared_devices,
            },
        )

    return _check


def shared_devices_result(figures: dict, shared_devices: str) -> AssetCheckResult:
    """WARN when step readings come from devices that also belong to a customer without
    research consent (the same result the Glue step reports)."""
    rows, devices = figures["shared_device_rows"], figures["shared_devices"]
    return AssetCheckResult(
        passed=bool(rows == 0), severity=AssetCheckSeverity.WARN,
        description=(
            f"{rows} of {figures['rows_checked']} row(s) come from {devices} device(s) that "
            "also belong to a customer without research consent"
            + ("" if rows == 0 or shared_devices == "exclude"
               else " (STEDI_SHARED_DEVICES=exclude drops them)")),
        metadata={**plain(figures), "shared_devices_setting": shared_devices},
    )


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
