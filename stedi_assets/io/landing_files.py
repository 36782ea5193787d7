"""Find the landing files of a source and describe them: the files (local folder or S3
prefix), what was skipped, each file's stamp, the source's fingerprint and each file's line
count from its raw bytes (independently of the parser, which reads lines in landing_reader.py).

A landing folder is a local directory or an `s3://bucket/prefix` (then an `S3Store` lists it).
"""

from __future__ import annotations

import hashlib
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from stedi_assets.io.landing_reader import (
    LandingError,
    decompressed,
    is_gzip,
    is_parquet,
    local_chunks,
)
from stedi_assets.io.local_paths import leads_outside
from stedi_assets.io.s3 import S3Store, StorageError, split_s3_folder, split_s3_uri


def _hidden(relative: Path) -> bool:
    return any(part.startswith((".", "_")) for part in relative.parts)


@dataclass(frozen=True)
class LandingListing:
    """The data files of a landing source and the entries left out, each as "path: reason"
    (a symbolic link leading outside the landing root, a broken link, a linked folder)."""

    files: list[str]
    skipped: list[str] = field(default_factory=list)


def _walk_landing_folder(root: str, folder: Path) -> LandingListing:
    """Every data file under `folder` (recursively), sorted; hidden entries (a path part
    starting with . or _) ignored. A symbolic link is read only when it is a file inside the
    landing root; folders reached through a link are never entered (as Path.rglob did)."""
    files, skipped = [], []
    for directory, folders, names in os.walk(folder):  # does not enter linked folders
        base = Path(directory)
        folders[:] = [d for d in folders if not _hidden((base / d).relative_to(folder))]
        for name in [*folders, *names]:
            path = base / name
            if _hidden(path.relative_to(folder)):
                continue
            if not path.is_symlink():
                if path.is_file():
                    files.append(str(path))
                continue
            if leads_outside(path, root):
                skipped.append(f"{path}: symbolic link leading outside the landing root")
            elif path.is_dir():
                skipped.append(f"{path}: symbolic link to a folder (not followed)")
            elif path.is_file():
                files.append(str(path))
            else:
                skipped.append(f"{path}: broken symbolic link")
    return LandingListing(sorted(files), sorted(skipped))


def scan_landing_folder(root: str, source: str) -> LandingListing:
    """The files of <root>/<source>/ and what was skipped (see _walk_landing_folder)."""
    folder = Path(root) / source
    if not folder.is_dir():
        raise LandingError(
            f"landing folder {folder} does not exist (landing root {root!r}); "
            f"set STEDI_LANDING_ROOT or run `stedi-generate --out {root}`"
        )
    if leads_outside(folder, root):
        raise LandingError(f"landing folder {folder} is a symbolic link leading outside the "
                           f"landing root {root!r}: nothing outside the root is read")
    listing = _walk_landing_folder(root, folder)
    if not listing.files:
        raise LandingError(f"landing folder {folder} holds no files")
    return listing


def list_landing_files(root: str, source: str) -> list[str]:
    """Every data file under <root>/<source>/ (recursively), sorted; hidden files and symbolic
    links leading outside the landing root skipped."""
    return scan_landing_folder(root, source).files


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


_NEWLINE = ord("\n")


def count_lines(path: str, store: S3Store | None = None) -> int:
    """Lines in a file counted from its raw bytes (independently of any parser; a .gz file
    from its decompressed bytes): newlines, plus one for a last line without a newline. A
    Parquet landing file counts its rows (from the file's footer)."""
    count, last = 0, b"\n"
    if is_parquet(path):
        options = store.storage_options if store else None
        return int(pl.scan_parquet(path, storage_options=options).select(pl.len())
                   .collect().item())
    if store is None:
        chunks = local_chunks(path)
    else:
        bucket, key = split_s3_uri(path)
        try:
            chunks = store.client.get_object(Bucket=bucket, Key=key)["Body"].iter_chunks(1 << 20)
        except Exception as exc:  # noqa: BLE001 - turned into a clear message
            raise LandingError(str(store.explain(exc, path, "counting lines of"))) from None
    try:
        for chunk in decompressed(chunks, is_gzip(path)):
            # numpy compares a chunk's bytes about 4x faster than bytes.count(b"\n") counts
            count += int(np.count_nonzero(np.frombuffer(chunk, np.uint8) == _NEWLINE))
            last = chunk[-1:] or last
    except zlib.error as exc:
        raise LandingError(f"{path}: damaged gzip data ({exc})") from None
    return count + (0 if last == b"\n" else 1)


def landing_fingerprint(root: str, source: str) -> str:
    """A digest of the names, sizes and modification times of a source's files ('' if none);
    skipped entries (see scan_landing_folder) do not count."""
    folder = Path(root) / source
    if not folder.is_dir() or leads_outside(folder, root):
        return ""
    digest = hashlib.sha256()
    for name in _walk_landing_folder(root, folder).files:
        path = Path(name)
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
