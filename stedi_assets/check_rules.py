"""Every asset check of the STEDI graph, once: what it is (table, name, severity, blocking, the
spec's description) and what an evaluation finds (passed, the result's description, figures).

No Dagster here, so the Glue job can import it: the local assets turn an outcome into an
AssetCheckResult (`assets/checks.py`), the Glue steps into a Pipes report (`aws/glue_steps.py`).
A check changes here and nowhere else; `test_check_rules.py` proves both paths give the same
outcomes. Figures come from the engine's check functions (`ops`: Polars or Spark) given the
frames, and every metadata value is a plain Python value (`figures.plain`), as Dagster and
Pipes want them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

from stedi_assets import schemas
from stedi_assets.figures import plain
from stedi_assets.transforms.figures import EarlierCustomers, join_coverage_figures
from stedi_assets.transforms.pseudonyms import reported_keys

#: Severities by the names of Dagster's AssetCheckSeverity values (Pipes sends these strings).
ERROR, WARN = "ERROR", "WARN"
#: At most this many violating keys are reported by a consent check.
MAX_REPORTED_KEYS = 5


class CheckFigures(Protocol):
    """The figure functions of an engine (`transforms/polars`, `transforms/spark`) the
    checks call; frames are the engine's own (LazyFrame, Spark DataFrame)."""

    def consenting_customers(self, customer_landing: Any, secret: str,
                             customer_landing_rejects: Any = None, kept: Any = None,
                             earlier: EarlierCustomers | None = None) -> Any: ...

    def non_consenting_devices(self, customer_landing: Any,
                               customer_landing_rejects: Any = None) -> Any: ...

    def consent_violations(self, table: Any, consenting: Any, key: str, consenting_key: str,
                           time_column: str | None = None,
                           excluded: Any = None) -> dict[str, Any]: ...

    def changed_consent(self, before: Any, now: Any, consenting_key: str, *,
                        with_date: bool = False, excluded_before: Any = None,
                        excluded_now: Any = None) -> Any: ...

    def customer_identities(self, customer_landing: Any,
                            customer_landing_rejects: Any) -> Any: ...

    def restrict_customers(self, customer_landing: Any, identities: Any) -> Any: ...

    def rows_to_verify(self, added: Any, kept: Any, changed: Any, key: str,
                       consenting_key: str) -> Any: ...

    def row_count(self, frame: Any) -> int: ...

    def shared_device_rows(self, step_trainer_trusted: Any, customer_landing: Any,
                           customer_landing_rejects: Any = None,
                           kept: Any = None) -> dict[str, int]: ...

    def join_coverage(self, step_trainer_trusted: Any, accelerometer_trusted: Any,
                      customer_landing: Any) -> dict[str, Any]: ...

    def same_owners(self, before: Any, now: Any) -> bool: ...

    def inside(self, frame: Any, affected: Any, group_column: str | None = None,
               time_column: str | None = None) -> Any: ...


@dataclass(frozen=True)
class CheckRule:
    """What a check is: Dagster's check spec, plus the severity its results carry."""

    asset: str
    name: str
    severity: str  # ERROR | WARN
    blocking: bool
    description: str


@dataclass(frozen=True)
class CheckOutcome:
    """What one evaluation of a rule found."""

    rule: CheckRule
    passed: bool
    #: the result in a sentence (None: the rule's description says it all)
    result: str | None
    #: the figures, plain Python values
    metadata: dict[str, Any]

    @property
    def asset(self) -> str:
        return self.rule.asset

    @property
    def name(self) -> str:
        return self.rule.name

    @property
    def severity(self) -> str:
        return self.rule.severity


def _outcome(asset: str, name: str, passed: Any, result: str | None,
             metadata: dict[str, Any]) -> CheckOutcome:
    return CheckOutcome(RULES[(asset, name)], bool(passed), result, plain(metadata))


# -- the rules -------------------------------------------------------------------------------

def _landing_rules(table: schemas.Table) -> list[CheckRule]:
    rejects = schemas.rejects_table(table)
    return [
        CheckRule(table.name, "schema", ERROR, True,
                  f"{table.name} has the declared columns with the declared types."),
        CheckRule(table.name, "conservation", ERROR, True,
                  f"Every line of the {table.source} files is accounted for: lines counted in "
                  f"the raw files = rows in {table.name} + lines in {rejects.name}."),
        CheckRule(table.name, "quarantine_rate", WARN, False,
                  f"WARN when more than the configured share of the {table.source} lines were "
                  "quarantined (a broken upstream export)."),
    ]


