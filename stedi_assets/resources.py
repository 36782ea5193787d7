"""Resources the assets use: the compute engine, the landing source and check thresholds.

Which flavour of each is used is decided in `definitions` only.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import polars as pl
from dagster import ConfigurableResource
from dagster_pyspark import PySparkResource

from stedi_assets.io import spark_landing_reader
from stedi_assets.io.landing_reader import list_landing_files, read_landing_lines
from stedi_assets.schemas import Table
from stedi_assets.transforms import polars_engine, spark_engine


@dataclass
class LandingBatch:
    """What reading one landing source gave: rows, rejected lines and the accounting."""

    rows: Any
    rejects: Any
    files: list[str]
    lines_read: int
    blank_lines: int

    @property
    def rows_landed(self) -> int:
        return self.lines_read - self.blank_lines - self.rejected

    @property
    def rejected(self) -> int:
        return int(self.rejects.height)


class LandingSource(ConfigurableResource):
    """Where the raw JSON-lines sources live: <root>/{customer,accelerometer,step_trainer}/."""

    root: str

    def files(self, source: str) -> list[str]:
        return list_landing_files(self.root, source)


class Engine(ConfigurableResource):
    """What the assets compute with. Each engine exposes `ops`, a module with one function per
    table (same names in every engine) plus the check figures, and reads landing files."""

    @property
    def kind(self) -> str:
        raise NotImplementedError

    @property
    def ops(self) -> ModuleType:
        raise NotImplementedError

    def read_landing(self, files: list[str], table: Table) -> LandingBatch:
        raise NotImplementedError


class PolarsEngine(Engine):
    """Computes every table with Polars on this machine (lazy, streaming where possible)."""

    @property
    def kind(self) -> str:
        return "polars"

    @property
    def ops(self) -> ModuleType:
        """The engine module: one function per table plus the check figures."""
        return polars_engine

    def read_landing(self, files: list[str], table: Table) -> LandingBatch:
        rows, rejects, lines_read, blank = [], [], 0, 0
        for path in files:
            lines = read_landing_lines(path)
            file_rows, file_rejects, file_blank = self.ops.parse_landing(lines, table)
            rows.append(file_rows)
            rejects.append(file_rejects)
            lines_read += lines.height
            blank += file_blank
        return LandingBatch(
            rows=pl.concat(rows) if rows else polars_engine.empty_rows(table),
            rejects=pl.concat(rejects) if rejects else polars_engine.empty_rejects(),
            files=files, lines_read=lines_read, blank_lines=blank,
        )


class SparkEngine(Engine):
    """Computes every table with Spark on the session of `pyspark` (dagster-pyspark's
    PySparkResource): local[*] by default, or any master URL / Spark Connect (`spark.remote`)
    given in its spark_config. Frames stay Spark DataFrames between IO manager and transforms;
    only rejected landing lines are brought to the driver, as the Polars frame the landing
    assets report from."""

    pyspark: PySparkResource

    @property
    def kind(self) -> str:
        return "spark"

    @property
    def ops(self) -> ModuleType:
        """The engine module: one function per table plus the check figures."""
        return spark_engine

    def read_landing(self, files: list[str], table: Table) -> LandingBatch:
        lines = spark_landing_reader.read_landing_lines(self.pyspark.spark_session, files)
        rows, rejects, blank = self.ops.parse_landing(lines, table)
        rejected = [r.asDict() for r in rejects.collect()]
        return LandingBatch(
            rows=rows,
            rejects=pl.DataFrame(rejected, schema=polars_engine.REJECT_COLUMNS, orient="row"),
            files=files, lines_read=lines.count(), blank_lines=blank,
        )


class CheckSettings(ConfigurableResource):
    """Thresholds of the WARN-level asset checks."""

    #: Join coverage WARNs when fewer step readings than this share find accelerometer readings.
    min_join_coverage: float = 0.5
