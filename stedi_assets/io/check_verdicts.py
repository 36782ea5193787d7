"""Blocking check failures, recorded on the table they failed on, so that what such a check
found is never read later as good data: not by the next run, not by a run that selects only
a downstream table, not by the other engine or a Glue job. Engine-neutral and Dagster-free.

Dagster stops the downstream assets of a failed blocking check in the run where it failed;
nothing stops a later run from reading that snapshot. So a failure is written into the
table's Iceberg properties (`stedi.blocked`: the snapshot id, the failed checks, the run), a
metadata-only commit:

- a table is not committed from a blocked snapshot of an upstream table (`refuse_blocked`,
  called by both engines' writers before the commit): the step fails, saying which check
  failed and what to do;
- an incremental table whose own snapshot is blocked is rebuilt in full from its inputs
  instead of being updated on top of rows that failed (`increments.plan`);
- the check passing on that same snapshot later (its inputs fixed, the table unchanged)
  lifts the block. A new snapshot of the table is never blocked by the record of an older
  one; its own checks decide.

A pass may record what it passed on (`stedi.passed.<check>`: the table's snapshot, the
upstream snapshots, the check's version), from which the next evaluation checks only what
changed (the consent checks, check_rules.SincePassed). A failure leaves that record as it
was, so the next evaluation looks again at everything since the last pass. A non-blocking
check may keep its figures likewise (`stedi.figures.<check>`, the join-coverage checks).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from stedi_assets.io.iceberg_catalog import COMMIT_ATTEMPTS, backoff, is_retryable
from stedi_assets.io.iceberg_maintenance import IcebergTableError

BLOCKED_PROPERTY = "stedi.blocked"
PASSED_PROPERTY = "stedi.passed.{check}"
FIGURES_PROPERTY = "stedi.figures.{check}"


class BlockedSnapshotError(IcebergTableError):
    """A step would commit a table computed from a snapshot that failed a blocking check."""


def failed_checks(properties: Mapping[str, str], snapshot_id: int) -> tuple[str, ...]:
    """The blocking checks recorded as failed on `snapshot_id` (empty: not blocked)."""
    raw = properties.get(BLOCKED_PROPERTY)
    if not raw:
        return ()
    try:
        record = json.loads(raw)
        recorded, checks = str(record["snapshot"]), tuple(str(c) for c in record["checks"])
    except (ValueError, KeyError, TypeError):  # when in doubt, the data stays out
        return (f"(an unreadable {BLOCKED_PROPERTY} record)",)
    return checks if recorded == str(snapshot_id) else ()


def _record(properties: Mapping[str, str], name: str) -> dict | None:
    try:
        record = json.loads(properties.get(name, ""))
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def last_pass(properties: Mapping[str, str], check: str) -> dict | None:
    """What `check` last passed on (None: no usable record)."""
    return _record(properties, PASSED_PROPERTY.format(check=check))


def last_figures(properties: Mapping[str, str], check: str) -> dict | None:
    """The figures of `check`'s last evaluation and what it read (None: no usable record)."""
    return _record(properties, FIGURES_PROPERTY.format(check=check))


def record_figures(tables, table: str, check: str, record: Mapping[str, object]) -> None:
    """Keep a non-blocking check's figures with the table, with what they were computed from
    (the next evaluation adds the change to them: check_rules.CoverageSince). A metadata
    commit, retried on a commit race like a data commit."""
    def commit() -> None:
        iceberg = tables.load(table)
        if last_figures(iceberg.properties, check) != record:
            with iceberg.transaction() as tx:
                tx.set_properties(**{FIGURES_PROPERTY.format(check=check):
                                     json.dumps(record, sort_keys=True)})

    _retried(commit)


def _retried(commit) -> None:
    for attempt in range(COMMIT_ATTEMPTS):
        try:
            return commit()
        except Exception as exc:  # noqa: BLE001 - only commit races are retried
            if not is_retryable(exc) or attempt == COMMIT_ATTEMPTS - 1:
                raise
            backoff(attempt)


def record_verdict(tables, table: str, snapshot_id: int, check: str, passed: bool,
                   run_id: str = "", passed_on: Mapping[str, object] | None = None) -> None:
    """Record a blocking check's outcome on the snapshot it evaluated: a failure blocks the
    snapshot, a pass lifts that check's block (and records `passed_on`, when given, with the
    snapshot). One metadata commit, only when the record changes."""
    def commit() -> None:
        iceberg = tables.load(table)
        before = failed_checks(iceberg.properties, snapshot_id)
        after = tuple(sorted({*before, check} if not passed else set(before) - {check}))
        updates: dict[str, str] = {}
        if after != before and after:
            updates[BLOCKED_PROPERTY] = json.dumps(
                {"snapshot": str(snapshot_id), "checks": list(after), "run": run_id})
        if passed and passed_on is not None:
            record = {"snapshot": str(snapshot_id), **passed_on}
            if last_pass(iceberg.properties, check) != record:
                updates[PASSED_PROPERTY.format(check=check)] = json.dumps(
                    record, sort_keys=True)
        if not updates and after == before:
            return
        with iceberg.transaction() as tx:
            if updates:
                tx.set_properties(**updates)
            if not after and before:
                tx.remove_properties(BLOCKED_PROPERTY)

    _retried(commit)


def refuse_blocked(tables, reads: Mapping[str, int], writing: str) -> None:
    """BlockedSnapshotError when a snapshot in `reads` ({table: snapshot id} a step read) is
    blocked now: `writing` is not committed from it."""
    blocked = {table: checks for table, snapshot in sorted(reads.items())
               if (checks := failed_checks(tables.load(table).properties, snapshot))}
    if blocked:
        raise BlockedSnapshotError(
            f"{writing} was not written: it was computed from "
            + "; ".join(f"{table} snapshot {reads[table]}, which failed its blocking "
                        f"check(s) {', '.join(checks)}" for table, checks in blocked.items())
            + ". Rows that failed a blocking check never reach the tables downstream. Fix the "
            "cause, then materialize " + _names(blocked) + " again with its checks (a full run "
            "does both); the checks passing lift the block.")


def _names(tables: Iterable[str]) -> str:
    names = list(tables)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
