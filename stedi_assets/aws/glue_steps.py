"""One step of the graph as a Glue job runs it: read inputs, call the engine, write the outputs,
compute the asset checks, and describe the results for Dagster.

Engine-neutral wiring only: every figure comes from the engine module `ops` (spark_engine on
Glue) with the same function names and arguments the Dagster assets use. No Dagster, no Spark,
no environment here, so the Glue job needs neither dagster nor this package's Dagster modules.
The check names, severities and figures mirror `assets/landing.py`, `assets/checks.py` and the
join-coverage checks; a test compares them with the local graph.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from stedi_assets import schemas
from stedi_assets.engines.protocol import EngineOps
from stedi_assets.transforms.pseudonyms import reported_keys

#: Step (the local asset's op name, the Glue job's suffix) -> the tables it writes, in an
#: order where every step comes after the steps it reads from.
STEP_OUTPUTS: dict[str, tuple[str, ...]] = {
    **{f"land_{t.source}": (t.name, schemas.rejects_table(t).name)
       for t in schemas.LANDING_TABLES},
    **{name: (name,) for name in ("customer_trusted", "accelerometer_trusted",
                                  "customer_curated", "step_trainer_trusted",
                                  "machine_learning_curated")},
}

CONSENT_KEYS = schemas.CONSENT_KEYS


class TableIO(Protocol):
    """Reads and writes <root>/<zone>/<table>/ in the engine's frames."""

    def read(self, table: str) -> Any: ...

    def write(self, table: str, frame: Any) -> Any:
        """Write the table and return it as read back (what the checks look at)."""

    def uri(self, table: str) -> str: ...


@dataclass(frozen=True)
class StepOptions:
    consent_as_of_date: bool = False
    shared_devices: str = "include"  # or "exclude" (STEDI_SHARED_DEVICES)
    pseudonym_secret: str = ""
    min_join_coverage: float = 0.5
    max_reject_share: float = 0.01


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
    table: str
    name: str
    passed: bool
    severity: str  # "ERROR" | "WARN"
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)


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
                                io.uri(table), metadata or {})


# -- landing ---------------------------------------------------------------------------------

def _land(table: schemas.Table, ops: EngineOps, io: TableIO, options: StepOptions,
          landing: LandingInput) -> StepResult:
    rejects_table = schemas.rejects_table(table)
    rows, rejects, unknown = ops.parse_landing(landing.lines, table)
    rows, rows_report = _written(io, ops, table.name, rows)
    rejects, rejects_report = _written(io, ops, rejects_table.name, rejects)
    landed, rejected = rows_report.rows, rejects_report.rows
    rows_report.metadata = {"files": len(landing.files), "files_skipped": len(landing.skipped),
                            "lines_rejected": rejected,
                            **({"unknown_keys": unknown} if isinstance(unknown, dict) else {})}
    rejects_report.metadata = {"lines_rejected": rejected}
    problems = schemas.schema_problems(rows_report.column_types, table)
    lost = landing.lines_in_files - landed - rejected
    share = rejected / (landed + rejected) if landed + rejected else 0.0
    return StepResult([rows_report, rejects_report], [
        CheckReport(table.name, "schema", not problems, "ERROR", "declared columns and types"
                    if not problems else "; ".join(problems),
                    {"problems": problems or ["none"]}),
        CheckReport(table.name, "conservation", lost == 0, "ERROR",
                    "every line accounted for" if lost == 0
                    else f"{lost} line(s) neither landed nor quarantined",
                    {"lines_in_files": landing.lines_in_files, "rows_landed": landed,
                     "lines_rejected": rejected, "unaccounted": lost}),
        CheckReport(table.name, "quarantine_rate", share <= options.max_reject_share, "WARN",
                    f"{share:.2%} of lines quarantined (warn above "
                    f"{options.max_reject_share:.2%})",
                    {"lines_rejected": rejected, "rows_landed": landed,
                     "reject_share": float(round(share, 6)),
                     "warn_above": options.max_reject_share}),
    ])


# -- checks shared by the zone steps ---------------------------------------------------------

def _non_consenting_devices(ops: EngineOps, io: TableIO) -> Any:
    return ops.non_consenting_devices(io.read("customer_landing"),
                                      io.read("customer_landing_rejects"))


def consent_check(table: str, frame: Any, ops: EngineOps, io: TableIO,
                  options: StepOptions) -> CheckReport:
    consenting = ops.consenting_customers(io.read("customer_landing"), options.pseudonym_secret,
                                          io.read("customer_landing_rejects"))
    excluded = (_non_consenting_devices(ops, io) if options.shared_devices == "exclude"
                else None)
    keys = CONSENT_KEYS[table]
    results = [
        ops.consent_violations(frame, consenting, key, consenting_key,
                               time_column=time_column if options.consent_as_of_date else None,
                               excluded=excluded if consenting_key == "serialNumber" else None)
        for key, consenting_key, time_column in keys
    ]
    sample = [k for (_, consenting_key, _), r in zip(keys, results, strict=True)
              for k in reported_keys(r["sample"], consenting_key, options.pseudonym_secret)][:5]
    violations = max(r["violations"] for r in results)
    return CheckReport(
        table, "consent", violations == 0, "ERROR",
        "every row belongs to a consenting customer" if violations == 0
        else f"{violations} row(s) of non-consenting customers",
        {"rows_checked": results[0]["rows_checked"], "violations": violations,
         "violating_keys_sample": sample,
         "consent_as_of_date": options.consent_as_of_date,
         "shared_devices": options.shared_devices},
    )


def shared_devices_check(table: str, frame: Any, ops: EngineOps, io: TableIO,
                         options: StepOptions) -> CheckReport:
    figures = ops.shared_device_rows(frame, io.read("customer_landing"),
                                     io.read("customer_landing_rejects"))
    rows, devices = figures["shared_device_rows"], figures["shared_devices"]
    return CheckReport(
        table, "shared_devices", rows == 0, "WARN",
        f"{rows} of {figures['rows_checked']} row(s) come from {devices} device(s) that also "
        "belong to a customer without research consent"
        + ("" if rows == 0 or options.shared_devices == "exclude"
           else " (STEDI_SHARED_DEVICES=exclude drops them)"),
        {**figures, "shared_devices_setting": options.shared_devices},
    )


def join_coverage_check(table: str, ops: EngineOps, io: TableIO, options: StepOptions,
                        step_trainer_trusted: Any, rows_in_table: int | None = None
                        ) -> CheckReport:
    figures = ops.join_coverage(step_trainer_trusted, io.read("accelerometer_trusted"),
                                io.read("customer_landing"))
    consistent = rows_in_table is None or rows_in_table == figures["joined_rows"]
    covered = figures["coverage"] >= options.min_join_coverage
    return CheckReport(
        table, "join_coverage", covered and consistent, "WARN",
        f"{figures['coverage']:.1%} of step readings found accelerometer readings at the same "
        f"time (warn below {options.min_join_coverage:.0%}); {figures['foreign_share']:.1%} of "
        "joined pairs pair a device with another customer's phone",
        {**figures, "coverage": float(round(figures["coverage"], 6)),
         "rows_per_matched_reading": float(round(figures["rows_per_matched_reading"], 6)),
         "foreign_share": float(round(figures["foreign_share"], 6)),
         "warn_below": options.min_join_coverage,
         **({"rows_in_table": rows_in_table} if rows_in_table is not None else {})},
    )


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
