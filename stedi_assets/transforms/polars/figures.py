"""Figures for the checks and metadata on Polars (computed from upstream data, not the table
under test)."""

from __future__ import annotations

import hashlib
import io
from typing import Any

import polars as pl

from stedi_assets.increments import secret_fingerprint
from stedi_assets.transforms.figures import EarlierCustomers, join_coverage_figures
from stedi_assets.transforms.polars.columns import logical_schema
from stedi_assets.transforms.polars.tables import (
    _CONSENT,
    _identity,
    _with_customer_key,
    identities_of_spellings,
    latest_customer_records,
    non_consenting_devices,
    quarantined_withdrawals,
    without_exact_duplicates,
)


def consenting_customers(customer_landing: pl.LazyFrame, secret: str,
                         customer_landing_rejects: pl.LazyFrame | None = None,
                         kept: Any = None, earlier: EarlierCustomers | None = None
                         ) -> pl.LazyFrame:
    """email (the identity: trimmed, lower-cased), serialNumber, customerKey and consent date
    of every customer whose latest record (quarantined lines included) has research consent.
    Computed once per process for the same inputs (see `_remembered`), and with `kept` (the
    engine's `KeptResults`) once for as long as the customer tables do not move.

    With `earlier` (an incremental check): a set for these inputs, else — when `kept` still
    holds the set of the last pass's customer tables — that set with the changed customers'
    rows replaced by theirs now (the same rows, a customer's consent depending on their own
    records only, without an HMAC per customer). Such an updated set is remembered and kept
    under a name of its own: without `earlier` (a full verification) only a set computed
    from the customer tables alone is used, so a fault in the update cannot outlive a day."""
    inputs = (customer_landing, customer_landing_rejects)
    if earlier is not None:
        key = _inputs_key(inputs, secret)
        found = _recalled(key, _CONSENTING, kept, "consenting")
        if found is None:
            found = _recalled(key, _UPDATED, kept, _UPDATED_NAME)
        if found is not None:
            return found.lazy()
        before = _kept_set(earlier, secret, kept)
        if before is not None:
            def update() -> pl.DataFrame:
                unchanged = before.lazy().join(earlier.changed.lazy(), left_on="email",
                                               right_on="_match", how="anti")
                return pl.concat([unchanged, earlier.consenting_changed.lazy().select(
                    before.columns).cast(before.schema)]).collect()

            return _remembered(inputs, update, _UPDATED, secret, kept, _UPDATED_NAME).lazy()

    def compute() -> pl.DataFrame:
        latest = latest_customer_records(customer_landing, customer_landing_rejects).filter(
            pl.col(_CONSENT).is_not_null()).select(_identity("email").alias("email"),
                                                   "serialNumber", _CONSENT)
        # collected first: the keys are computed from its distinct emails, then joined to it
        return _with_customer_key(latest.collect().lazy(), "email", secret).collect()

    return _remembered(inputs, compute, _CONSENTING, secret, kept, "consenting").lazy()


def _non_consenting_devices(customer_landing: pl.LazyFrame,
                            customer_landing_rejects: pl.LazyFrame | None,
                            kept: Any = None) -> pl.LazyFrame:
    """non_consenting_devices, remembered like the consenting set."""
    return _remembered((customer_landing, customer_landing_rejects),
                       lambda: non_consenting_devices(customer_landing,
                                                      customer_landing_rejects).collect(),
                       _DEVICES, None, kept, "non_consenting_devices").lazy()


#: the last consenting sets computed, oldest first: {digest of inputs' plans and secret: rows}
_CONSENTING: dict[str, pl.DataFrame] = {}
#: consenting sets updated from an earlier one (never used by a full verification)
_UPDATED: dict[str, pl.DataFrame] = {}
#: ... and kept under this name (not a prefix of "consenting-": KeptResults.put replaces by
#: name, and replacing a fresh set must not remove an updated one, nor the other way round)
_UPDATED_NAME = "updated_consenting"
#: the same for the devices of customers without consent
_DEVICES: dict[str, pl.DataFrame] = {}
#: the last join-coverage figures computed, oldest first: {digest of inputs' plans: figures}
_JOIN_FIGURES: dict[str, dict[str, Any]] = {}
#: a few results each, so an incremental check's small before/after sets of the changed
#: customers never evict the run's full set (one full set is customer-sized)
_REMEMBERED_SETS = 3
_PLAN_LIMIT = 1 << 20  # plans holding in-memory rows beyond this are not remembered


