"""Find and read the raw landing files: every line of every file, with its file and number.

A landing folder is a local directory or an `s3://bucket/prefix` (then an `S3Store` lists it and
Polars reads the files with its native cloud I/O).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from stedi_assets.io.s3 import S3Store, StorageError, split_s3_folder, split_s3_uri


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


def list_s3_landing_files(root: str, source: str, store: S3Store) -> list[str]:
    """Every object under the S3 prefix <root>/<source>/ (any number of pages), sorted; hidden
    keys (a path part starting with . or _) and folder markers skipped."""
    folder = f"{root.rstrip('/')}/{source}"
    try:
        keys = store.list_keys(folder)
    except StorageError as exc:
        raise LandingError(str(exc)) from None
    bucket, prefix = split_s3_folder(folder)
    files = sorted(
        f"s3://{bucket}/{key}"
        for key in keys
        if not key.endswith("/") and not _hidden(Path(key[len(prefix):]))
    )
    if not files:
        raise LandingError(
            f"no landing files under {folder.rstrip('/')}/ (bucket {bucket!r}, prefix "
            f"{prefix!r}); check STEDI_LANDING_ROOT and STEDI_LANDING_PREFIXES"
        )
    return files


def file_stamps(files: list[str]) -> dict[str, str]:
    """Size, modification time and a digest of the first and last 64 KiB of each local file:
    changes when the file is rewritten (even within the clock's granularity)."""
    stamps = {}
    for path in files:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            digest = hashlib.sha256(fh.read(1 << 16))
            if size > 1 << 16:
                fh.seek(max(1 << 16, size - (1 << 16)))
                digest.update(fh.read())
            stamps[path] = f"{size}:{os.fstat(fh.fileno()).st_mtime_ns}:{digest.hexdigest()[:16]}"
    return stamps


def s3_file_stamps(root: str, source: str, store: S3Store) -> dict[str, str]:
    """Size and ETag of each landing object under <root>/<source>/ (keyed like the files)."""
    bucket, objects = _s3_landing_objects(root, source, store)
    return {f"s3://{bucket}/{o['Key']}": f"{o.get('Size')}:{o.get('ETag')}" for o in objects}


def is_parquet(path: str) -> bool:
    """A landing file already typed as Parquet (e.g. `stedi-generate --format parquet`)."""
    return path.endswith(".parquet")


def _first_undecodable_line(path: str) -> int:
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return 0


def read_landing_lines(path: str, store: S3Store | None = None) -> pl.DataFrame:
    """(file, line_number, line) for every line of one file; line numbers start at 1.
    With a `store` the path is an s3:// URI read through Polars' cloud I/O. A line that is not
    UTF-8 keeps its place with `line` = null, to be quarantined by the parser."""
    try:
        frame = pl.scan_lines(
            path, name="line", row_index_name="line_number", row_index_offset=1,
            storage_options=store.storage_options if store else None,
        ).collect()
    except (pl.exceptions.ComputeError, pl.exceptions.PolarsError, OSError) as exc:
        if store is not None:
            raise LandingError(str(store.explain(exc, path, "reading landing file"))) from None
        if os.path.isfile(path) and _first_undecodable_line(path):
            frame = _lines_with_encoding_errors(path)
        else:
            raise LandingError(f"{path}: cannot read landing file: {exc}") from None
    return frame.select(
        pl.lit(path).alias("file"), pl.col("line_number").cast(pl.Int64), pl.col("line")
    )


def iter_landing_lines(path: str, store: S3Store | None = None,
                       batch_lines: int = 1_000_000) -> Iterator[pl.DataFrame]:
    """The lines of one file as read_landing_lines gives them, in batches of about
    `batch_lines` lines (streamed: memory stays bounded by the batch, not the file)."""
    done = 0
    try:
        batches = pl.scan_lines(
            path, name="line", row_index_name="line_number", row_index_offset=1,
            storage_options=store.storage_options if store else None,
        ).collect_batches(chunk_size=batch_lines)
        for frame in batches:
            if frame.height:
                done = int(frame["line_number"][-1])
                yield frame.select(pl.lit(path).alias("file"),
                                   pl.col("line_number").cast(pl.Int64), pl.col("line"))
    except (pl.exceptions.ComputeError, pl.exceptions.PolarsError, OSError):
        # not UTF-8 somewhere, or unreadable: the eager reader quarantines or names it
        rest = read_landing_lines(path, store)
        yield from rest.filter(pl.col("line_number") > done).iter_slices(batch_lines)


def _lines_with_encoding_errors(path: str) -> pl.DataFrame:
    lines: list[str | None] = []
    with open(path, "rb") as fh:
        for raw in fh.read().split(b"\n"):
            try:
                lines.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                lines.append(None)
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line does not start another
    return pl.DataFrame({"line": lines, "line_number": range(1, len(lines) + 1)},
                        schema={"line": pl.String, "line_number": pl.Int64})


def count_lines(path: str, store: S3Store | None = None) -> int:
    """Lines in a file counted from its raw bytes (independently of any parser): newlines, plus
    one for a last line without a newline. A Parquet landing file counts its rows (from the
    file's footer)."""
    count, last = 0, b"\n"
    if is_parquet(path):
        options = store.storage_options if store else None
        return int(pl.scan_parquet(path, storage_options=options).select(pl.len())
                   .collect().item())
    if store is None:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                count += chunk.count(b"\n")
                last = chunk[-1:]
    else:
        bucket, key = split_s3_uri(path)
        try:
            body = store.client.get_object(Bucket=bucket, Key=key)["Body"]
        except Exception as exc:  # noqa: BLE001 - turned into a clear message
            raise LandingError(str(store.explain(exc, path, "counting lines of"))) from None
        for chunk in body.iter_chunks(1 << 20):
            count += chunk.count(b"\n")
            last = chunk[-1:] or last
    return count + (0 if last == b"\n" else 1)


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


def _s3_landing_objects(root: str, source: str, store: S3Store) -> tuple[str, list[dict]]:
    """(bucket, the landing objects under <root>/<source>/ sorted by key): folder markers and
    hidden keys left out, as list_s3_landing_files does."""
    folder = f"{root.rstrip('/')}/{source}"
    bucket, prefix = split_s3_folder(folder)
    try:
        objects = store.list_objects(folder)
    except StorageError as exc:
        raise LandingError(str(exc)) from None
    return bucket, sorted((o for o in objects if not o["Key"].endswith("/")
                           and not _hidden(Path(o["Key"][len(prefix):]))),
                          key=lambda o: o["Key"])


def s3_landing_fingerprint(root: str, source: str, store: S3Store) -> str:
    """A digest of the keys, sizes, ETags and modification times under <root>/<source>/."""
    _, objects = _s3_landing_objects(root, source, store)
    digest = hashlib.sha256()
    for obj in objects:
        digest.update(f"{obj['Key']}\0{obj.get('Size')}\0{obj.get('ETag')}\0"
                      f"{obj.get('LastModified')}\n".encode())
    return digest.hexdigest() if objects else ""

