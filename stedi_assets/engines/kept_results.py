"""Check figures kept between runs: the customer-sized sets the consent and shared-devices
checks derive from the customer landing tables.

Every consent check needs every customer's consent (the latest record of each customer, and
an HMAC key per consenting customer, computed in Python): about 2 s at SF1000, paid by every
run that adds readings, although the customer landing tables usually did not move since the
last run. The Polars engine keeps the last such set under

    <landing cache>/_checks/<name>-<key>.parquet

where <key> digests the inputs' query plans (a lakehouse table's plan names its snapshot's
data files, never rewritten in place: same files, same rows), the pseudonym secret's
fingerprint, and the code that computes the set (below). Only the latest set of each name is
kept: writing one removes the others. An incremental consent check updates the kept set from
the customers who changed (transforms/polars/figures.consenting_customers) and keeps the result
under a name of its own, which a full verification never reads. The folder holds
what the landing cache beside it holds already (customer emails, serial numbers, consent
dates; customer keys), so it lives and is deleted with it; it can be deleted at any time (the
next check recomputes).
"""

from __future__ import annotations

import hashlib
import time
import uuid
from pathlib import Path

import polars as pl

from stedi_assets.io.local_paths import ensure_inside

PACKAGE = Path(__file__).resolve().parents[1]
#: The code that computes a kept set from the customer tables.
FIGURES_CODE = ("transforms/polars/figures.py", "transforms/polars/tables.py",
                "transforms/pseudonyms.py", "transforms/identity.py",
                # which customers an incremental check updates a kept set with
                "transforms/figures.py", "check_rules.py")
#: A temporary file older than this was left by a crashed write (a write takes seconds).
STALE_WORK_SECONDS = 3600


def figures_version() -> str:
    """Changes whenever the code computing a kept set may have changed (and with Polars)."""
    digest = hashlib.sha256(pl.__version__.encode())
    for name in FIGURES_CODE:
        digest.update((PACKAGE / name).read_bytes())
    return digest.hexdigest()[:16]


class KeptResults:
    """Frames kept on local disk under `folder` (inside `root`), one per name, by key."""

    def __init__(self, folder: str | Path, root: str | Path) -> None:
        self.folder, self.root = Path(folder), Path(root)

    def _path(self, name: str, key: str) -> Path:
        digest = hashlib.sha256(f"{key}:{figures_version()}".encode()).hexdigest()[:32]
        return self.folder / f"{name}-{digest}.parquet"

    def get(self, name: str, key: str) -> pl.DataFrame | None:
        """The frame kept for (name, key), or None (never kept, replaced, or unreadable)."""
        try:
            return pl.read_parquet(self._path(name, key))
        except (OSError, pl.exceptions.PolarsError):
            return None

    def put(self, name: str, key: str, frame: pl.DataFrame) -> None:
        """Keep `frame` for (name, key) instead of any other frame of that name. Written to a
        temporary file and renamed, so a reader never sees half a file."""
        if self.root.is_symlink():  # it deletes files: never through a link (landing_cache.py)
            return
        ensure_inside(self.folder, self.root, "keep check figures in")
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._path(name, key)
        work = path.with_name(f"{path.name}.{uuid.uuid4().hex[:12]}.tmp")
        frame.write_parquet(work)
        work.replace(path)
        for other in self.folder.glob(f"{name}-*"):
            try:
                stale_work = other.suffix == ".tmp" and (
                    time.time() - other.stat().st_mtime > STALE_WORK_SECONDS)
                if other != path and (other.suffix == ".parquet" or stale_work):
                    other.unlink(missing_ok=True)
            except OSError:  # removed meanwhile by another run's put
                continue