def _consent_rule(table_name: str) -> CheckRule:
    keys = schemas.CONSENT_KEYS[table_name]
    matched = ", ".join(f"{key} against customer {consenting}" for key, consenting, _ in keys)
    return CheckRule(
        table_name, "consent", ERROR, True,
        f"Every row of {table_name} belongs to a customer whose latest record (a quarantined "
        "customer line counts as one without consent) has shareWithResearchAsOfDate set "
        f"({matched}, emails matched trimmed and lower-cased); with consent as of date, no "
        "reading before it; with STEDI_SHARED_DEVICES=exclude, no device of a non-consenting "
        "customer. Reports counts and pseudonymous keys only. Blocking: a failure stops "
        "downstream assets.")


_ZONE_RULES = [
    CheckRule("step_trainer_trusted", "join_coverage", WARN, False,
              "Share of step readings with accelerometer readings at the same time, rows per "
              "step reading, and pairs whose phone is not the device owner's. WARN below the "
              "configured coverage."),
    CheckRule("step_trainer_trusted", "shared_devices", WARN, False,
              "Rows from devices that also belong to a customer without research consent (the "
              "serialNumber of that customer's latest record). WARN when there are any; "
              "STEDI_SHARED_DEVICES=exclude drops them."),
    CheckRule("machine_learning_curated", "join_coverage", WARN, False,
              "The join recomputed from its inputs: coverage of step readings, rows per step "
              "reading, pairs whose phone is not the device owner's, and that the table holds "
              "exactly the joined rows. WARN below the configured coverage."),
]

#: (table, check name) -> rule, for every check of the graph.
RULES: dict[tuple[str, str], CheckRule] = {
    (r.asset, r.name): r for r in [
        *(r for t in schemas.LANDING_TABLES for r in _landing_rules(t)),
        *(_consent_rule(t) for t in schemas.CONSENT_KEYS),
        *_ZONE_RULES,
    ]
}


def rules_of(asset: str) -> list[CheckRule]:
    """The rules of one table, in the order they are declared."""
    return [r for r in RULES.values() if r.asset == asset]


# -- landing: on the batch the landing step has just stored ----------------------------------

def schema_outcome(table: schemas.Table, column_types: dict[str, str]) -> CheckOutcome:
    problems = schemas.schema_problems(column_types, table)
    return _outcome(table.name, "schema", not problems, None,
                    {"problems": problems or ["none"]})


def conservation_outcome(table: schemas.Table, lines_in_files: int, rows_landed: int,
                         lines_rejected: int) -> CheckOutcome:
    """Lines counted from the raw bytes of the files against the rows and rejects stored."""
    lost = lines_in_files - rows_landed - lines_rejected
    return _outcome(
        table.name, "conservation", lost == 0,
        "every line accounted for" if lost == 0
        else f"{lost} line(s) neither landed nor quarantined",
        {"lines_in_files": lines_in_files, "rows_landed": rows_landed,
         "lines_rejected": lines_rejected, "unaccounted": lost})


def quarantine_rate_outcome(table: schemas.Table, rows_landed: int, lines_rejected: int,
                            max_reject_share: float) -> CheckOutcome:
    lines = rows_landed + lines_rejected
    share = lines_rejected / lines if lines else 0.0
    return _outcome(
        table.name, "quarantine_rate", share <= max_reject_share,
        f"{share:.2%} of lines quarantined (warn above {max_reject_share:.2%})",
        {"lines_rejected": lines_rejected, "rows_landed": rows_landed,
         "reject_share": float(round(share, 6)), "warn_above": max_reject_share})


# -- trusted and curated: figures recomputed from upstream data ------------------------------

@dataclass(frozen=True)
class SincePassed:
    """What an incremental consent check compares: the table's rows split into the data files
    added since the snapshot the check last passed on (`added`) and the files kept from it —
    or written since with only its rows, a withdrawal's rewrite — (`kept`); the customer
    landing tables as that pass read them; the customer records of the landing files added
    or removed since (`changed_records`, `changed_rejects`). A kept row
    passed then; its verdict can only change with its customer's consent record, and a
    customer's record can only change with a record of theirs added or removed — so only the
    added rows and the kept rows of those customers whose consent can have worsened are
    checked (`changed_consent`, docs/incremental.md)."""

    added: Any
    kept: Any
    customer_landing: Any
    customer_landing_rejects: Any
    changed_records: Any
    changed_rejects: Any
    rows_in_table: int


