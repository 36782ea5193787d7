"""Find and read the raw landing files: every line of every file, with its file and number."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import polars as pl


class LandingError(Exception):
    """A landing problem the user must fix; the message names the file (and line)."""


def _hidden(relative: Path) -> bool:
    return any(part.startswith((".", "_")) for part in relative.parts)


def list_landing_files(root: str, source: str) -> list[str]:
    """Every data file under <root>/<source>/ (recursively), sorted; hidden files skipped."""
    folder = Path(root) / source
    if not folder.is_dir():
        raise LandingError(
            f"landing folder {folder} does not exist (landing root {root!r}); "
            f"set STEDI_LANDING_ROOT or run `stedi-generate --out {root}`"
        )
    files = sorted(
        str(p)
        for p in folder.rglob("*")
        if p.is_file() and not _hidden(p.relative_to(folder))
    )
    if not files:
        raise LandingError(f"landing folder {folder} holds no files")
    return files


def _first_undecodable_line(path: str) -> int:
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return 0


def read_landing_lines(path: str) -> pl.DataFrame:
    """(file, line_number, line) for every line of one file; line numbers start at 1."""
    try:
        frame = pl.scan_lines(path, name="line", row_index_name="line_number",
                              row_index_offset=1).collect()
    except (pl.exceptions.ComputeError, pl.exceptions.PolarsError, OSError) as exc:
        if os.path.isfile(path):
            line = _first_undecodable_line(path)
            if line:
                raise LandingError(
                    f"{path}:{line}: not UTF-8 text; landing files must be JSON lines"
                ) from None
        raise LandingError(f"{path}: cannot read landing file: {exc}") from None
    return frame.select(
        pl.lit(path).alias("file"), pl.col("line_number").cast(pl.Int64), pl.col("line")
    )


def landing_fingerprint(root: str, source: str) -> str:
    """A digest of the names, sizes and modification times of a source's files ('' if none)."""
    folder = Path(root) / source
    if not folder.is_dir():
        return ""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*")
                       if p.is_file() and not _hidden(p.relative_to(folder))):
        stat = path.stat()
        digest.update(f"{path.relative_to(folder)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()
