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

from stedi_assets.check_rules import RULES, CheckOutcome, CheckRule, consent_outcome
from stedi_assets.engines.base import Engine
from stedi_assets.io.check_verdicts import record_verdict
from stedi_assets.io.iceberg_io import IcebergIOManager, step_reads
from stedi_assets.resources import PrivacySettings


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
                            snapshot_id: int | None = None) -> None:
    """A blocking check's verdict on the snapshot it judged (the one its step loaded, unless
    given), kept with the table: a failure blocks that snapshot for every later reader
    (io/check_verdicts.py), a pass lifts the block."""
    if not outcome.rule.blocking:
        return
    step = context.op_execution_context.get_step_execution_context()
    if snapshot_id is None:
        snapshot_id = step_reads((context.run.run_id, step.step.key)).get(outcome.asset)
    if snapshot_id is not None:
        record_verdict(store.tables, outcome.asset, snapshot_id, outcome.name,
                       outcome.passed, context.run.run_id)


def consent_check(table_name: str) -> AssetChecksDefinition:
    @rule_check(table_name, "consent", ["customer_landing", "customer_landing_rejects"])
    def _check(context: AssetCheckExecutionContext, engine: Engine, privacy: PrivacySettings,
               io_manager: ResourceParam[IcebergIOManager], table, customer_landing,
               customer_landing_rejects) -> AssetCheckResult:
        outcome = consent_outcome(
            table_name, engine.ops, table, customer_landing, customer_landing_rejects,
            secret=privacy.pseudonym_secret, consent_as_of_date=privacy.consent_as_of_date,
            shared_devices=privacy.shared_devices)
        record_blocking_outcome(context, io_manager, outcome)
        return check_result(outcome)

    return _check