def consent_outcome(table_name: str, ops: CheckFigures, table: Any, customer_landing: Any,
                    customer_landing_rejects: Any, *, secret: str, consent_as_of_date: bool,
                    shared_devices: str, since: SincePassed | None = None,
                    kept: Any = None) -> CheckOutcome:
    """Every row of the table belongs to a consenting customer, by each of its consent keys
    (`schemas.CONSENT_KEYS`); violating keys reported pseudonymously (`reported_keys`). With
    `since`, only the rows whose verdict can have changed since the last pass are checked.
    `kept`: where the engine keeps the consenting set between runs (None: computed here)."""
    def excluded_devices(landing: Any, rejects: Any) -> Any:
        return (ops.non_consenting_devices(landing, rejects)
                if shared_devices == "exclude" else None)

    # every customer's consent, computed once and only when a row is to be checked (an
    # incremental check with nothing added and no customer changed needs none); from the set
    # of the last pass and the changed customers when the engine kept that set
    earlier: EarlierCustomers | None = None
    consenting = cache(lambda: ops.consenting_customers(customer_landing, secret,
                                                        customer_landing_rejects, kept,
                                                        earlier=earlier))
    excluded = cache(lambda: excluded_devices(customer_landing, customer_landing_rejects))
    if since is not None:  # the consent records, then and now, of the customers who changed
        changed_customers = ops.customer_identities(since.changed_records,
                                                    since.changed_rejects)

        def of_changed(landing: Any, rejects: Any) -> tuple[Any, Any]:
            records = ops.restrict_customers(landing, changed_customers)
            return (ops.consenting_customers(records, secret, rejects),
                    excluded_devices(records, rejects))

        consenting_then, excluded_then = of_changed(since.customer_landing,
                                                    since.customer_landing_rejects)
        consenting_now, excluded_now = of_changed(customer_landing, customer_landing_rejects)
        earlier = EarlierCustomers(since.customer_landing, since.customer_landing_rejects,
                                   changed_customers, consenting_now)
    keys = schemas.CONSENT_KEYS[table_name]
    results = []
    for key, consenting_key, time_column in keys:
        devices = consenting_key == "serialNumber"  # the shared-devices rule keys on them
        rows = table
        if since is not None:
            changed = ops.changed_consent(
                consenting_then, consenting_now, consenting_key,
                with_date=bool(time_column and consent_as_of_date),
                excluded_before=excluded_then if devices else None,
                excluded_now=excluded_now if devices else None)
            rows = ops.rows_to_verify(since.added, since.kept, changed, key, consenting_key)
            if ops.row_count(rows) == 0:  # nothing added, no customer changed: nothing to do
                results.append({"rows_checked": 0, "violations": 0, "sample": []})
                continue
        results.append(plain(ops.consent_violations(
            rows, consenting(), key, consenting_key,
            time_column=time_column if consent_as_of_date else None,
            excluded=excluded() if devices else None)))
    sample = [k for (_, consenting_key, _), r in zip(keys, results, strict=True)
              for k in reported_keys(r["sample"], consenting_key, secret)][:MAX_REPORTED_KEYS]
    violations = max(r["violations"] for r in results)
    return _outcome(
        table_name, "consent", violations == 0,
        "every row belongs to a consenting customer" if violations == 0
        else f"{violations} row(s) of non-consenting customers",
        {"rows_checked": max(r["rows_checked"] for r in results), "violations": violations,
         "violating_keys_sample": sample, "consent_as_of_date": consent_as_of_date,
         "shared_devices": shared_devices,
         "verification": "full" if since is None else "incremental",
         "rows_in_table": results[0]["rows_checked"] if since is None else since.rows_in_table})


def shared_devices_outcome(table_name: str, ops: CheckFigures, table: Any,
                           customer_landing: Any, customer_landing_rejects: Any, *,
                           shared_devices: str, kept: Any = None) -> CheckOutcome:
    """Step readings from devices that also belong to a customer without research consent
    (`kept` as in consent_outcome)."""
    figures = plain(ops.shared_device_rows(table, customer_landing, customer_landing_rejects,
                                           kept))
    rows, devices = figures["shared_device_rows"], figures["shared_devices"]
    return _outcome(
        table_name, "shared_devices", rows == 0,
        f"{rows} of {figures['rows_checked']} row(s) come from {devices} device(s) that also "
        "belong to a customer without research consent"
        + ("" if rows == 0 or shared_devices == "exclude"
           else " (STEDI_SHARED_DEVICES=exclude drops them)"),
        {**figures, "shared_devices_setting": shared_devices})


