"""Resources the assets use: the compute engine, the landing source and check thresholds.

Which flavour of each is used is decided in `definitions` only.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import polars as pl
from dagster import ConfigurableResource
from pydantic import PrivateAttr

from stedi_assets.io.landing_reader import (
    landing_fingerprint,
    list_landing_files,
    list_s3_landing_files,
    read_landing_lines,
    s3_landing_fingerprint,
)
from stedi_assets.io.s3 import S3Store
from stedi_assets.schemas import Table
from stedi_assets.transforms import polars_engine


@dataclass
class LandingBatch:
    """What reading one landing source gave: rows, quarantined lines and the accounting."""

    rows: Any
    rejects: Any
    files: list[str]
    lines_read: int
    unknown_keys: dict[str, int]


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

    def files(self, source: str) -> list[str]:
        return list_landing_files(self.root, self.folder_name(source))

    def fingerprint(self, source: str) -> str:
        """Changes whenever a file of the source is added, removed or rewritten."""
        return landing_fingerprint(self.root, self.folder_name(source))


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

    def files(self, source: str) -> list[str]:
        return list_s3_landing_files(self.root, self.folder_name(source), self.store)

    def fingerprint(self, source: str) -> str:
        return s3_landing_fingerprint(self.root, self.folder_name(source), self.store)


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


class PolarsEngine(Engine):
    """Computes every table with Polars on this machine (lazy, streaming where possible)."""

    @property
    def kind(self) -> str:
        return "polars"

    @property
    def ops(self) -> ModuleType:
        """The engine module: one function per table plus the check figures."""
        return polars_engine

    def read_landing(self, files: list[str], table: Table,
                     store: S3Store | None = None) -> LandingBatch:
        rows, rejects, lines_read, unknown = [], [], 0, Counter()
        for path in files:
            lines = read_landing_lines(path, store)
            file_rows, file_rejects, file_unknown = self.ops.parse_landing(lines, table)
            rows.append(file_rows)
            rejects.append(file_rejects)
            lines_read += lines.height
            unknown.update(file_unknown)
        return LandingBatch(
            rows=pl.concat(rows) if rows else polars_engine.empty_rows(table),
            rejects=pl.concat(rejects) if rejects else polars_engine.empty_rejects(),
            files=files, lines_read=lines_read, unknown_keys=dict(sorted(unknown.items())),
        )


class CheckSettings(ConfigurableResource):
    """Thresholds of the WARN-level asset checks."""

    #: Join coverage WARNs when fewer step readings than this share find accelerometer readings.
    min_join_coverage: float = 0.5
    #: The quarantine-rate check WARNs when more landing lines than this share are rejected.
    max_reject_share: float = 0.01


class PrivacySettings(ConfigurableResource):
    """How far consent reaches and how curated tables name customers."""

    #: Key of the HMAC-SHA256 that turns an email into the pseudonymous customerKey.
    pseudonym_secret: str
    #: Drop accelerometer readings taken before the customer's shareWithResearchAsOfDate.
    consent_as_of_date: bool = False
