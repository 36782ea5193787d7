"""Incremental landing: every landing file is parsed once.

Parsing JSON lines is most of the cost of the graph (about 2 s per million lines here), and
landing files are immutable once dropped. So the Polars engine keeps, per landing file, the
Parquet parts its rows were spilled to, its quarantined lines and its line accounting, under

    <cache root>/<table>/<key>/{part-*.parquet, rejects.parquet, accounting.json}

where <key> digests the file's path, its stamp (size + modification time, or size + ETag on
S3) and the parser's own source code. A landing step parses only files without an entry (new,
rewritten, or parsed by another parser version), takes the others from the cache, and drops
the entries of files that are gone. The landing table it stores is still the whole source, so
every downstream table is recomputed from all rows: a consent change reaches every reading,
old and new. Entries are written to a temporary folder and renamed, so a step killed halfway
leaves no half entry; a cache folder can be deleted at any time (the next run re-parses).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Protocol

import polars as pl

from stedi_assets.engines.base import LandingBatch
from stedi_assets.io.landing_files import count_lines
from stedi_assets.io.local_paths import OutsideRootError, ensure_inside
from stedi_assets.io.parquet_parts import ParquetParts
from stedi_assets.io.s3 import S3Store
from stedi_assets.resources import LandingSource
from stedi_assets.schemas import Table
from stedi_assets.transforms.polars.columns import empty_rejects, polars_schema

PACKAGE = Path(__file__).resolve().parents[1]
#: The code that turns a landing file into rows and rejects, and nothing else: the Polars
#: parser and its column types, the JSON line checks, the landing line reader (compression
#: checks, decompression, lines), the schemas. (identity.py is not used in parsing; the engine
#: resource only batches and spills; io/landing_files.py finds and stamps files, its stamps
#: are the other half of an entry's key.)
PARSER_CODE = ("transforms/polars/landing.py", "transforms/polars/columns.py",
               "transforms/json_checks.py", "io/landing_reader.py", "schemas.py")


def parser_version() -> str:
    """Changes whenever the code that turns landing lines into rows may have changed: the
    files of PARSER_CODE, Polars itself."""
    digest = hashlib.sha256(pl.__version__.encode())
    for name in PARSER_CODE:
        digest.update((PACKAGE / name).read_bytes())
    return digest.hexdigest()[:16]


class SpillingEngine(Protocol):
    """What the cache needs of an engine (PolarsEngine): landing files parsed into parts kept
    in a folder of the caller's."""

    def stream_landing(self, files: list[str], table: Table, store: S3Store | None = None,
                       spill_to: Path | None = None) -> LandingBatch: ...


#: A .tmp work folder older than this belongs to a run that died: removed by the next run.
STALE_WORK_SECONDS = 3600


class LandingCache:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _key(self, table: Table, path: str, stamp: str, version: str) -> str:
        text = json.dumps([table.name, path, stamp, version])
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def land(self, engine: SpillingEngine, landing: LandingSource, table: Table,
             files: list[str]) -> LandingBatch:
        """The source's rows and rejects, parsing only the files without a cache entry."""
        folder = self.root / table.name
        # it deletes stale entries: never in a folder reached through a link leading elsewhere
        if self.root.is_symlink():
            raise OutsideRootError(f"refusing to use the landing cache {self.root}: it is a "
                                   "symbolic link; point STEDI_LANDING_CACHE at a real folder")
        ensure_inside(folder, self.root, "write landing cache entries into")
        folder.mkdir(parents=True, exist_ok=True)
        stamps = landing.file_stamps(table.source, files)
        version = parser_version()
        entries, parsed = [], 0
        for path in files:
            stamp = stamps.get(path)
            if stamp is None:  # appeared after the listing: stamp it on the next run
                stamp = f"unstamped:{os.urandom(8).hex()}"
            entry = folder / self._key(table, path, stamp, version)
            if not (entry / "accounting.json").is_file():
                self._parse_into(engine, landing, table, path, entry)
                parsed += 1
            entries.append(entry)
        for stale in set(folder.iterdir()) - set(entries):
            # files gone or rewritten; a .tmp folder only when old (another run may be writing)
            if stale.suffix != ".tmp" or time.time() - stale.stat().st_mtime > STALE_WORK_SECONDS:
                shutil.rmtree(stale, ignore_errors=True)
        batch = self._batch(table, files, entries)
        batch.files_reused = len(files) - parsed
        return batch

    @staticmethod
    def _parse_into(engine: SpillingEngine, landing: LandingSource, table: Table, path: str,
                    entry: Path) -> None:
        # a folder of its own: two runs at once may parse the same file
        work = entry.with_name(f"{entry.name}.{uuid.uuid4().hex[:12]}.tmp")
        work.mkdir()
        try:
            batch = engine.stream_landing([path], table, landing.store, spill_to=work)
            if not any(work.glob("part-*.parquet")):  # an empty file: no batch, no part
                batch.row_frame().sink_parquet(work / "part-000000.parquet")
            batch.rejects.write_parquet(work / "rejects.parquet")
            # the conservation check's count of the file's lines, from its raw bytes and
            # independently of the parser: kept so that a run reusing the entry counts only
            # the files it parses (the entry's key changes whenever the file does)
            lines_counted = count_lines(path, landing.store)
            (work / "accounting.json").write_text(json.dumps(
                {"file": path, "lines_read": batch.lines_read, "lines_counted": lines_counted,
                 "unknown_keys": batch.unknown_keys}))
            if entry.exists() and not (entry / "accounting.json").is_file():
                shutil.rmtree(entry, ignore_errors=True)  # an incomplete entry: replace it
            try:
                work.rename(entry)  # atomic; fails when another run put the entry there first
            except OSError:
                if not (entry / "accounting.json").is_file():
                    raise
                shutil.rmtree(work, ignore_errors=True)  # theirs is the same parse: keep it
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise

    @staticmethod
    def _batch(table: Table, files: list[str], entries: list[Path]) -> LandingBatch:
        # the parts are the table's files already: the IO manager links them into the table
        parts = tuple(str(p) for e in entries for p in sorted(e.glob("part-*.parquet")))
        rows = ParquetParts(parts, polars_schema(table))
        rejects = [pl.read_parquet(e / "rejects.parquet") for e in entries]
        rejects = [r for r in rejects if r.height]
        unknown: Counter = Counter()
        lines, counted = 0, {}
        for path, entry in zip(files, entries, strict=True):
            accounting = json.loads((entry / "accounting.json").read_text())
            lines += accounting["lines_read"]
            unknown.update(accounting["unknown_keys"])
            if isinstance(accounting.get("lines_counted"), int):
                counted[path] = accounting["lines_counted"]
        return LandingBatch(
            rows=rows,
            rejects=pl.concat(rejects) if rejects else empty_rejects(),
            files=files, lines_read=lines, unknown_keys=dict(sorted(unknown.items())),
            line_counts=counted)
