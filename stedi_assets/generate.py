"""Deterministic STEDI landing data: `stedi-generate --scale 1 --seed 42 --out data/landing`.

Scale 1 is about 1,000 customers, 100,000 accelerometer and 30,000 step-trainer readings; the
work is done in chunks of customers (each chunk seeded from the seed and its index), so any scale
runs in bounded memory and the same arguments always give the same bytes.

Traits copied from the real exports:
- epoch milliseconds everywhere, some written as floats (`1655564376361.0`), phone numbers
  sometimes as JSON numbers;
- about half the customers never agreed to share with research: the key is absent or null;
- consent often comes after the first readings (readings before consent);
- several customers' phones record at the same instants (shared timestamps across customers);
- ~3 accelerometer readings per step-trainer reading, a few step readings with no phone reading;
- a re-exported customer file repeating some records (duplicate emails);
- one accelerometer file from the old app spelling `timeStamp`, one step-trainer file in the
  2022 export style whose lines end in `},`.
"""

from __future__ import annotations

import argparse
import binascii
import sys
from pathlib import Path

import numpy as np
import polars as pl

from stedi_assets import schemas

CUSTOMERS_PER_SCALE = 1_000
STEPS_PER_ACTIVE_CUSTOMER = 37  # ~30 step readings per customer over all customers
ACCEL_PER_STEP = 3
CHUNK_CUSTOMERS = 20_000
BASE_EPOCH_MS = 1_655_293_787_680  # the 2022 export's first registration
READING_INTERVAL_MS = 3_800
FILES = {"customer": 2, "accelerometer": 4, "step_trainer": 3}
FORMATS = ("json", "parquet")
ACCEL_COLUMNS = schemas.TABLES["accelerometer_landing"].column_names
STEP_COLUMNS = schemas.TABLES["step_trainer_landing"].column_names

FIRST = ["Santosh", "Ben", "Frank", "Trevor", "Christina", "Sarah", "Jerry", "Lyn", "Danny",
         "Spencer", "Kathy", "Jacob", "Liz", "Bobby", "Steve", "Ahmed", "Mei", "Olivia",
         "Grace", "Manoj", "Rick", "Hiroshi", "Senthil", "Eduardo", "Jo", "Suresh", "Anna"]
LAST = ["Clayton", "Khatib", "Doshi", "Lincoln", "Mitra", "Lopez", "Huey", "Fibonnaci",
        "Hansen", "Anandh", "Smith", "Kim", "Wu", "Jones", "Taylor", "Aristotle", "Davis",
        "Staples", "Habschied", "Mendoza", "Ng", "Young", "Harris", "Pandey", "Abram"]


def _epoch_text(values: pl.Expr, as_float: pl.Expr) -> pl.Expr:
    """Epoch ms as JSON text: an integer, or a float (`...361.0`) where as_float is set."""
    text = values.cast(pl.String)
    return pl.when(values.is_null()).then(pl.lit("null")).when(as_float).then(
        pl.concat_str([text, pl.lit(".0")])
    ).otherwise(text)


def _uuids(rng: np.random.Generator, n: int) -> pl.Series:
    """n version-4-looking UUIDs: two random 64-bit words as 32 hex digits, vectorised."""
    raw = rng.integers(0, 2**63, size=(n, 2), dtype=np.int64).astype(">u8")
    digits = np.frombuffer(binascii.hexlify(raw.tobytes()), dtype="S32").astype("U32")
    h = pl.col("h")
    return pl.DataFrame({"h": digits}, schema={"h": pl.String}).select(pl.concat_str([
        h.str.slice(0, 8), pl.lit("-"), h.str.slice(8, 4), pl.lit("-4"), h.str.slice(13, 3),
        pl.lit("-a"), h.str.slice(17, 3), pl.lit("-"), h.str.slice(20, 12),
    ]))[:, 0]


