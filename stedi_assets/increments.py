"""Incremental runs: a reading table is updated from what changed upstream, and still equals a
full rebuild (docs/incremental.md). Engine-neutral and Dagster-free.

Each reading table is a union of independent slices: accelerometer_trusted's rows of one
customer identity at one instant depend only on the landing rows of that identity and instant
and on that customer's consent; step_trainer_trusted's likewise per device and instant;
machine_learning_curated's rows at one instant only on both tables' rows at that instant. An
update therefore names the slices a change touches (`Affected`), recomputes exactly those
with the same table transform on the upstream rows of those slices (`slice`), and the IO
manager replaces them: the table's data files holding a row of an affected slice are rewritten
without those rows, the others are kept as they are, the slice is added — one commit.

A run is full instead (`Plan.full_reason`) when the table has no snapshot yet, its snapshot
failed a blocking check, a full refresh was asked for, the table's version (its code, the
engine-independent semantics settings) changed, a snapshot it last read was expired, or a
landing file was removed or rewritten.

The customer tables are small and rebuilt in full — but only when an input moved: when every
upstream table is the snapshot a table last read (`Plan.inputs_unchanged`), the table is kept
as it is (a `TableUpdate` with only a `base`: nothing computed, nothing committed), and
customer_curated takes the readers that accelerometer_trusted gained by appending them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

Frame = Any

#: Run tag asking every table of the run to be rebuilt in full (the UI's launchpad sets tags;
#: the CLI: `dagster job execute -m stedi_assets.definitions -j stedi_full_graph --tags
#: '{"stedi/full_refresh": "true"}'`; `dagster asset materialize` takes no tags).
FULL_REFRESH_TAG = "stedi/full_refresh"
#: Run tag asking the consent checks to verify every row (the daily schedule sets it; a full
#: refresh implies it); otherwise they check what changed since their last pass.
FULL_VERIFICATION_TAG = "stedi/full_verification"
VERSION_PROPERTY = "stedi.table-version"
INCREMENTAL_PROPERTY = "stedi.incremental"  # "true": the snapshot is an incremental update
UPSTREAM_PROPERTY = "stedi.upstream-snapshots"

#: table -> (its group column, its time column): the slice key of each incremental table
SLICE_KEYS: dict[str, tuple[str | None, str]] = {
    "accelerometer_trusted": ("user", "timestamp"),
    "step_trainer_trusted": ("serialNumber", "sensorReadingTime"),
    "machine_learning_curated": (None, "sensorReadingTime"),
}
INCREMENTAL_TABLES = tuple(SLICE_KEYS)

_PACKAGE = Path(__file__).resolve().parent
#: the code whose change changes what a table holds: a new version rebuilds the table in full
_SEMANTICS_CODE = ("increments.py", "transforms/identity.py", "transforms/pseudonyms.py",
                   "transforms/polars/tables.py", "transforms/polars/increments.py",
                   "transforms/spark/tables.py", "transforms/spark/increments.py",
                   "schemas.py")
#: the code whose change changes what a consent check accepts: a new version verifies in full
_CHECK_CODE = ("check_rules.py", "transforms/identity.py", "transforms/pseudonyms.py",
               "transforms/polars/figures.py", "transforms/spark/figures.py",
               "transforms/polars/tables.py", "transforms/spark/tables.py", "schemas.py")


@dataclass
class Affected:
    """The slices an update recomputes. `groups` (column `_group`): every row of these
    customers (identity) or devices; `pairs` (`_group`, `_time`): the rows of one group at one
    instant; `times` (`_time`): every row at these instants. Frames of the engine, small
    (they grow with the change, not the table); None when empty."""

    table: str
    groups: Frame | None = None
    pairs: Frame | None = None
    times: Frame | None = None
    #: every row of these groups too, of which the base holds none (customers consenting only
    #: now: the base was computed from a customer_trusted without them), so their rows are
    #: only appended — no base file is read to look for them
    new_groups: Frame | None = None

    def in_base(self) -> Affected:
        """The slices that can hold rows of the base (what an update removes from it)."""
        return replace(self, new_groups=None)

    @property
    def group_column(self) -> str | None:
        return SLICE_KEYS[self.table][0]

    @property
    def time_column(self) -> str:
        return SLICE_KEYS[self.table][1]


@dataclass
class TableUpdate:
    """What an incremental table's asset returns: either the full table (`rows`) or the change
    to `base` (the table's snapshot it was computed from): `affected` slices replaced by
    `slice`. `full` recomputes everything (used when another writer moved the table meanwhile).
    `version` is recorded with the table."""

    version: str
    rows: Frame | None = None
    base: Any = None
    affected: Affected | None = None
    slice: Frame | None = None
    full: Callable[[], Frame] | None = None

    @property
    def incremental(self) -> bool:
        return self.rows is None

    @property
    def unchanged(self) -> bool:
        """The table stays as `base` is: nothing recomputed, nothing replaced."""
        return self.rows is None and self.affected is None and self.slice is None


def table_version(table: str, **settings: object) -> str:
    """A digest of the code that decides what `table` holds and of the settings given (e.g.
    consent_as_of_date, shared_devices, a fingerprint of the pseudonym secret)."""
    return _version(table, _SEMANTICS_CODE, settings)


def check_version(check: str, **settings: object) -> str:
    """A digest of the code that decides what a check accepts and of the settings given."""
    return _version(check, _CHECK_CODE, settings)


def _version(name: str, code: tuple[str, ...], settings: dict[str, object]) -> str:
    digest = hashlib.sha256(name.encode())
    digest.update(_code_digest(code).encode())
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


@lru_cache(maxsize=4)
def _code_digest(code: tuple[str, ...]) -> str:
    """The files named, read once per process."""
    digest = hashlib.sha256()
    for name in code:
        path = _PACKAGE / name
        if path.exists():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def secret_fingerprint(secret: str) -> str:
    """Changes with the pseudonym secret without revealing it (keys must be recomputed)."""
    return hashlib.sha256(b"stedi-secret-fingerprint\0" + secret.encode()).hexdigest()[:12]


@dataclass
class Plan:
    """How a table is brought up to date in this run: in full (`full_reason` says why) or from
    the upstream snapshots it last read (`consumed`) to the ones loaded now (`loaded`)."""

    table: str
    full_reason: str | None
    base: Any = None
    consumed: dict[str, int] = field(default_factory=dict)
    loaded: dict[str, int] = field(default_factory=dict)
    changes: dict[str, Any] = field(default_factory=dict)

    @property
    def metadata(self) -> dict[str, object]:
        return {"incremental": self.full_reason is None,
                "incremental/full_reason": self.full_reason or ""}

    def unchanged(self, table: str) -> bool:
        """The upstream `table` is the snapshot this table last read (or holds the same
        data files)."""
        return self.full_reason is None and self.changes[table].unchanged

    @property
    def inputs_unchanged(self) -> bool:
        """Every upstream table is as this table last read it: recomputing it would give the
        rows it holds (every table is a function of its inputs and its version)."""
        return self.full_reason is None and all(map(self.unchanged, self.changes))


def plan(table: str, version: str, *, full_refresh: bool, base: Any,
         loaded: dict[str, int], changes: Callable[[str, int, int], Any],
         landing: Iterable[str]) -> Plan:
    """Decide how `table` is updated. `base`: the table's current snapshot (None: never
    written); `loaded`: {upstream table: snapshot id} this run read; `changes(upstream, since,
    until)`: its TableChanges (None when it cannot be known); `landing`: the upstream landing
    tables, from which a removed file forces a full rebuild."""
    if full_refresh:
        return Plan(table, f"a full refresh was asked for (run tag {FULL_REFRESH_TAG})")
    if base is None:
        return Plan(table, "the table had no snapshot yet")
    if base.blocked:  # never build on rows that failed a blocking check (io/check_verdicts.py)
        return Plan(table, "its last snapshot failed the blocking check(s) "
                           f"{', '.join(base.blocked)}")
    if base.properties.get(VERSION_PROPERTY) != version:
        return Plan(table, "the table's version changed (code or semantics settings)")
    consumed = {t: int(s) for t, s in
                json.loads(base.properties.get(UPSTREAM_PROPERTY, "{}")).items()}
    found = {}
    for upstream, now in loaded.items():
        if upstream not in consumed:
            return Plan(table, f"no record of the {upstream} snapshot it last read")
        change = changes(upstream, consumed[upstream], now)
        if change is None:
            return Plan(table, f"the {upstream} snapshot it last read was expired")
        if upstream in landing and change.removed:
            return Plan(table, f"landing files of {upstream} were removed or rewritten")
        found[upstream] = change
    return Plan(table, None, base, consumed, dict(loaded), found)
