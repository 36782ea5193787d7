"""Resources the assets use: the compute engine, the landing source and check thresholds.

Which flavour of each is used is decided in `definitions` only.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import polars as pl
from dagster import ConfigurableResource, InitResourceContext
from pydantic import PrivateAttr

from stedi_assets.io.landing_reader import (
    LandingListing,
    check_compression,
    file_stamps,
    is_parquet,
    iter_landing_lines,
    landing_fingerprint,
    list_s3_landing_files,
    s3_file_stamps,
    s3_landing_fingerprint,
    scan_landing_folder,
)
from stedi_assets.io.parquet import ParquetParts
from stedi_assets.io.s3 import S3Store
from stedi_assets.schemas import Table
from stedi_assets.settings import LOCAL_PSEUDONYM_SECRET, default
from stedi_assets.transforms import polars_engine


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

    def close(self) -> None:
        if self.cleanup is not None:
            self.cleanup()

    def row_frame(self) -> Any:
        """The rows as a frame the engine's ops take (ParquetParts are scanned)."""
        return self.rows.scan() if isinstance(self.rows, ParquetParts) else self.rows


class LandingSource(ConfigurableResource):
    """Where the raw JSON-lines sources live: <root>/{customer,accelerometer,step_trainer}/
    on the local disk. `folders` renames a source's folder (e.g. {"customer": "customers"})."""

    root: str
    folders: dict[str, str] = {}

    def folder_name(self, source: str) -> str:
        return self.folders.get(source, source).strip("/")

    def folder(self, source: str) -> str:
        """Where the source's files are: a local path or an s3:// prefix."""
        return f"{self.root.rstrip('/')}/{self.folder_name(source)}"

    @property
    def store(self) -> S3Store | None:
        """How to reach the files when they are on S3; None on the local disk."""
        return None

    def listing(self, source: str) -> LandingListing:
        """The source's files, and the entries skipped (symbolic links leading outside the
        landing root are never read)."""
        return scan_landing_folder(self.root, self.folder_name(source))

    def files(self, source: str) -> list[str]:
        return self.listing(source).files

    def fingerprint(self, source: str) -> str:
        """Changes whenever a file of the source is added, removed or rewritten."""
        return landing_fingerprint(self.root, self.folder_name(source))

    def file_stamps(self, source: str, files: list[str]) -> dict[str, str]:
        """A stamp per file that changes when the file is rewritten (size, mtime or ETag)."""
        return file_stamps(files)


class S3LandingSource(LandingSource):
    """Landing sources under an s3://bucket/prefix/ root, read with the standard AWS credential
    chain, or unsigned (`anonymous`) for a public bucket such as the seeds' cd0030bucket."""

    region: str
    endpoint_url: str | None = None
    anonymous: bool = False
    _store: S3Store | None = PrivateAttr(default=None)

    @property
    def store(self) -> S3Store:
        if self._store is None:
            self._store = S3Store(self.region, self.endpoint_url, self.anonymous)
        return self._store

    def listing(self, source: str) -> LandingListing:
        return LandingListing(list_s3_landing_files(self.root, self.folder_name(source),
                                                    self.store))

    def fingerprint(self, source: str) -> str:
        return s3_landing_fingerprint(self.root, self.folder_name(source), self.store)

    def file_stamps(self, source: str, files: list[str]) -> dict[str, str]:
        return s3_file_stamps(self.root, self.folder_name(source), self.store)


class Engine(ConfigurableResource):
    """What the assets compute with. Each engine exposes `ops`, a module with one function per
    table (same names in every engine) plus the check figures, and reads landing files."""

    @property
    def kind(self) -> str:
        raise NotImplementedError

    @property
    def ops(self) -> ModuleType:
        raise NotImplementedError

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