def _customers(rng: np.random.Generator, start: int, n: int) -> pl.DataFrame:
    idx = np.arange(start, start + n)
    first = np.array(FIRST)[rng.integers(0, len(FIRST), n)]
    last = np.array(LAST)[rng.integers(0, len(LAST), n)]
    registration = BASE_EPOCH_MS + rng.integers(0, 60 * 86_400_000, n)
    consent = rng.random(n) < 0.5
    # Many customers consent some minutes after they started using the device.
    consent_delay = np.where(rng.random(n) < 0.4, rng.integers(1, 40 * 60_000, n), 0)
    absent = rng.random(n) < 0.5  # how a missing consent is written: key absent or null

    def share(p: float) -> np.ndarray:
        return np.where(rng.random(n) < p, registration, -1)

    phone_as_number = rng.random(n) < 0.1
    birth = [pl.Series(rng.integers(low, high, n)).cast(pl.String)
             for low, high in ((1930, 2006), (1, 13), (1, 29))]
    people = pl.DataFrame({"f": first, "s": last, "i": idx}).select(
        pl.concat_str([pl.col("f"), pl.lit(" "), pl.col("s")]).alias("customerName"),
        pl.concat_str([pl.col("f"), pl.lit("."), pl.col("s"), pl.lit("."),
                       pl.col("i").cast(pl.String), pl.lit("@test.com")]).alias("email"),
    )
    birthday = pl.concat_str([birth[0], pl.lit("-"), birth[1].str.zfill(2), pl.lit("-"),
                              birth[2].str.zfill(2)])
    return pl.DataFrame({
        "customer": idx,
        "customerName": people["customerName"],
        "email": people["email"],
        "phone_as_number": phone_as_number,
        "birthDay": pl.select(birthday).to_series(),
        "serialNumber": _uuids(rng, n),
        "registrationDate": registration,
        "lastUpdateDate": registration + rng.integers(0, 3_600_000, n),
        "shareWithResearchAsOfDate": np.where(consent, registration + consent_delay, -1),
        "consent_key_absent": ~consent & absent,
        "shareWithPublicAsOfDate": share(0.5),
        "shareWithFriendsAsOfDate": share(0.5),
        "float_epochs": rng.random(n) < 0.05,
        "active": rng.random(n) < 0.85,
        "start": registration + rng.integers(-10 * 60_000, 30 * 60_000, n),
    }).with_columns(
        pl.col("shareWithResearchAsOfDate", "shareWithPublicAsOfDate", "shareWithFriendsAsOfDate")
        .replace(-1, None)
    )


def _share_starts(rng: np.random.Generator, customers: pl.DataFrame) -> pl.DataFrame:
    """Let ~10% of customers record at exactly another customer's instants."""
    n = customers.height
    start = customers["start"].to_numpy().copy()
    copy = rng.random(n) < 0.10
    start[copy] = start[rng.integers(0, n, n)][copy]
    return customers.with_columns(pl.Series("start", start))


def _readings(rng: np.random.Generator, customers: pl.DataFrame):
    active = customers.filter(pl.col("active"))
    n_steps = rng.poisson(STEPS_PER_ACTIVE_CUSTOMER, active.height)
    owner = np.repeat(np.arange(active.height), n_steps)
    position = np.arange(n_steps.sum()) - np.repeat(np.cumsum(n_steps) - n_steps, n_steps)
    start = active["start"].to_numpy()[owner]
    times = start + position.astype(np.int64) * READING_INTERVAL_MS
    customer = active["customer"].to_numpy()[owner]
    steps = pl.DataFrame({
        "customer": customer,
        "sensorReadingTime": times.astype(np.int64),
        "serialNumber": active["serialNumber"].gather(owner),
        "distanceFromObject": rng.integers(180, 320, len(times)),
    })
    has_phone = rng.random(len(times)) >= 0.03  # a few step readings without a phone reading
    per_step = rng.poisson(ACCEL_PER_STEP - 1, len(times)) + 1
    per_step[~has_phone] = 0
    rep = np.repeat(np.arange(len(times)), per_step)
    m = len(rep)
    accel = pl.DataFrame({
        "customer": customer[rep],
        "user": active["email"].gather(owner[rep]),
        "timestamp": times[rep].astype(np.int64),
        "x": rng.integers(-1, 2, m).astype(np.float64),
        "y": rng.integers(-1, 2, m).astype(np.float64),
        "z": rng.integers(-1, 2, m).astype(np.float64),
        "float_epoch": rng.random(m) < 0.02,
    })
    return steps, accel


def _customer_lines(c: pl.DataFrame) -> pl.Series:
    def epoch(name: str) -> pl.Expr:
        return _epoch_text(pl.col(name), pl.col("float_epochs"))

    research = pl.when(pl.col("consent_key_absent")).then(pl.lit("")).otherwise(
        pl.concat_str([pl.lit(', "shareWithResearchAsOfDate": '),
                       epoch("shareWithResearchAsOfDate")]))
    phone = pl.when(pl.col("phone_as_number")).then(pl.lit("8015551212")).otherwise(
        pl.lit('"8015551212"'))
    return c.select(pl.concat_str([
        pl.lit('{"customerName": "'), pl.col("customerName"),
        pl.lit('", "email": "'), pl.col("email"),
        pl.lit('", "phone": '), phone,
        pl.lit(', "birthDay": "'), pl.col("birthDay"),
        pl.lit('", "serialNumber": "'), pl.col("serialNumber"),
        pl.lit('", "registrationDate": '), epoch("registrationDate"),
        pl.lit(', "lastUpdateDate": '), epoch("lastUpdateDate"),
        research,
        pl.lit(', "shareWithPublicAsOfDate": '), epoch("shareWithPublicAsOfDate"),
        pl.lit(', "shareWithFriendsAsOfDate": '), epoch("shareWithFriendsAsOfDate"),
        pl.lit("}"),
    ]))[:, 0]


def _accel_lines(a: pl.DataFrame, key: str) -> pl.Series:
    return a.select(pl.concat_str([
        pl.lit('{"user":"'), pl.col("user"), pl.lit(f'","{key}":'),
        _epoch_text(pl.col("timestamp"), pl.col("float_epoch")),
        pl.lit(',"x":'), pl.col("x").cast(pl.String), pl.lit(',"y":'),
        pl.col("y").cast(pl.String), pl.lit(',"z":'), pl.col("z").cast(pl.String), pl.lit("}"),
    ]))[:, 0]


