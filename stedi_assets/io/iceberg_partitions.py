"""The reading tables are partitioned by the day of their reading time: Iceberg's
`truncate(86400000)` on the epoch-ms column (accelerometer_trusted.timestamp,
step_trainer_trusted.sensorReadingTime, machine_learning_curated.sensorReadingTime), so an
incremental update touches only the data files of the days it changes (docs/incremental.md).

Each engine writes one folder per day (`<write>/_day=<day number>/…parquet`, the day column
itself not stored); pyiceberg reads each file's day from its time-column bounds when the file
is committed. A day that has gathered `COMPACT_AT` data files over the updates is compacted
into one by the next update that runs (the IO managers' `_apply_update`), so file counts stay
bounded without a separate maintenance job. Engine-neutral and Dagster-free.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from stedi_assets.increments import SLICE_KEYS

DAY_MS = 86_400_000
#: the writers' partition folder key (never a table column)
PARTITION_KEY = "_day"
#: a day with this many data files is rewritten as one by the next update
COMPACT_AT = 8

_DAY_FOLDER = re.compile(rf"/{PARTITION_KEY}=(-?\d+)/")


def partition_column(table: str) -> str | None:
    """The epoch-ms column `table` is partitioned on by day (None: not partitioned)."""
    keys = SLICE_KEYS.get(table)
    return keys[1] if keys else None


def partition_field(column: str) -> str:
    return f"{column}_day"


def align_partitions(iceberg, table: str):
    """Give a reading table its day partitioning: a table created before it gets the field
    added (its existing files stay as they were until an update or a rebuild rewrites them)."""
    column = partition_column(table)
    if column is None or any(f.name == partition_field(column) for f in iceberg.spec().fields):
        return iceberg
    from pyiceberg.transforms import TruncateTransform

    with iceberg.transaction() as tx, tx.update_spec() as update:
        update.add_field(column, TruncateTransform(DAY_MS), partition_field(column))
    return iceberg.refresh()


def day_of_file(path: str) -> int | None:
    """The day a data file holds, from its folder (None: not written by day)."""
    match = _DAY_FOLDER.search(path)
    return int(match.group(1)) if match else None


def files_to_compact(files: Iterable[str]) -> list[str]:
    """The files of every day that holds `COMPACT_AT` or more of them."""
    by_day: dict[int, list[str]] = {}
    for path in files:
        day = day_of_file(path)
        if day is not None:
            by_day.setdefault(day, []).append(path)
    return [path for group in by_day.values() if len(group) >= COMPACT_AT for path in group]


def files_on_days(files: Iterable[str], days: set[int] | None) -> list[str]:
    """The files that may hold a row of one of `days` (every file when None): a file written
    by day holds rows of its own day only; one written otherwise may hold any."""
    if days is None:
        return list(files)
    return [path for path in files if day_of_file(path) is None or day_of_file(path) in days]
