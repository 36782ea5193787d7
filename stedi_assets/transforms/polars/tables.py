"""The trusted and curated zone tables on Polars, and the privacy rules they apply (identity,
consent withdrawals, pseudonymous keys): pure functions, LazyFrames in -> LazyFrames out."""

from __future__ import annotations

import polars as pl

from stedi_assets import schemas
from stedi_assets.transforms.identity import IDENTITY_WHITESPACE, quarantined_identities
from stedi_assets.transforms.polars.columns import POLARS_TYPES, typed_columns
from stedi_assets.transforms.pseudonyms import customer_keys

_CONSENT = "shareWithResearchAsOfDate"


# --------------------------------------------------------------------------------------------
# Privacy helpers
# --------------------------------------------------------------------------------------------

def _with_customer_key(frame: pl.LazyFrame, email: str, secret: str,
                       emails: pl.LazyFrame | None = None) -> pl.LazyFrame:
    """Add `customerKey` for the `email` column, hashing each distinct email once. `emails`
    (a frame with the `email` column holding at least the emails of `frame`) is where the
    distinct emails are taken from when `frame` itself is costly to compute twice."""
    def keys(values: pl.Series) -> pl.Series:
        return pl.Series(customer_keys(values, secret), dtype=pl.String)

    source = frame if emails is None else emails
    distinct = source.select(email).unique().with_columns(
        pl.col(email).map_batches(keys, return_dtype=pl.String).alias("customerKey"))
    return frame.join(distinct, on=email, how="left", maintain_order="left")


def _identity(column: str) -> pl.Expr:
    """The customer identity of an email column: trimmed and lower-cased (identity.py)."""
    return pl.col(column).str.strip_chars(IDENTITY_WHITESPACE).str.to_lowercase()


def identities_of_spellings(frame: pl.LazyFrame, column: str) -> pl.LazyFrame:
    """(`column`, `_identity`) for each distinct spelling of an email `column` of `frame`.
    Matching readings on their spelling instead of an identity computed on every row gives
    the same rows: a customer has millions of readings but one or two spellings, and the
    trim and lower-casing allocate a new string per row."""
    return frame.select(pl.col(column).unique()).with_columns(
        _identity(column).alias("_identity"))


def quarantined_withdrawals(customer_landing_rejects: pl.LazyFrame | None) -> pl.LazyFrame:
    """(email, lastUpdateDate) of every readable email of a quarantined customer line: each
    counts as a record without research consent (see identity.quarantined_identities)."""
    schema = {"email": pl.String, "lastUpdateDate": pl.Int64}
    if customer_landing_rejects is None:
        return pl.LazyFrame(schema=schema)
    found = pl.Struct(schema)

    def read(lines: pl.Series) -> pl.Series:
        return pl.Series([[{"email": e, "lastUpdateDate": d}
                           for e, d in quarantined_identities(line)] for line in lines],
                         dtype=pl.List(found))

    return customer_landing_rejects.select(
        pl.col("line").map_batches(read, return_dtype=pl.List(found)).alias("_found")
    ).explode("_found").drop_nulls("_found").unnest("_found").select(list(schema))


def _ranked_latest(records: pl.LazyFrame) -> pl.LazyFrame:
    """The winning record per identity (column `_identity` added). Order: a record without
    lastUpdateDate is the newest when it has no research consent and the oldest when it has,
    then lastUpdateDate; on a tie a record without consent wins, then the greatest values of
    the other columns in schema order (the email's spelling last), so the choice never
    depends on the order rows landed in."""
    others = [c for c in schemas.TABLES["customer_landing"].column_names
              if c not in ("email", "lastUpdateDate", _CONSENT)]
    withdrawn = pl.col(_CONSENT).is_null()
    undated = pl.col("lastUpdateDate").is_null()
    # most customers have a single record, which wins without ranking: only the records of
    # identities with several are sorted (a sort of every record is most of the cost)
    identified = records.with_columns(_identity("email").alias("_identity")).with_columns(
        pl.col("_identity").is_duplicated().alias("_several"))
    several = pl.col("_several")
    latest = identified.filter(several).with_columns(
        withdrawn.alias("_withdrawn"),
        pl.when(undated & withdrawn).then(2).when(undated).then(0).otherwise(1).alias("_tier"),
    ).sort(
        "_tier", "lastUpdateDate", "_withdrawn", _CONSENT, *others, "email", nulls_last=False
    ).unique(subset="_identity", keep="last", maintain_order=True).drop("_withdrawn", "_tier")
    return pl.concat([identified.filter(~several), latest]).drop("_several")