def _step_lines(s: pl.DataFrame, suffix: str) -> pl.Series:
    return s.select(pl.concat_str([
        pl.lit('{"sensorReadingTime":'), pl.col("sensorReadingTime").cast(pl.String),
        pl.lit(',"serialNumber":"'), pl.col("serialNumber"),
        pl.lit('","distanceFromObject":'), pl.col("distanceFromObject").cast(pl.String),
        pl.lit("}" + suffix),
    ]))[:, 0]


def _file_name(source: str, index: int) -> str:
    return f"{source}-{BASE_EPOCH_MS + 1_000 * index + 7 * len(source)}.json"


def _append(path: Path, lines: pl.Series) -> None:
    """Append the lines, each ending in a newline (written by Polars, no Python strings)."""
    if lines.len():
        with path.open("ab") as fh:
            lines.to_frame("line").write_csv(fh, include_header=False, quote_style="never")


def _customer_rows(c: pl.DataFrame) -> pl.DataFrame:
    """The customer rows as landing types them (the phone always as text)."""
    return c.with_columns(pl.lit("8015551212").alias("phone")).select(
        schemas.TABLES["customer_landing"].column_names)


def _split(frame: pl.DataFrame, parts: int) -> list[pl.DataFrame]:
    """Split rows into `parts` files by customer (each customer's readings stay together)."""
    return [frame.filter(pl.col("customer") % parts == i) for i in range(parts)]


class _Writer:
    """Writes the rows of one chunk: JSON lines appended to the landing files, or (parquet) one
    Parquet file per landing file and chunk, `<source>/part-<file>-<chunk>.parquet`, holding the
    rows landing would give for those lines, in the same order."""

    def __init__(self, out: Path, fmt: str) -> None:
        self.out, self.fmt, self.chunk = out, fmt, 0
        for source in FILES:
            folder = out / source
            folder.mkdir(parents=True, exist_ok=True)
            for old in [*folder.glob("*.json"), *folder.glob("*.parquet")]:
                old.unlink()

    def write(self, source: str, index: int, rows: pl.DataFrame, lines: pl.Series) -> None:
        if self.fmt == "json":
            _append(self.out / source / _file_name(source, index), lines)
        elif rows.height:
            rows.write_parquet(self.out / source / f"part-{index}-{self.chunk:05d}.parquet")


def generate(out: Path, scale: float = 1.0, seed: int = 42, fmt: str = "json") -> dict[str, int]:
    """Write the three landing sources under `out` as JSON lines (`fmt="json"`) or Parquet
    (`fmt="parquet"`, the same rows); return the number of lines (rows) per source."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    n_customers = max(1, round(CUSTOMERS_PER_SCALE * scale))
    writer = _Writer(out, fmt)
    json = fmt == "json"
    counts = dict.fromkeys(FILES, 0)
    for chunk, start in enumerate(range(0, n_customers, CHUNK_CUSTOMERS)):
        writer.chunk = chunk
        rng = np.random.default_rng(np.random.SeedSequence([seed, chunk]))
        customers = _share_starts(rng, _customers(rng, start, min(CHUNK_CUSTOMERS,
                                                                  n_customers - start)))
        steps, accel = _readings(rng, customers)
        # customer: the export, plus a re-export that repeats ~3% of the records
        repeated_mask = pl.Series(rng.random(customers.height) < 0.03)
        for i, part in enumerate([customers, customers.filter(repeated_mask)]):
            writer.write("customer", i, _customer_rows(part),
                         _customer_lines(part) if json else None)
            counts["customer"] += part.height
        # accelerometer: file 0 from the old app, spelling the key `timeStamp`
        for i, part in enumerate(_split(accel, FILES["accelerometer"])):
            writer.write("accelerometer", i, part.select(ACCEL_COLUMNS),
                         _accel_lines(part, "timeStamp" if i == 0 else "timestamp")
                         if json else None)
            counts["accelerometer"] += part.height
        # step_trainer: file 0 in the 2022 export style, lines ending in "},"
        for i, part in enumerate(_split(steps, FILES["step_trainer"])):
            writer.write("step_trainer", i, part.select(STEP_COLUMNS),
                         _step_lines(part, "," if i == 0 else "") if json else None)
            counts["step_trainer"] += part.height
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stedi-generate", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0,
                        help="scale factor: 1 = ~1,000 customers (default 1)")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    parser.add_argument("--out", type=Path, default=Path("data/landing"),
                        help="landing root to write customer/, accelerometer/, step_trainer/")
    parser.add_argument("--format", choices=FORMATS, default="json",
                        help="json: JSON-lines landing files (default); parquet: the same rows "
                             "as <source>/part-*.parquet")
    args = parser.parse_args(argv)
    if args.scale <= 0:
        parser.error("--scale must be positive")
    counts = generate(args.out, args.scale, args.seed, args.format)
    for source, n in counts.items():
        print(f"{source:<14} {n:>12,} lines -> {args.out / source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
