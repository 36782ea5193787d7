"""What an incremental table's asset needs to plan its update (stedi_assets/increments.py):
the table's own snapshot, the upstream snapshots this step loaded, and the upstream rows that
changed since the snapshots the table last read — all through the IO manager, so each engine
gets frames of its own kind."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import polars as pl
import pyarrow as pa
from dagster import AssetExecutionContext, Output

from stedi_assets.check_rules import JOIN_COUNTS, CoverageSince, SincePassed
from stedi_assets.increments import (
    FULL_REFRESH_TAG,
    FULL_VERIFICATION_TAG,
    Affected,
    Plan,
    TableUpdate,
    plan,
)
from stedi_assets.io.check_verdicts import last_figures, last_pass
from stedi_assets.io.iceberg_io import (
    IcebergIOManager,
    TableNotMaterializedError,
    step_reads,
    step_writes,
)
from stedi_assets.io.iceberg_maintenance import IcebergTableError
from stedi_assets.io.iceberg_partitions import DAY_MS, files_on_days


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
    except IcebergTableError as unreadable:  # e.g. delete files: a rebuild replaces them
        return Plan(table, f"its current snapshot cannot be updated: {unreadable}")
    loaded = reads_of_step(context)
    return plan(table, version, full_refresh=full_refresh_asked(context), base=base,
                loaded=loaded, changes=store.tables.changes, landing=landing)


def kept_or_rebuilt(plan: Plan, version: str, rows: Callable[[], Any]) -> Output:
    """A table rebuilt in full from its inputs (`rows()`), unless none of them moved since it
    was built: then it is kept as it is, and `rows` only serves a rebuild after a race."""
    metadata = plan.metadata
    if plan.inputs_unchanged:
        return Output(TableUpdate(version, base=plan.base, full=rows), metadata=metadata)
    if not plan.full_reason:
        metadata.update({"incremental": False,
                         "incremental/full_reason": "an upstream table changed"})
    return Output(TableUpdate(version, rows=rows()), metadata=metadata)


def rows_before(store: IcebergIOManager, upstream_plan: Plan, table: str) -> Any:
    """The upstream table as the incremental table last read it."""
    return store.scan_snapshot(store.snapshot(table, upstream_plan.consumed[table]))


def rows_changed(store: IcebergIOManager, upstream_plan: Plan, table: str
                 ) -> tuple[Any | None, Any | None]:
    """(rows of the upstream data files removed since, rows of those added since); None where
    no file was removed or added."""
    return changed_rows(store, table, upstream_plan.consumed[table],
                        upstream_plan.loaded[table], upstream_plan.changes[table])


def rows_added_only(store: IcebergIOManager, upstream_plan: Plan, tables: tuple[str, ...]
                    ) -> dict[str, Any | None] | None:
    """{table: rows of its data files added since this table last read it, or None when it
    gained none} when none of `tables` lost a data file since (rows were only added: an
    upstream update rewrites or drops the files holding rows it removes, and a compaction
    rewrites files too); None when one of them did, or its change is not known."""
    added = {}
    for table in tables:
        change = upstream_plan.changes.get(table)
        if change is None or change.removed:
            return None
        added[table] = rows_changed(store, upstream_plan, table)[1]
    return added


def changed_rows(store: IcebergIOManager, table: str, before: int, after: int,
                 change=None) -> tuple[Any | None, Any | None]:
    """(rows of the data files of `table` removed between two snapshots, rows of those
    added); None where no file was. IcebergTableError when the change is not known."""
    change = change or store.tables.changes(table, before, after)
    if change is None:
        raise IcebergTableError(f"{table}: no record of what changed")

    def rows_of(files: tuple[str, ...], snapshot_id: int) -> Any | None:
        if not files:
            return None
        return store.scan_snapshot(replace(store.snapshot(table, snapshot_id), files=files))

    return rows_of(change.removed, before), rows_of(change.added, after)


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
    # files rewritten since from files that passed (a withdrawal's, a compaction's) hold
    # rows that passed: kept, not added
    old = set(then.files)
    old |= store.tables.carried_files(table, then.snapshot_id, now.snapshot_id, old)
    added = tuple(f for f in now.files if f not in old)
    kept = tuple(f for f in now.files if f in old)
    return SincePassed(store.scan_snapshot(replace(now, files=added)),
                       store.scan_snapshot(replace(now, files=kept)), *landing, *changed,
                       rows_in_table=now.rows), None


#: the tables machine_learning_curated joins, in the order of `machine_learning_curated_affected`
READING_TABLES = ("step_trainer_trusted", "accelerometer_trusted")


def logged_instants(store: IcebergIOManager, before: dict[str, int], after: dict[str, int]
                    ) -> pa.Array | None:
    """The instants the change logs of both reading tables name between the snapshots
    `before` and `after` (None: a snapshot in between has no log)."""
    logged = [store.tables.changed_instants(t, before[t], after[t]) for t in READING_TABLES]
    return pa.concat_arrays(logged) if all(log is not None for log in logged) else None


def changed_readings(store: IcebergIOManager, ops, before: dict[str, int],
                     after: dict[str, int], changes: dict | None = None, *,
                     compare_files: bool = True) -> Affected | None:
    """The instants where step_trainer_trusted or accelerometer_trusted gained or lost a row
    between the snapshots `before` and `after` ({table: snapshot id}): from the change logs
    their incremental updates keep (iceberg_changes.changed_instants), else — a snapshot in
    between has none, e.g. a full rebuild — from the rows of the data files removed and
    added (`changes`: the plan's, when known), or None with `compare_files` False.
    IcebergTableError when neither is known."""
    logged = logged_instants(store, before, after)
    if logged is not None:
        return Affected("machine_learning_curated", times=store.instants_frame(logged))
    if not compare_files:
        return None
    changed = [rows for t in READING_TABLES for rows in changed_rows(
        store, t, before[t], after[t], (changes or {}).get(t))]
    return ops.machine_learning_curated_affected(*changed)


#: what the join-coverage checks read, and record having read
COVERAGE_INPUTS = ("step_trainer_trusted", "accelerometer_trusted", "customer_landing")


def coverage_since(context, store: IcebergIOManager, ops, table: str, version: str,
                   customer_landing: Any) -> tuple[CoverageSince | None, str | None]:
    """(what changed since the join-coverage check of `table` was last evaluated, None) for
    an incremental evaluation, or (None, why every instant is evaluated)."""
    if full_refresh_asked(context) or _tagged(context, FULL_VERIFICATION_TAG):
        return None, "a full verification was asked for (run tag)"
    record = last_figures(store.tables.load(table).properties, "join_coverage")
    if record is None:
        return None, "no earlier evaluation recorded"
    if record.get("version") != version:
        return None, "the check's code or settings changed since its last evaluation"
    reads = reads_of_step(context)
    try:
        then = {t: int(record["upstream"][t]) for t in COVERAGE_INPUTS}
        counts = {k: int(record["counts"][k]) for k in JOIN_COUNTS}
        if then["customer_landing"] != reads["customer_landing"] and not _same_owners(
                store, ops, then["customer_landing"], reads["customer_landing"],
                customer_landing):
            return None, "a customer's devices changed since its last evaluation"
        # without change logs (a reading table rebuilt in full, a Glue job) the changed
        # instants would come from comparing whole tables row by row: slower than evaluating
        # every instant, and far more memory (9 GB against 2 at SF1000)
        instants = logged_instants(store, then, reads)
        if instants is None:
            return None, "a reading table was rebuilt without a change log since"
        # only the data files of the changed instants' days hold rows at those instants
        days = set((pl.Series(instants, dtype=pl.Int64) // DAY_MS).unique().to_list())

        def on_days(table: str, snapshot_id: int) -> Any:
            snapshot = store.snapshot(table, snapshot_id)
            return store.scan_snapshot(replace(snapshot, files=tuple(
                files_on_days(snapshot.files, days))))

        return CoverageSince(
            counts, *(on_days(t, ids[t]) for ids in (then, reads) for t in READING_TABLES),
            Affected("machine_learning_curated", times=store.instants_frame(instants)),
            key=_coverage_key(ops, then, reads, counts)), None
    except (IcebergTableError, KeyError, TypeError, ValueError):
        return None, "a snapshot of its last evaluation was expired"


def _shared_ops_name(ops) -> str | None:
    """The name of an engine's ops module, under which results computed with it may be
    shared within a process; None for other ops (a test's stand-in), whose results never are."""
    return getattr(ops, "__name__", None)


#: the last comparison of device owners, by (engine ops module, customer_landing snapshot
#: then, now): both join-coverage checks of a run compare the same two snapshots
_OWNERS_COMPARED: dict[tuple[str, int, int], bool] = {}


def _same_owners(store: IcebergIOManager, ops, then: int, now: int, customer_landing: Any
                 ) -> bool:
    """ops.same_owners of customer_landing's snapshot `then` and `customer_landing` (its
    snapshot `now`), computed once for both checks of a run (snapshots never change)."""
    engine = _shared_ops_name(ops)
    key = (engine, then, now)
    if engine is not None and key in _OWNERS_COMPARED:
        return _OWNERS_COMPARED[key]
    same = ops.same_owners(store.scan_snapshot(store.snapshot("customer_landing", then)),
                           customer_landing)
    if engine is not None:
        _OWNERS_COMPARED.clear()
        _OWNERS_COMPARED[key] = same
    return same


def _coverage_key(ops, then: dict[str, int], reads: dict[str, int], counts: dict[str, int]
                  ) -> str | None:
    """What an incremental join-coverage sum is computed from (CoverageSince.key): the
    snapshots then and now, the counts then, and the engine's ops (see _shared_ops_name)."""
    engine = _shared_ops_name(ops)
    if engine is None:
        return None
    return json.dumps({"then": then, "now": {t: reads[t] for t in COVERAGE_INPUTS},
                       "counts": counts, "engine": engine}, sort_keys=True)


def coverage_record(context, version: str, figures: dict[str, Any]) -> dict[str, Any]:
    """What a join-coverage evaluation keeps for the next one (`coverage_since`)."""
    reads = reads_of_step(context)
    return {"version": version, "upstream": {t: str(reads[t]) for t in COVERAGE_INPUTS},
            "counts": {k: int(figures[k]) for k in JOIN_COUNTS}}