def _with_withdrawals(customer_landing: pl.LazyFrame,
                      customer_landing_rejects: pl.LazyFrame | None) -> pl.LazyFrame:
    """customer_landing plus one record without consent per quarantined readable email."""
    table = schemas.TABLES["customer_landing"]
    landed = customer_landing.select(typed_columns(table))
    markers = quarantined_withdrawals(customer_landing_rejects).with_columns(
        pl.lit(None, POLARS_TYPES[c.type]).alias(c.name) for c in table.columns
        if c.name not in ("email", "lastUpdateDate"))
    return pl.concat([landed, markers.select(typed_columns(table))])


def latest_customer_records(customer_landing: pl.LazyFrame,
                            customer_landing_rejects: pl.LazyFrame | None = None
                            ) -> pl.LazyFrame:
    """One record per customer identity (trimmed, lower-cased email): the latest one, where
    every readable email of a quarantined line counts as a record without research consent
    (at its lastUpdateDate when readable, else the newest). A later record without research
    consent withdraws the consent; when the order is uncertain, the record without consent
    wins (see _ranked_latest). The record that wins with consent is always a landed one."""
    return _ranked_latest(_with_withdrawals(customer_landing, customer_landing_rejects)
                          ).drop("_identity")


def non_consenting_devices(customer_landing: pl.LazyFrame,
                           customer_landing_rejects: pl.LazyFrame | None = None
                           ) -> pl.LazyFrame:
    """serialNumber of every device that belongs to a customer without research consent: the
    serialNumber of the customer's latest landed record, for every identity whose latest
    record (quarantined lines included) has no consent."""
    owners = _ranked_latest(customer_landing.select(
        typed_columns(schemas.TABLES["customer_landing"]))).select("_identity", "serialNumber")
    without_consent = _ranked_latest(
        _with_withdrawals(customer_landing, customer_landing_rejects)
    ).filter(pl.col(_CONSENT).is_null()).select("_identity")
    return owners.join(without_consent, on="_identity", how="semi").select(
        "serialNumber").drop_nulls().unique()


# --------------------------------------------------------------------------------------------
# Trusted and curated zone tables
# --------------------------------------------------------------------------------------------

def customer_trusted(customer_landing: pl.LazyFrame,
                     customer_landing_rejects: pl.LazyFrame | None = None) -> pl.LazyFrame:
    """Customers whose latest record agrees to share with research: one row per identity,
    the values of their latest landed record as landed."""
    return latest_customer_records(customer_landing, customer_landing_rejects).filter(
        pl.col(_CONSENT).is_not_null())


def accelerometer_trusted(
    accelerometer_landing: pl.LazyFrame, customer_trusted: pl.LazyFrame, *,
    consent_as_of_date: bool = False, deduplicate: bool = True,
) -> pl.LazyFrame:
    """Readings of consenting customers, matched on the identity (semi-join: a repeated
    email never multiplies rows);
    with consent_as_of_date, only readings taken at or after the consent date; exact duplicate
    rows removed."""
    customers = customer_trusted.select(_identity("email").alias("_identity"),
                                        _CONSENT).unique("_identity")
    # the consenting spellings of the readings' users (each spelling once; see
    # identities_of_spellings), joined on the user column as landed. Collected here (one
    # pass; a row per customer at most): deduplication reads the readings three times.
    spellings = identities_of_spellings(accelerometer_landing, "user").join(
        customers, on="_identity", how="inner").drop("_identity").collect().lazy()
    if consent_as_of_date:
        kept = accelerometer_landing.join(
            spellings, on="user", how="inner", maintain_order="left"
        ).filter(pl.col("timestamp") >= pl.col(_CONSENT)).drop(_CONSENT)
    else:
        kept = accelerometer_landing.join(spellings.select("user"), on="user", how="semi",
                                          maintain_order="left")
    return without_exact_duplicates(kept)[0] if deduplicate else kept


