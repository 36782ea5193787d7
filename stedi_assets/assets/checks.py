"""The check rules (`check_rules`) as Dagster sees them: a rule becomes an AssetCheckSpec or an
@asset_check, an outcome an AssetCheckResult. Nothing is computed or described here.

Every figure is computed from upstream data (customer_landing, the trusted readings), never by
trusting the table under test alone.
"""

from collections.abc import Callable, Sequence

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetIn,
    ResourceParam,
    asset_check,
)

from stedi_assets.assets.incremental import (
    coverage_record,
    coverage_since,
    reads_of_step,
    since_last_pass,
)
from stedi_assets.check_rules import (
    RULES,
    CheckOutcome,
    CheckRule,
    consent_outcome,
    join_coverage_outcome,
)
from stedi_assets.engines.base import Engine
from stedi_assets.increments import check_version, secret_fingerprint
from stedi_assets.io.check_verdicts import record_figures, record_verdict
from stedi_assets.io.iceberg_io import IcebergIOManager
from stedi_assets.resources import CheckSettings, PrivacySettings


def check_spec(rule: CheckRule) -> AssetCheckSpec:
    """A rule checked inside its asset's own step (`check_specs` of the landing multi-assets)."""
    return AssetCheckSpec(rule.name, asset=rule.asset, blocking=rule.blocking,
                          description=rule.description)


def rule_check(asset: str, name: str,
               inputs: Sequence[str] = ()) -> Callable[[Callable], AssetChecksDefinition]:
    """@asset_check for the rule (asset, name), loading the upstream tables `inputs` too."""
    rule = RULES[(asset, name)]
    return asset_check(asset=rule.asset, name=rule.name, blocking=rule.blocking,
                       description=rule.description,
                       additional_ins={table: AssetIn(table) for table in inputs})


def check_result(outcome: CheckOutcome) -> AssetCheckResult:
    return AssetCheckResult(
        asset_key=outcome.asset, check_name=outcome.name, passed=outcome.passed,
        severity=AssetCheckSeverity(outcome.severity), description=outcome.result,
        metadata=outcome.metadata)


def record_blocking_outcome(context, store: IcebergIOManager, outcome: CheckOutcome,
                            snapshot_id: int | None = None,
                            passed_on: dict[str, object] | None = None) -> None:
    """A blocking check's verdict on the snapshot it judged (the one its step loaded, unless
    given), kept with the table: a failure blocks that snapshot for every later reader
    (io/check_verdicts.py), a pass lifts the block and records `passed_on`."""
    if not outcome.rule.blocking:
        return
    if snapshot_id is None:
        snapshot_id = reads_of_step(context).get(outcome.asset)
    if snapshot_id is not None:
        record_verdict(store.tables, outcome.asset, snapshot_id, outcome.name,
                       outcome.passed, context.run.run_id, passed_on)


_CUSTOMER_TABLES = ("customer_landing", "customer_landing_rejects")


def consent_check(table_name: str) -> AssetChecksDefinition:
    @rule_check(table_name, "consent", ["customer_landing", "customer_landing_rejects"])
    def _check(context: AssetCheckExecutionContext, engine: Engine, privacy: PrivacySettings,
               io_manager: ResourceParam[IcebergIOManager], table, customer_landing,
               customer_landing_rejects) -> AssetCheckResult:
        version = check_version(f"{table_name}.consent",
                                consent_as_of_date=privacy.consent_as_of_date,
                                shared_devices=privacy.shared_devices,
                                secret=secret_fingerprint(privacy.pseudonym_secret))
        since, full_reason = since_last_pass(context, io_manager, table_name, "consent",
                                             version, _CUSTOMER_TABLES)
        outcome = consent_outcome(
            table_name, engine.ops, table, customer_landing, customer_landing_rejects,
            secret=privacy.pseudonym_secret, consent_as_of_date=privacy.consent_as_of_date,
            shared_devices=privacy.shared_devices, since=since, kept=engine.kept_results)
        reads = reads_of_step(context)
        record_blocking_outcome(context, io_manager, outcome, passed_on={
            "version": version, "upstream": {t: str(reads[t]) for t in _CUSTOMER_TABLES}})
        if full_reason:
            context.log.info(f"{table_name} consent: every row checked ({full_reason})")
        return check_result(outcome)

    return _check


def join_coverage_result(context: AssetCheckExecutionContext, engine: Engine,
                         checks: CheckSettings, store: IcebergIOManager, table_name: str,
                         step_trainer_trusted, accelerometer_trusted, customer_landing,
                         rows_in_table: int | None = None) -> AssetCheckResult:
    """A join-coverage check of `table_name`: from what changed since its last evaluation
    when it can (check_rules.CoverageSince), else over every instant; its counts are kept
    with the table for the next evaluation."""
    version = check_version(f"{table_name}.join_coverage")
    since, full_reason = coverage_since(context, store, engine.ops, table_name, version,
                                        customer_landing)
    outcome = join_coverage_outcome(
        table_name, engine.ops, step_trainer_trusted, accelerometer_trusted, customer_landing,
        min_join_coverage=checks.min_join_coverage, rows_in_table=rows_in_table, since=since)
    record_figures(store.tables, table_name, "join_coverage",
                   coverage_record(context, version, outcome.metadata))
    if full_reason:
        context.log.info(f"{table_name} join coverage: every instant evaluated ({full_reason})")
    return check_result(outcome)
