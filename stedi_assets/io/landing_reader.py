"""Find and read the raw landing files: every line of every file, with its file and number.

A landing folder is a local directory or an `s3://bucket/prefix` (then an `S3Store` lists it and
Polars reads the files with its native cloud I/O).

Compressed files: gzip (`.gz`) is read by both engines (Polars decompresses by content, Spark,
Glue and Athena by name), so a `.gz` file is landed and its lines are counted from the
decompressed bytes. A file must say what it holds: gzip data under another name, a `.gz` name
over plain text, or a codec one of the engines cannot read (bzip2: not Polars; zstd: not
Spark without native Hadoop libraries; xz, zip, ...) is a LandingError naming the file,
never lines read from compressed bytes.
"""

from __future__ import annotations

import hashlib
import os
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from stedi_assets.io.local_paths import leads_outside
from stedi_assets.io.s3 import S3Store, StorageError, split_s3_folder, split_s3_uri


class LandingError(Exception):
    """A landing problem the user must fix; the message names the file (and line)."""


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


def is_parquet(path: str) -> bool:
    """A landing file already typed as Parquet (e.g. `stedi-generate --format parquet`)."""
    return path.endswith(".parquet")


#: (codec, what its data starts with); gzip is the one codec both engines read
_MAGIC = [("gzip", re.compile(rb"\x1f\x8b")),
          ("bzip2", re.compile(rb"BZh[1-9](1AY&SY|\x17rE8P\x90)")),
          ("zstd", re.compile(rb"\x28\xb5\x2f\xfd")), ("xz", re.compile(rb"\xfd7zXZ\x00")),
          ("zip", re.compile(rb"PK\x03\x04"))]
_CODEC_SUFFIXES = {".gz": "gzip", ".gzip": "gzip", ".bz2": "bzip2", ".zst": "zstd",
                   ".zstd": "zstd", ".xz": "xz", ".lzma": "xz", ".zip": "zip", ".lz4": "lz4",
                   ".snappy": "snappy", ".deflate": "deflate", ".br": "brotli", ".7z": "7z",
                   ".z": "compress"}


def _named_codec(path: str) -> str | None:
    return _CODEC_SUFFIXES.get(os.path.splitext(path)[1].lower())


def is_gzip(path: str) -> bool:
    """A gzip-compressed landing file (by its name, as Spark, Glue and Athena decide)."""
    return _named_codec(path) == "gzip"


def _head(path: str, store: S3Store | None) -> bytes:
    if store is None:
        with open(path, "rb") as fh:
            return fh.read(10)
    bucket, key = split_s3_uri(path)
    try:
        return store.client.get_object(Bucket=bucket, Key=key, Range="bytes=0-9")["Body"].read()
    except Exception as exc:  # noqa: BLE001 - turned into a clear message
        raise LandingError(str(store.explain(exc, path, "reading landing file"))) from None


def check_compression(path: str, store: S3Store | None = None) -> None:
    """LandingError unless the file is plain text or gzip data named .gz (see module doc)."""
    if is_parquet(path):
        return
    named = _named_codec(path)
    head = _head(path, store)
    found = next((codec for codec, magic in _MAGIC if magic.match(head)), None)
    if named not in (None, "gzip"):
        raise LandingError(f"{path}: {named}-compressed landing files are not read (both "
                           "engines read gzip): recompress it with gzip as .gz")
    if found not in (None, "gzip"):
        raise LandingError(f"{path}: holds {found}-compressed data, which is not read (both "
                           "engines read gzip): recompress it with gzip as .gz")
    if found != named and head:  # Spark, Glue and Athena would misread a misnamed file
        raise LandingError(
            f"{path}: holds gzip data but its name does not end in .gz" if found else
            f"{path}: is named .gz but does not hold gzip data")


def _decompressed(chunks: Iterator[bytes], gzip: bool) -> Iterator[bytes]:
    """The bytes of a file from its raw chunks (gzip: every member of the file in turn)."""
    if not gzip:
        yield from chunks
        return
    inflate = zlib.decompressobj(wbits=31)
    for chunk in chunks:
        while chunk:
            yield inflate.decompress(chunk)
            if not inflate.eof:
                break
            chunk = inflate.unused_data  # the next member of a concatenated gzip file
            inflate = zlib.decompressobj(wbits=31)


def _local_chunks(path: str) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        yield from iter(lambda: fh.read(1 << 20), b"")


def _local_bytes(path: str) -> bytes:
    return b"".join(_decompressed(_local_chunks(path), is_gzip(path)))


def _first_undecodable_line(path: str) -> int:
    for number, raw in enumerate(_local_bytes(path).split(b"\n"), start=1):
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
        try:
            undecodable = os.path.isfile(path) and _first_undecodable_line(path)
        except zlib.error as damaged:
            raise LandingError(f"{path}: damaged gzip data ({damaged})") from None
        if undecodable:
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
    for raw in _local_bytes(path).split(b"\n"):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            lines.append(None)
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line does not start another
    return pl.DataFrame({"line": lines, "line_number": range(1, len(lines) + 1)},
                        schema={"line": pl.String, "line_number": pl.Int64})


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
        chunks = _local_chunks(path)
    else:
        bucket, key = split_s3_uri(path)
        try:
            chunks = store.client.get_object(Bucket=bucket, Key=key)["Body"].iter_chunks(1 << 20)
        except Exception as exc:  # noqa: BLE001 - turned into a clear message
            raise LandingError(str(store.explain(exc, path, "counting lines of"))) from None
    try:
        for chunk in _decompressed(chunks, is_gzip(path)):
            count += chunk.count(b"\n")
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

