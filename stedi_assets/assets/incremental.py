"""What an incremental table's asset needs to plan its update (stedi_assets/increments.py):
the table's own snapshot, the upstream snapshots this step loaded, and the upstream rows that
changed since the snapshots the table last read — all through the IO manager, so each engine
gets frames of its own kind."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from dagster import AssetExecutionContext

from stedi_assets.check_rules import SincePassed
from stedi_assets.increments import FULL_REFRESH_TAG, FULL_VERIFICATION_TAG, Plan, plan
from stedi_assets.io.check_verdicts import last_pass
from stedi_assets.io.iceberg_io import (
    IcebergIOManager,
    TableNotMaterializedError,
    step_reads,
    step_writes,
)
from stedi_assets.io.iceberg_maintenance import IcebergTableError


def _tagged(context, tag: str) -> bool:
    return context.run.tags.get(tag, "").strip().lower() in ("1", "true", "yes")


def full_refresh_asked(context: AssetExecutionContext) -> bool:
    return _tagged(context, FULL_REFRESH_TAG)


def _this_step(context) -> tuple[str, str]:
    """(run id, step key) of the step running (an asset's or a check's)."""
    return (context.run.run_id,
            context.op_execution_context.get_step_execution_context().step.key)


def reads_of_step(context) -> dict[str, int]:
    """{table: snapshot id} the current step has loaded."""
    return step_reads(_this_step(context))


def writes_of_step(context) -> dict[str, int]:
    """{table: snapshot id} the current step has stored (what its in-step checks judge)."""
    return step_writes(_this_step(context))


def plan_update(context: AssetExecutionContext, store: IcebergIOManager, table: str,
                version: str, landing: tuple[str, ...] = ()) -> Plan:
    try:
        base = store.snapshot(table)
    except TableNotMaterializedError:
        base = None
    loaded = reads_of_step(context)
    return plan(table, version, full_refresh=full_refresh_asked(context), base=base,
                loaded=loaded, changes=store.tables.changes, landing=landing)


def rows_before(store: IcebergIOManager, upstream_plan: Plan, table: str) -> Any:
    """The upstream table as the incremental table last read it."""
    return store.scan_snapshot(store.snapshot(table, upstream_plan.consumed[table]))


def rows_changed(store: IcebergIOManager, upstream_plan: Plan, table: str
                 ) -> tuple[Any | None, Any | None]:
    """(rows of the upstream data files removed since, rows of those added since); None where
    no file was removed or added."""
    change = upstream_plan.changes[table]

    def rows_of(files: tuple[str, ...], snapshot_id: int) -> Any | None:
        if not files:
            return None
        return store.scan_snapshot(replace(store.snapshot(table, snapshot_id), files=files))

    return (rows_of(change.removed, upstream_plan.consumed[table]),
            rows_of(change.added, upstream_plan.loaded[table]))


def since_last_pass(context, store: IcebergIOManager, table: str, check: str, version: str,
                    customers: tuple[str, str]) -> tuple[SincePassed | None, str | None]:
    """(what changed since `check` last passed on `table`, None) for an incremental
    evaluation, or (None, why every row is checked). `customers`: the customer landing table
    and its rejects table."""
    if full_refresh_asked(context) or _tagged(context, FULL_VERIFICATION_TAG):
        return None, "a full verification was asked for (run tag)"
    reads = reads_of_step(context)
    record = last_pass(store.tables.load(table).properties, check)
    if record is None:
        return None, "no earlier pass recorded"
    if record.get("version") != version:
        return None, "the check's code or settings changed since its last pass"
    try:
        then = store.snapshot(table, int(record["snapshot"]))
        now = store.snapshot(table, reads[table])
        landing, changed = [], []
        for name in customers:
            before = store.snapshot(name, int(record["upstream"][name]))
            change = store.tables.changes(name, before.snapshot_id, reads[name])
            if change is None:
                raise IcebergTableError(f"{name}: no record of what changed")
            landing.append(store.scan_snapshot(before))
            # the records of the files added since and of the files removed since
            changed.append(store.scan_snapshot(replace(
                before, files=(*change.added, *change.removed))))
    except (IcebergTableError, KeyError, TypeError, ValueError):
        return None, "a snapshot of its last pass was expired"
    old = set(then.files)
    added = tuple(f for f in now.files if f not in old)
    kept = tuple(f for f in now.files if f in old)
    return SincePassed(store.scan_snapshot(replace(now, files=added)),
                       store.scan_snapshot(replace(now, files=kept)), *landing, *changed,
                       rows_in_table=now.rows), None