def _remembered(inputs: tuple[pl.LazyFrame | None, ...], compute, store: dict[str, Any],
                secret: str | None = None, kept: Any = None, name: str = "") -> Any:
    """`compute()`, or its result for the same inputs earlier in this process. The five
    consent checks of a run (and machine_learning_curated's two keys) read the same customer
    snapshots, and the set's pseudonymous keys are HMACs computed in Python; the two
    join-coverage checks (step_trainer_trusted's, machine_learning_curated's) join the same
    reading snapshots — once is enough. Inputs are identified by their serialized query
    plans: a lakehouse table's plan names its snapshot's data files, which are never
    rewritten in place (and an in-memory frame's plan holds its rows). With `kept` (a
    `KeptResults`; DataFrame results only), also what an earlier run computed from the same
    inputs, kept under `name` (engines/kept_results.py)."""
    key = _inputs_key(inputs, secret)
    if key is None:
        return compute()
    result = _recalled(key, store, kept, name)
    if result is None:
        result = compute()
        if kept is not None:
            kept.put(name, key, result)
        _remember(store, key, result)
    return result


def _recalled(key: str | None, store: dict[str, Any], kept: Any, name: str) -> Any:
    """What `_remembered` has under the inputs' `key` (`_inputs_key`) in `store` or `kept`
    (under `name`), or None (never computed)."""
    if key is None:
        return None
    if key not in store:
        result = None if kept is None else kept.get(name, key)
        if result is None:
            return None
        _remember(store, key, result)
    return store[key]


def _remember(store: dict[str, Any], key: str, result: Any) -> None:
    while len(store) >= _REMEMBERED_SETS:
        del store[next(iter(store))]
    store[key] = result


def _inputs_key(inputs: tuple[pl.LazyFrame | None, ...], secret: str | None) -> str | None:
    """What `_remembered` knows a result by: the inputs' query plans and the secret's
    fingerprint; None when a plan cannot be serialized (holding a Python function, or too
    large)."""
    digest = hashlib.sha256(b"" if secret is None else secret_fingerprint(secret).encode())
    for frame in inputs:
        plan = _CappedPlan()
        try:
            if frame is not None:
                frame.serialize(plan)
        except Exception:  # noqa: BLE001 - a plan holding a Python function, or too large
            return None
        digest.update(hashlib.sha256(plan.written).digest())
    return digest.hexdigest()


def _kept_set(earlier: EarlierCustomers, secret: str, kept: Any) -> pl.DataFrame | None:
    """The consenting set `kept` holds for the customer tables of the last pass — computed
    anew or updated itself —, or None."""
    key = None if kept is None else _inputs_key(
        (earlier.customer_landing, earlier.customer_landing_rejects), secret)
    if key is None:
        return None
    found = kept.get("consenting", key)
    return found if found is not None else kept.get(_UPDATED_NAME, key)