def customer_curated(
    customer_trusted: pl.LazyFrame, accelerometer_trusted: pl.LazyFrame, *, secret: str
) -> pl.LazyFrame:
    """Consenting customers with at least one trusted accelerometer reading, identified only by
    their pseudonymous key."""
    table = schemas.TABLES["customer_curated"]
    readers = identities_of_spellings(accelerometer_trusted, "user").select("_identity")
    with_readings = customer_trusted.with_columns(_identity("email").alias("_identity")).join(
        readers, on="_identity", how="semi", maintain_order="left",
    ).drop("_identity")
    return _with_customer_key(with_readings, "email", secret).select(
        table.column_names).unique(maintain_order=True)


def step_trainer_trusted(
    step_trainer_landing: pl.LazyFrame, customer_curated: pl.LazyFrame, *,
    deduplicate: bool = True, excluded_devices: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """Readings of Step Trainers that belong to a curated customer (semi-join), exact duplicate
    rows removed. Step readings are not cut at the consent date (see README). With
    `excluded_devices` (serialNumber, e.g. non_consenting_devices), none of their readings."""
    kept = step_trainer_landing.join(
        customer_curated.select("serialNumber"), on="serialNumber", how="semi",
        maintain_order="left",
    )
    if excluded_devices is not None:
        kept = kept.join(excluded_devices.select("serialNumber"), on="serialNumber",
                         how="anti", maintain_order="left")
    return without_exact_duplicates(kept)[0] if deduplicate else kept


def machine_learning_curated(
    step_trainer_trusted: pl.LazyFrame, accelerometer_trusted: pl.LazyFrame, *, secret: str
) -> pl.LazyFrame:
    """Step readings paired with accelerometer readings at the same instant; the phone's owner
    appears only as a pseudonymous key. Rows come in accelerometer order (then step order):
    the step readings are the join's in-memory side and the accelerometer readings stream."""
    table = schemas.TABLES["machine_learning_curated"]
    # the in-memory side keeps serial numbers as categories (a 32-bit code each instead of
    # the text; SF1000 peak 2.5 -> 1.7 GB), turned back into text as the pairs stream out
    steps = step_trainer_trusted.with_columns(pl.col("serialNumber").cast(pl.Categorical))
    joined = steps.join(
        accelerometer_trusted.select("timestamp", "x", "y", "z", "user"),
        left_on="sensorReadingTime", right_on="timestamp", how="inner",
        maintain_order="right_left", build_side="force_left",
    ).with_columns(pl.col("serialNumber").cast(pl.String))
    return _with_customer_key(joined, "user", secret,
                              emails=accelerometer_trusted.select("user")).select(
        table.column_names)


def without_exact_duplicates(frame: pl.LazyFrame) -> tuple[pl.LazyFrame, int]:
    """`frame` without the rows that are exact copies of an earlier row (the first of each set
    of copies stays, in place), and how many rows that removes.

    Memory stays far below a hash table of whole rows: a 64-bit hash per row is collected and
    sorted to find the hashes that occur more than once; only the rows carrying such a hash
    (copies, their originals and rare hash collisions) are compared in full, giving the
    positions of the copies; the result streams `frame` again without them. Hashing treats
    values as unique() does (-0.0 = 0.0, NaN = NaN, null = null)."""
    columns = frame.collect_schema().names()
    row_hash = pl.struct(columns).hash().alias("_hash")
    hashes = frame.select(row_hash).collect(engine="streaming").to_series().sort()
    repeated = hashes.filter(hashes == hashes.shift(1)).unique()
    del hashes
    if repeated.is_empty():
        return frame, 0
    numbered = frame.with_row_index("_row")
    candidates = numbered.with_columns(row_hash).join(
        pl.LazyFrame({"_hash": repeated}), on="_hash", how="semi", maintain_order="left",
    ).collect(engine="streaming").sort("_row")
    copies = candidates.filter(~pl.struct(columns).is_first_distinct()).select("_row")
    if copies.is_empty():
        return frame, 0
    return (numbered.join(copies.lazy(), on="_row", how="anti", maintain_order="left")
            .drop("_row"), copies.height)


