"""One step of the graph as a Glue job runs it: read inputs, call the engine, write the outputs,
compute the asset checks, and describe the results for Dagster.

Engine-neutral wiring only: every figure comes from the engine module `ops` (spark_engine on
Glue) with the same function names and arguments the Dagster assets use. No Dagster, no Spark,
no environment here, so the Glue job needs neither dagster nor this package's Dagster modules.
The checks are computed by `check_rules`, as the local assets compute them; here their outcomes
only become Pipes reports (`CheckReport`). `test_check_rules.py` compares both paths.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from stedi_assets import check_rules, schemas
from stedi_assets.check_rules import CheckOutcome
from stedi_assets.engines.protocol import EngineOps
from stedi_assets.variables import default

#: Step (the local asset's op name, the Glue job's suffix) -> the tables it writes, in an
#: order where every step comes after the steps it reads from.
STEP_OUTPUTS: dict[str, tuple[str, ...]] = {
    **{f"land_{t.source}": (t.name, schemas.rejects_table(t).name)
       for t in schemas.LANDING_TABLES},
    **{name: (name,) for name in ("customer_trusted", "accelerometer_trusted",
                                  "customer_curated", "step_trainer_trusted",
                                  "machine_learning_curated")},
}


class TableIO(Protocol):
    """Reads and writes the lakehouse's tables in the engine's frames."""

    def read(self, table: str) -> Any:
        """The table at one snapshot (the same one for every read in a step)."""

    def write(self, table: str, frame: Any) -> Any:
        """Write (commit) the table and return it as read back (what the checks look at)."""

    def uri(self, table: str) -> str: ...

    def commit_metadata(self, table: str) -> dict[str, Any]:
        """What the write committed (snapshot ids, upstream snapshots), for the UI."""


@dataclass(frozen=True)
class StepOptions:
    consent_as_of_date: bool = False
    shared_devices: str = default("STEDI_SHARED_DEVICES")  # or "exclude"
    pseudonym_secret: str = ""
    min_join_coverage: float = float(default("STEDI_MIN_JOIN_COVERAGE"))
    max_reject_share: float = float(default("STEDI_MAX_REJECT_SHARE"))


@dataclass(frozen=True)
class LandingInput:
    """A landing source as the job read it: its lines (file, line_number, line), the files and
    the lines counted in their raw bytes (for the conservation check)."""

    lines: Any
    files: list[str]
    lines_in_files: int
    #: entries not read, each "path: reason" (symbolic links leading outside the landing root)
    skipped: tuple[str, ...] = ()


@dataclass
class TableReport:
    table: str
    rows: int
    column_types: dict[str, str]
    uri: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class CheckReport:
    """A check result as the job reports it through Pipes."""

    table: str
    name: str
    passed: bool
    severity: str  # "ERROR" | "WARN"
    description: str | None  # the result in a sentence (None: the check's description says it)
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, outcome: CheckOutcome) -> CheckReport:
        return cls(outcome.asset, outcome.name, outcome.passed, outcome.severity,
                   outcome.result, outcome.metadata)


@dataclass
class StepResult:
    tables: list[TableReport] = field(default_factory=list)
    checks: list[CheckReport] = field(default_factory=list)


def run_step(step: str, ops: EngineOps, io: TableIO, options: StepOptions,
             landing: LandingInput | None = None) -> StepResult:
    """Compute, write and check one step; the tables it reads must be materialized."""
    if step not in STEP_OUTPUTS:
        raise ValueError(f"unknown step {step!r}; known: {sorted(STEP_OUTPUTS)}")
    if step.startswith("land_"):
        if landing is None:
            raise ValueError(f"step {step} needs the landing lines")
        return _land(schemas.TABLES[STEP_OUTPUTS[step][0]], ops, io, options, landing)
    return _ZONE_STEPS[step](ops, io, options)


def _written(io: TableIO, ops: EngineOps, table: str, frame: Any,
             metadata: dict[str, Any] | None = None) -> tuple[Any, TableReport]:
    written = io.write(table, frame)
    return written, TableReport(table, ops.row_count(written), ops.frame_logical_schema(written),
                                io.uri(table), {**(metadata or {}), **io.commit_metadata(table)})


# -- landing ---------------------------------------------------------------------------------

def _land(table: schemas.Table, ops: EngineOps, io: TableIO, options: StepOptions,
          landing: LandingInput) -> StepResult:
    rejects_table = schemas.rejects_table(table)
    rows, rejects, unknown = ops.parse_landing(landing.lines, table)
    rows, rows_report = _written(io, ops, table.name, rows)
    rejects, rejects_report = _written(io, ops, rejects_table.name, rejects)
    landed, rejected = rows_report.rows, rejects_report.rows
    rows_report.metadata.update({
        "files": len(landing.files), "files_skipped": len(landing.skipped),
        "lines_rejected": rejected,
        **({"unknown_keys": unknown} if isinstance(unknown, dict) else {})})
    rejects_report.metadata.update({"lines_rejected": rejected})
    return StepResult([rows_report, rejects_report], [CheckReport.of(outcome) for outcome in (
        check_rules.schema_outcome(table, rows_report.column_types),
        check_rules.conservation_outcome(table, landing.lines_in_files, landed, rejected),
        check_rules.quarantine_rate_outcome(table, landed, rejected, options.max_reject_share),
    )])


# -- checks shared by the zone steps ---------------------------------------------------------

def _non_consenting_devices(ops: EngineOps, io: TableIO) -> Any:
    return ops.non_consenting_devices(io.read("customer_landing"),
                                      io.read("customer_landing_rejects"))


def consent_check(table: str, frame: Any, ops: EngineOps, io: TableIO,
                  options: StepOptions) -> CheckReport:
    return CheckReport.of(check_rules.consent_outcome(
        table, ops, frame, io.read("customer_landing"), io.read("customer_landing_rejects"),
        secret=options.pseudonym_secret, consent_as_of_date=options.consent_as_of_date,
        shared_devices=options.shared_devices))


def shared_devices_check(table: str, frame: Any, ops: EngineOps, io: TableIO,
                         options: StepOptions) -> CheckReport:
    return CheckReport.of(check_rules.shared_devices_outcome(
        table, ops, frame, io.read("customer_landing"), io.read("customer_landing_rejects"),
        shared_devices=options.shared_devices))


def join_coverage_check(table: str, ops: EngineOps, io: TableIO, options: StepOptions,
                        step_trainer_trusted: Any, rows_in_table: int | None = None
                        ) -> CheckReport:
    return CheckReport.of(check_rules.join_coverage_outcome(
        table, ops, step_trainer_trusted, io.read("accelerometer_trusted"),
        io.read("customer_landing"), min_join_coverage=options.min_join_coverage,
        rows_in_table=rows_in_table))


# -- trusted and curated steps ---------------------------------------------------------------

def _customer_trusted(ops: EngineOps, io: TableIO, options: StepOptions) -> StepResult:
    frame, report = _written(io, ops, "customer_trusted",
                             ops.customer_trusted(io.read("customer_landing"),
                                                  io.read("customer_landing_rejects")))
    return StepResult([report], [consent_check("customer_trusted", frame, ops, io, options)])


def _accelerometer_trusted(ops: EngineOps, io: TableIO, options: StepOptions) -> StepResult:
    readings, removed = ops.without_exact_duplicates(ops.accelerometer_trusted(
        io.read("accelerometer_landing"), io.read("customer_trusted"),
        consent_as_of_date=options.consent_as_of_date, deduplicate=False))
    metadata = {"duplicate_rows_removed": removed,
                "consent_as_of_date": options.consent_as_of_date}
    frame, report = _written(io, ops, "accelerometer_trusted", readings, metadata)
    return StepResult([report], [consent_check("accelerometer_trusted", frame, ops, io,
                                               options)])


def _step_trainer_trusted(ops: EngineOps, io: TableIO, options: StepOptions) -> StepResult:
    excluded = (_non_consenting_devices(ops, io) if options.shared_devices == "exclude"
                else None)
    readings, duplicates = ops.without_exact_duplicates(ops.step_trainer_trusted(
        io.read("step_trainer_landing"), io.read("customer_curated"), deduplicate=False,
        excluded_devices=excluded))
    frame, report = _written(io, ops, "step_trainer_trusted", readings,
                             {"duplicate_rows_removed": duplicates,
                              "shared_devices": options.shared_devices})
    return StepResult([report], [
        consent_check("step_trainer_trusted", frame, ops, io, options),
        shared_devices_check("step_trainer_trusted", frame, ops, io, options),
        join_coverage_check("step_trainer_trusted", ops, io, options, frame),
    ])


def _customer_curated(ops: EngineOps, io: TableIO, options: StepOptions) -> StepResult:
    frame, report = _written(io, ops, "customer_curated", ops.customer_curated(
        io.read("customer_trusted"), io.read("accelerometer_trusted"),
        secret=options.pseudonym_secret))
    return StepResult([report], [consent_check("customer_curated", frame, ops, io, options)])


def _machine_learning_curated(ops: EngineOps, io: TableIO, options: StepOptions) -> StepResult:
    step_trainer = io.read("step_trainer_trusted")
    frame, report = _written(io, ops, "machine_learning_curated", ops.machine_learning_curated(
        step_trainer, io.read("accelerometer_trusted"), secret=options.pseudonym_secret))
    return StepResult([report], [
        consent_check("machine_learning_curated", frame, ops, io, options),
        join_coverage_check("machine_learning_curated", ops, io, options, step_trainer,
                            rows_in_table=report.rows),
    ])


_ZONE_STEPS: dict[str, Callable[[EngineOps, TableIO, StepOptions], StepResult]] = {
    "customer_trusted": _customer_trusted,
    "accelerometer_trusted": _accelerometer_trusted,
    "step_trainer_trusted": _step_trainer_trusted,
    "customer_curated": _customer_curated,
    "machine_learning_curated": _machine_learning_curated,
}