class PolarsEngine(Engine):
    """Computes every table with Polars on this machine (lazy, streaming where possible).

    Landing files are parsed in batches of `batch_lines` lines; `stream_landing` parses
    `parse_threads` batches at a time (while the next one is read) and writes each batch's
    rows as a Parquet part under `spill_root` (default: the system temp folder; on the
    lakehouse's filesystem the parts are linked into the table, not copied), so memory is
    bounded by a few batches, not by the source."""

    batch_lines: int = 1_000_000
    parse_threads: int = 2
    spill_root: str | None = None
    #: Folder where each landing file's parsed rows are kept, so a landing step parses only
    #: new or rewritten files (see io/landing_cache.py); None parses every file every time.
    landing_cache: str | None = None

    @property
    def kind(self) -> str:
        return "polars"

    @property
    def ops(self) -> ModuleType:
        """The engine module: one function per table plus the check figures."""
        return polars_engine

    def land(self, landing: LandingSource, table: Table) -> LandingBatch:
        if not self.landing_cache:
            return super().land(landing, table)
        from stedi_assets.io.landing_cache import LandingCache

        listing = landing.listing(table.source)
        batch = LandingCache(self.landing_cache).land(self, landing, table, listing.files)
        batch.skipped = tuple(listing.skipped)
        return batch

    def _landing_parts(self, files: list[str], table: Table, store: S3Store | None):
        """What each landing file gives, file by file in order: a LazyFrame of the typed rows
        of a Parquet file, or a DataFrame of raw lines per batch of a JSON-lines file."""
        options = store.storage_options if store else None
        for path in files:
            if is_parquet(path):
                yield pl.scan_parquet(path, storage_options=options).select(
                    polars_engine.typed_columns(table))
            else:
                check_compression(path, store)
                yield from iter_landing_lines(path, store, self.batch_lines)

    def _parse(self, part: pl.LazyFrame | pl.DataFrame, table: Table):
        """(rows, rejects, unknown keys, lines) of one part: Parquet rows are already typed."""
        if isinstance(part, pl.LazyFrame):
            return part, None, {}, polars_engine.row_count(part)
        rows, rejects, unknown = self.ops.parse_landing(part, table)
        return rows, rejects, unknown, part.height

    @staticmethod
    def _batch(files, table, rows, parsed, cleanup=None) -> LandingBatch:
        rejects = [r for _, r, _, _ in parsed if r is not None and r.height]
        unknown: Counter = Counter()
        for _, _, keys, _ in parsed:
            unknown.update(keys)
        return LandingBatch(
            rows=rows,
            rejects=pl.concat(rejects) if rejects else polars_engine.empty_rejects(),
            files=files, lines_read=sum(n for _, _, _, n in parsed),
            unknown_keys=dict(sorted(unknown.items())), cleanup=cleanup)

    def read_landing(self, files: list[str], table: Table,
                     store: S3Store | None = None) -> LandingBatch:
        """All rows in memory (a DataFrame): for small sources and tests."""
        parsed = [self._parse(part, table) for part in self._landing_parts(files, table, store)]
        rows = [r.lazy().collect() for r, _, _, _ in parsed]
        return self._batch(files, table,
                           pl.concat(rows) if rows else polars_engine.empty_rows(table), parsed)

    def stream_landing(self, files: list[str], table: Table,
                       store: S3Store | None = None, spill_to: Path | None = None) -> LandingBatch:
        """Rows as ParquetParts: one Parquet file per batch, written as it was parsed (same
        rows, same order as read_landing), which the IO manager takes into the table without
        writing them again; rejects in memory (they are few, or the quarantine check fails).
        Batches are parsed by `parse_threads` threads (Polars releases the GIL) and taken back
        in order. Call `close()` once the rows are stored. `spill_to` (an existing, empty
        folder) keeps the parts there, for the caller to keep (the landing cache)."""
        spill = spill_to or Path(tempfile.mkdtemp(prefix=f"stedi-{table.name}-",
                                                  dir=self.spill_root))

        def parse_and_spill(index: int, part: pl.LazyFrame | pl.DataFrame):
            rows, rejects, unknown, lines = self._parse(part, table)
            path = spill / f"part-{index:06d}.parquet"
            if isinstance(rows, pl.LazyFrame):
                rows.sink_parquet(path)
            else:
                rows.write_parquet(path)
            return str(path), rejects, unknown, lines

        parsed = []
        try:
            with ThreadPoolExecutor(max_workers=max(1, self.parse_threads)) as pool:
                pending: deque[Future] = deque()
                parts = self._landing_parts(files, table, store)
                for index, part in enumerate(parts):  # the next batch is read meanwhile
                    pending.append(pool.submit(parse_and_spill, index, part))
                    if len(pending) > max(1, self.parse_threads):
                        parsed.append(pending.popleft().result())
                parsed.extend(future.result() for future in pending)
        except BaseException:
            shutil.rmtree(spill, ignore_errors=True)
            raise
        rows = ParquetParts(tuple(path for path, _, _, _ in parsed),
                            polars_engine.polars_schema(table))
        return self._batch(files, table, rows, parsed,
                           cleanup=None if spill_to else
                           lambda: shutil.rmtree(spill, ignore_errors=True))


class CheckSettings(ConfigurableResource):
    """Thresholds of the WARN-level asset checks."""

    #: Join coverage WARNs when fewer step readings than this share find accelerometer readings.
    min_join_coverage: float = float(default("STEDI_MIN_JOIN_COVERAGE"))
    #: The quarantine-rate check WARNs when more landing lines than this share are rejected.
    max_reject_share: float = float(default("STEDI_MAX_REJECT_SHARE"))


class PrivacySettings(ConfigurableResource):
    """How far consent reaches and how curated tables name customers."""

    #: Key of the HMAC-SHA256 that turns an email into the pseudonymous customerKey.
    pseudonym_secret: str
    #: Drop accelerometer readings taken before the customer's shareWithResearchAsOfDate.
    consent_as_of_date: bool = False
    #: `include` keeps a device's readings once one owner consented; `exclude` drops the
    #: readings of devices that also belong to a customer without consent (STEDI_SHARED_DEVICES)
    shared_devices: str = default("STEDI_SHARED_DEVICES")

    @property
    def exclude_shared_devices(self) -> bool:
        return self.shared_devices == "exclude"

    def setup_for_execution(self, context: InitResourceContext) -> None:
        # every run that keys customers with the public development key says so
        if self.pseudonym_secret == LOCAL_PSEUDONYM_SECRET and context.log:
            context.log.warning(
                "customerKey is computed with the public development key (STEDI_PSEUDONYM_SECRET "
                "is not set): anyone can reverse these keys; use it on local test data only")