#: The counts the join-coverage figures derive from (transforms/figures.py), in its order.
JOIN_COUNTS = ("step_readings", "matched_step_readings", "joined_rows", "foreign_pairs")


@dataclass(frozen=True)
class CoverageSince:
    """What an incremental join-coverage evaluation adds up: the counts (`JOIN_COUNTS`) of the
    last evaluation, both reading tables as it read them (`steps_then`, `accel_then`) and as
    they are (`steps_now`, `accel_now`) — each may hold only the rows of the changed
    instants' days —, and `changed`, the instants (an `increments.Affected` of
    machine_learning_curated) where either table gained or lost a row since. A step reading
    pairs only with the accelerometer readings at its own instant, so every count is a sum
    over instants: the counts now are the counts then, minus the changed instants as they
    were, plus the same instants now. Valid while every customer keeps the devices they had
    (`same_owners`): that decides which pairs are foreign."""

    counts: dict[str, int]
    steps_then: Any
    accel_then: Any
    steps_now: Any
    accel_now: Any
    changed: Any
    #: names the snapshots read and the counts added to (None: not named); the two
    #: join-coverage checks of a run usually add up the same, and the second reuses the sum
    key: str | None = None


#: the last incremental join-coverage figures, by `CoverageSince.key`
_ADDED_UP: dict[str, dict[str, Any]] = {}


def join_figures(ops: CheckFigures, step_trainer_trusted: Any, accelerometer_trusted: Any,
                 customer_landing: Any, since: CoverageSince | None = None) -> dict[str, Any]:
    """The join-coverage figures, computed over every instant or (`since`) over the
    instants that changed."""
    if since is None:
        return plain(ops.join_coverage(step_trainer_trusted, accelerometer_trusted,
                                       customer_landing))
    changed = since.changed

    def at_changed_instants(steps: Any, readings: Any) -> dict[str, Any]:
        return plain(ops.join_coverage(ops.inside(steps, changed),
                                       ops.inside(readings, changed, time_column="timestamp"),
                                       customer_landing))

    if since.key is not None and since.key in _ADDED_UP:
        return dict(_ADDED_UP[since.key])
    then = at_changed_instants(since.steps_then, since.accel_then)
    now = at_changed_instants(since.steps_now, since.accel_now)
    figures = plain(join_coverage_figures(
        *(int(since.counts[k]) - then[k] + now[k] for k in JOIN_COUNTS)))
    if since.key is not None:
        _ADDED_UP.clear()  # one sum is enough: both checks of a run follow each other
        _ADDED_UP[since.key] = dict(figures)
    return figures


def join_coverage_outcome(table_name: str, ops: CheckFigures, step_trainer_trusted: Any,
                          accelerometer_trusted: Any, customer_landing: Any, *,
                          min_join_coverage: float, rows_in_table: int | None = None,
                          since: CoverageSince | None = None) -> CheckOutcome:
    """The step/accelerometer join recomputed from its inputs (with `since`, from what
    changed since the last evaluation); with `rows_in_table` (the joined table's row count)
    also that the table holds exactly the joined rows."""
    figures = join_figures(ops, step_trainer_trusted, accelerometer_trusted, customer_landing,
                           since)
    rows_in_table = plain(rows_in_table)
    consistent = rows_in_table is None or rows_in_table == figures["joined_rows"]
    return _outcome(
        table_name, "join_coverage", figures["coverage"] >= min_join_coverage and consistent,
        f"{figures['coverage']:.1%} of step readings found accelerometer readings at the same "
        f"time (warn below {min_join_coverage:.0%}); {figures['foreign_share']:.1%} of joined "
        "pairs pair a device with another customer's phone",
        {**figures,
         "coverage": float(round(figures["coverage"], 6)),
         "rows_per_matched_reading": float(round(figures["rows_per_matched_reading"], 6)),
         "foreign_share": float(round(figures["foreign_share"], 6)),
         "warn_below": min_join_coverage,
         "verification": "full" if since is None else "incremental",
         **({} if rows_in_table is None else {"rows_in_table": rows_in_table})})
