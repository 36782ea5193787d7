"""The pure cost of the inputs: scan every landing line once (`scan_floor.py LANDING`), and
the floor of the graph: that plus writing the output tables once
(`--write LAKEHOUSE OUT`: the Polars outputs copied with streaming sinks). Benchmark-only."""

from __future__ import annotations

import argparse
from pathlib import Path

import polars as pl

SOURCES = ("customer", "accelerometer", "step_trainer")
OUTPUTS = {"trusted": ("customer_trusted", "accelerometer_trusted", "step_trainer_trusted"),
           "curated": ("customer_curated", "machine_learning_curated")}


def scan(landing: Path) -> int:
    """Read every byte of every landing file once (lines and their lengths)."""
    total = 0
    for source in SOURCES:
        files = sorted(str(p) for p in (landing / source).iterdir()
                       if p.is_file() and not p.name.startswith(("_", ".")))
        frame = (pl.scan_parquet(files).select(pl.all().is_null().sum()).select(
                     pl.sum_horizontal(pl.all()))
                 if files[0].endswith(".parquet")
                 else pl.scan_lines(files).select(
                     pl.col("line").str.len_bytes().cast(pl.UInt64).sum()))
        total += int(frame.collect(engine="streaming").item())
    return total


def write(lakehouse: Path, out: Path) -> None:
    # imported here: the project's storage module (pyiceberg, pyarrow) takes seconds to import,
    # which is not part of the floor (the scan alone needs Polars only)
    from stedi_assets.io.iceberg_io import scan_local_table

    out.mkdir(parents=True, exist_ok=True)
    for tables in OUTPUTS.values():
        for table in tables:
            scan_local_table(lakehouse, table).sink_parquet(out / f"{table}.parquet")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("landing", type=Path)
    parser.add_argument("--write", nargs=2, type=Path, metavar=("LAKEHOUSE", "OUT"))
    args = parser.parse_args()
    print(scan(args.landing))
    if args.write:
        write(*args.write)


if __name__ == "__main__":
    main()