class _CappedPlan(io.RawIOBase):
    """Where a plan is serialized, refusing it beyond `_PLAN_LIMIT`: an incremental check's
    change-sized in-memory slices would otherwise be copied whole (about 0.8 s per million
    rows) only to be found too large; stopping early costs a twentieth of that."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, chunk) -> int:
        if len(self.written) + len(chunk) > _PLAN_LIMIT:
            raise OverflowError("plan too large to remember")
        self.written += chunk
        return len(chunk)


def consent_violations(
    table: pl.LazyFrame, consenting: pl.LazyFrame, key: str, consenting_key: str,
    time_column: str | None = None, excluded: pl.LazyFrame | None = None,
) -> dict[str, Any]:
    """Rows of `table` whose `key` is not the `consenting_key` of a consenting customer (an
    email key matched on its identity); with `time_column`, also rows taken before that
    customer's consent date; with `excluded` (a frame of `consenting_key` values), also rows
    whose key is one of them. A table carrying the consent date must have it on every row.
    The sample holds at most 5 violating keys (emails as identities: the checks turn them
    into pseudonymous keys before reporting). One streaming pass over `table` (a second,
    over the violating rows only, when there are any)."""
    customers = consenting.select(pl.col(consenting_key).alias("_match"),
                                  pl.col(_CONSENT).alias("_consent")).unique("_match")
    table_columns = table.collect_schema().names()
    if consenting_key == "email":  # the identity of each spelling once, joined on the key
        matches = identities_of_spellings(table, key).rename({"_identity": "_match"})
        marked = table.join(matches, on=key, how="left", nulls_equal=False)
    else:
        marked = table.with_columns(pl.col(key).alias("_match"))
    # customers hold each key once, so every row of `table` appears exactly once here
    marked = marked.join(customers, on="_match", how="left", nulls_equal=False)
    bad = pl.col("_consent").is_null()
    if excluded is not None:
        marked = marked.join(excluded.select(pl.col(consenting_key).alias("_match"))
                             .unique().with_columns(pl.lit(True).alias("_excluded")),
                             on="_match", how="left", nulls_equal=False)
        bad = bad | pl.col("_excluded").is_not_null()
    if time_column:
        bad = bad | (pl.col(time_column) < pl.col("_consent"))
    if _CONSENT in table_columns:
        bad = bad | pl.col(_CONSENT).is_null()
    rows, violations = marked.select(pl.len(), bad.sum()).collect(engine="streaming").row(0)
    sample = []
    if violations:
        sample = (marked.filter(bad).select("_match").unique().collect(engine="streaming")
                  .sort("_match").head(5)["_match"].to_list())
    return {"rows_checked": int(rows), "violations": int(violations), "sample": sample}


def changed_consent(before: pl.LazyFrame, now: pl.LazyFrame, consenting_key: str, *,
                    with_date: bool = False, excluded_before: pl.LazyFrame | None = None,
                    excluded_now: pl.LazyFrame | None = None) -> pl.LazyFrame:
    """The `consenting_key` values (column `_match`) whose consent can have worsened between
    two consenting sets (`consenting_customers`): a customer who left, with `with_date` one
    whose consent date moved, with the excluded sets a device that entered them. Only rows of
    these keys can go from passing to failing: a row that passed had its key's consent record
    then, so a customer who joined, or a device that left the excluded set, had no row that
    could have failed (an incremental check looks again only at rows that passed)."""
    def records(consenting: pl.LazyFrame, excluded: pl.LazyFrame | None) -> pl.LazyFrame:
        consent = pl.col(_CONSENT).cast(pl.Int64) if with_date else pl.lit(0, pl.Int64)
        frame = consenting.select(pl.col(consenting_key).alias("_match"),
                                  consent.alias("_consent"), pl.lit(False).alias("_excluded"))
        if excluded is not None:
            frame = pl.concat([frame, excluded.select(
                pl.col(consenting_key).alias("_match"), pl.lit(None, pl.Int64).alias("_consent"),
                pl.lit(True).alias("_excluded"))])
        return frame.unique()

    old, new = records(before, excluded_before), records(now, excluded_now)
    columns = ["_match", "_consent", "_excluded"]
    return pl.concat([
        old.filter(~pl.col("_excluded")).join(new, on=columns, how="anti",  # left, date moved
                                              nulls_equal=True),
        new.filter("_excluded").join(old, on=columns, how="anti", nulls_equal=True),
    ]).select("_match").unique()


def customer_identities(customer_landing: pl.LazyFrame,
                        customer_landing_rejects: pl.LazyFrame) -> pl.LazyFrame:
    """The identities (column `_match`) of the customer records given: landed rows and every
    readable email of quarantined lines."""
    withdrawn = quarantined_withdrawals(customer_landing_rejects)
    return pl.concat([customer_landing.select(_identity("email").alias("_match")),
                      withdrawn.select(_identity("email").alias("_match"))]).unique()


def restrict_customers(customer_landing: pl.LazyFrame, identities: pl.LazyFrame
                       ) -> pl.LazyFrame:
    """The customer records of these identities (`customer_identities`): a customer's latest
    record depends on that customer's records alone."""
    return customer_landing.with_columns(_identity("email").alias("_match")).join(
        identities, on="_match", how="semi").drop("_match")


def rows_to_verify(added: pl.LazyFrame, kept: pl.LazyFrame, changed: pl.LazyFrame, key: str,
                   consenting_key: str) -> pl.LazyFrame:
    """What an incremental consent check looks at for one consent key: every row of the data
    files added since the snapshot it last passed on, and the rows of the files kept from that
    snapshot whose `key` is a `changed` one (`changed_consent`): every other kept row passed
    then and its customer's consent record is the same now."""
    changed = changed.collect()  # customer-sized at most; usually empty
    if changed.is_empty():
        return added
    if consenting_key == "email":  # the spellings of the changed identities, then their rows
        spellings = identities_of_spellings(kept, key).filter(
            pl.col("_identity").is_in(changed["_match"].implode())).select(key)
        touched = kept.join(spellings, on=key, how="semi")
    else:
        touched = kept.join(changed.lazy().select(pl.col("_match").alias(key)), on=key,
                            how="semi")
    return pl.concat([added, touched], how="vertical_relaxed")


def exact_duplicates(frame: pl.LazyFrame) -> int:
    """How many rows are exact copies of an earlier row."""
    return without_exact_duplicates(frame)[1]


