"""The engine resource the assets take (`Engine`) and what reading a landing source gives
(`LandingBatch`). Which engine runs is decided in `deployments` only."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dagster import ConfigurableResource

from stedi_assets.engines.protocol import EngineOps
from stedi_assets.io.parquet_parts import ParquetParts
from stedi_assets.io.s3 import S3Store
from stedi_assets.resources import LandingSource
from stedi_assets.schemas import Table


@dataclass
class LandingBatch:
    """What reading one landing source gave: rows, quarantined lines and the accounting.
    `close()` frees what the rows still need on disk (streamed rows spilled to a work folder)
    once they have been stored."""

    rows: Any
    rejects: Any
    files: list[str]
    lines_read: int
    unknown_keys: dict[str, int]
    cleanup: Callable[[], None] | None = None
    #: files taken from the landing cache instead of being parsed again
    files_reused: int = 0
    #: landing entries not read, each "path: reason" (e.g. a link leading outside the root)
    skipped: tuple[str, ...] = ()
    #: {file: lines counted from its raw bytes} for files counted when they were parsed (the
    #: landing cache keeps the count with the file's entry); the conservation check counts the
    #: others
    line_counts: dict[str, int] = field(default_factory=dict)

    def close(self) -> None:
        if self.cleanup is not None:
            self.cleanup()

    def row_frame(self) -> Any:
        """The rows as a frame the engine's ops take (ParquetParts are scanned)."""
        return self.rows.scan() if isinstance(self.rows, ParquetParts) else self.rows


class Engine(ConfigurableResource):
    """What the assets compute with. Each engine exposes `ops` (EngineOps: one function per
    table, the same names in every engine, plus the check figures) and reads landing files."""

    @property
    def kind(self) -> str:
        raise NotImplementedError

    @property
    def ops(self) -> EngineOps:
        raise NotImplementedError

    @property
    def kept_results(self) -> Any:
        """Where the checks' customer-sized sets are kept between runs (a KeptResults, see
        engines/kept_results.py), or None: computed by every check that needs them."""
        return None

    def read_landing(self, files: list[str], table: Table,
                     store: S3Store | None = None) -> LandingBatch:
        """Read landing files (local paths, or s3:// URIs reachable through `store`)."""
        raise NotImplementedError

    def stream_landing(self, files: list[str], table: Table,
                       store: S3Store | None = None) -> LandingBatch:
        """Like read_landing, for sources larger than memory: an engine that can, returns rows
        still to be computed or spilled (call `close()` on the batch once they are stored)."""
        return self.read_landing(files, table, store)

    def land(self, landing: LandingSource, table: Table) -> LandingBatch:
        """Every file of the table's landing source, for the landing asset (streamed)."""
        listing = landing.listing(table.source)
        batch = self.stream_landing(listing.files, table, landing.store)
        batch.skipped = tuple(listing.skipped)
        return batch
