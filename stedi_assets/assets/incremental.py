"""What an incremental table's asset needs to plan its update (stedi_assets/increments.py):
the table's own snapshot, the upstream snapshots this step loaded, and the upstream rows that
changed since the snapshots the table last read — all through the IO manager, so each engine
gets frames of its own kind."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from dagster import AssetExecutionContext

from stedi_assets.increments import FULL_REFRESH_TAG, Plan, plan
from stedi_assets.io.iceberg_io import IcebergIOManager, TableNotMaterializedError, step_reads


def full_refresh_asked(context: AssetExecutionContext) -> bool:
    return context.run.tags.get(FULL_REFRESH_TAG, "").strip().lower() in ("1", "true", "yes")


def plan_update(context: AssetExecutionContext, store: IcebergIOManager, table: str,
                version: str, landing: tuple[str, ...] = ()) -> Plan:
    try:
        base = store.snapshot(table)
    except TableNotMaterializedError:
        base = None
    step = context.op_execution_context.get_step_execution_context()
    loaded = step_reads((context.run.run_id, step.step.key))
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