def join_coverage(
    step_trainer_trusted: pl.LazyFrame,
    accelerometer_trusted: pl.LazyFrame,
    customer_landing: pl.LazyFrame,
) -> dict[str, Any]:
    """How well step readings pair with accelerometer readings taken at the same time.
    Streaming passes; the step readings (or the accelerometer instants) are the in-memory side
    of each join, never the joined pairs. Computed once per process for the same inputs (see
    `_remembered`)."""
    return dict(_remembered((step_trainer_trusted, accelerometer_trusted, customer_landing),
                            lambda: _join_coverage(step_trainer_trusted, accelerometer_trusted,
                                                   customer_landing),
                            _JOIN_FIGURES))


def _join_coverage(step_trainer_trusted: pl.LazyFrame, accelerometer_trusted: pl.LazyFrame,
                   customer_landing: pl.LazyFrame) -> dict[str, Any]:
    # readings keep the user as landed: the owners are matched on the spellings of their
    # identity (see identities_of_spellings) instead of an identity computed per reading
    accel = accelerometer_trusted.select(pl.col("timestamp").alias("sensorReadingTime"), "user")
    # the step readings are the join's in-memory side: their serial numbers as categories
    # (a 32-bit code each instead of the text: SF1000 peak 2.75 -> 1.9 GB; equal text, equal
    # code, so the joins match the same rows)
    steps = step_trainer_trusted.select("sensorReadingTime",
                                        pl.col("serialNumber").cast(pl.Categorical))
    # only the owners of these step readings' devices can pair with them: an incremental
    # evaluation's few changed instants need a few customers, not the identity of every one.
    # Each (spelling, device) once: a spelling has one identity, so the left join below never
    # adds rows; a null user has no identity and so no owner (as before: null never matches).
    owners = _owners(customer_landing.join(
        step_trainer_trusted.select("serialNumber").unique(), on="serialNumber", how="semi")
    ).rename({"user": "_identity"}).join(
        identities_of_spellings(accelerometer_trusted, "user"), on="_identity", how="inner"
    ).select("user", pl.col("serialNumber").cast(pl.Categorical), pl.lit(True).alias("_owner"))
    pairs = steps.join(accel, on="sensorReadingTime", how="inner", build_side="force_left"
                       ).join(owners, on=["serialNumber", "user"], how="left")
    joined_rows, foreign = pairs.select(
        pl.len(), pl.col("_owner").is_null().sum()).collect(engine="streaming").row(0)
    step_readings = row_count(steps)
    matched = row_count(steps.join(accel.select("sensorReadingTime"), on="sensorReadingTime",
                                   how="semi"))
    return join_coverage_figures(step_readings, matched, int(joined_rows), int(foreign))


def _owners(customer_landing: pl.LazyFrame) -> pl.LazyFrame:
    """(user, serialNumber) of every customer record once: owner and phone matched on the
    identity."""
    return customer_landing.select(_identity("email").alias("user"), "serialNumber").unique()


def same_owners(before: pl.LazyFrame, now: pl.LazyFrame) -> bool:
    """Whether two customer landing tables pair the same identities with the same devices
    (then a pair of readings is foreign in both or in neither)."""
    old, new = _owners(before), _owners(now)
    on = ["user", "serialNumber"]
    differ = pl.concat([old.join(new, on=on, how="anti", nulls_equal=True),
                        new.join(old, on=on, how="anti", nulls_equal=True)])
    return differ.select(pl.len()).collect().item() == 0


def shared_device_rows(step_trainer_trusted: pl.LazyFrame, customer_landing: pl.LazyFrame,
                       customer_landing_rejects: pl.LazyFrame | None = None,
                       kept: Any = None) -> dict[str, int]:
    """How many rows of step_trainer_trusted (and how many distinct devices) come from devices
    that also belong to a customer without research consent (non_consenting_devices, kept
    like the consenting set)."""
    devices = _non_consenting_devices(customer_landing, customer_landing_rejects, kept)
    shared = step_trainer_trusted.join(devices, on="serialNumber", how="semi")
    shared_rows, shared_devices = shared.select(
        pl.len(), pl.col("serialNumber").n_unique()).collect(engine="streaming").row(0)
    rows = row_count(step_trainer_trusted)
    return {"rows_checked": int(rows), "shared_device_rows": int(shared_rows),
            "shared_devices": int(shared_devices)}


def row_count(frame: pl.LazyFrame | pl.DataFrame) -> int:
    return int(frame.lazy().select(pl.len()).collect(engine="streaming").item())


def frame_logical_schema(frame: pl.LazyFrame) -> dict[str, str]:
    return logical_schema(frame.collect_schema())


def head_rows(frame: pl.LazyFrame | pl.DataFrame, n: int) -> list[dict[str, Any]]:
    return frame.lazy().head(n).collect().to_dicts()
