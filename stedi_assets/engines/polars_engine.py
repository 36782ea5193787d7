"""The Polars engine resource: every table computed with Polars on this machine, landing files
parsed in parallel batches and spilled to Parquet, optionally through the landing cache."""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import polars as pl

from stedi_assets.engines.base import Engine, LandingBatch
from stedi_assets.engines.kept_results import KeptResults
from stedi_assets.engines.landing_cache import LandingCache
from stedi_assets.engines.protocol import EngineOps
from stedi_assets.io.landing_reader import check_compression, is_parquet, iter_landing_lines
from stedi_assets.io.parquet_parts import ParquetParts
from stedi_assets.io.s3 import S3Store
from stedi_assets.resources import LandingSource
from stedi_assets.schemas import Table
from stedi_assets.transforms import polars as polars_ops


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
    #: new or rewritten files (see engines/landing_cache.py); None parses every file every time.
    landing_cache: str | None = None

    @property
    def kind(self) -> str:
        return "polars"

    @property
    def ops(self) -> EngineOps:
        """transforms/polars: one function per table plus the check figures."""
        return polars_ops

    @property
    def kept_results(self) -> KeptResults | None:
        """Beside the landing cache (it holds the same customer data), when there is one."""
        if not self.landing_cache:
            return None
        return KeptResults(Path(self.landing_cache) / "_checks", self.landing_cache)

    def land(self, landing: LandingSource, table: Table) -> LandingBatch:
        if not self.landing_cache:
            return super().land(landing, table)
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
                    polars_ops.typed_columns(table))
            else:
                check_compression(path, store)
                yield from iter_landing_lines(path, store, self.batch_lines)

    def _parse(self, part: pl.LazyFrame | pl.DataFrame, table: Table):
        """(rows, rejects, unknown keys, lines) of one part: Parquet rows are already typed."""
        if isinstance(part, pl.LazyFrame):
            return part, None, {}, polars_ops.row_count(part)
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
            rejects=pl.concat(rejects) if rejects else polars_ops.empty_rejects(),
            files=files, lines_read=sum(n for _, _, _, n in parsed),
            unknown_keys=dict(sorted(unknown.items())), cleanup=cleanup)

    def read_landing(self, files: list[str], table: Table,
                     store: S3Store | None = None) -> LandingBatch:
        """All rows in memory (a DataFrame): for small sources and tests."""
        parsed = [self._parse(part, table) for part in self._landing_parts(files, table, store)]
        rows = [r.lazy().collect() for r, _, _, _ in parsed]
        return self._batch(files, table,
                           pl.concat(rows) if rows else polars_ops.empty_rows(table), parsed)

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
                            polars_ops.polars_schema(table))
        return self._batch(files, table, rows, parsed,
                           cleanup=None if spill_to else
                           lambda: shutil.rmtree(spill, ignore_errors=True))
