"""Read the raw lines of one landing file, with its file and line number: the parser's input.

A landing file is a local path or an `s3://bucket/key` (then Polars reads it with its native
cloud I/O). Finding the files, their stamps, fingerprints and independent line counts is
landing_files.py; only this module is the parser's code (engines/landing_cache.py hashes it).

Compressed files: gzip (`.gz`) is read by both engines (Polars decompresses by content, Spark,
Glue and Athena by name), so a `.gz` file is landed and its lines are counted from the
decompressed bytes. A file must say what it holds: gzip data under another name, a `.gz` name
over plain text, or a codec one of the engines cannot read (bzip2: not Polars; zstd: not
Spark without native Hadoop libraries; xz, zip, ...) is a LandingError naming the file,
never lines read from compressed bytes.
"""

from __future__ import annotations

import os
import re
import zlib
from collections.abc import Iterator

import polars as pl

from stedi_assets.io.s3 import S3Store, split_s3_uri


class LandingError(Exception):
    """A landing problem the user must fix; the message names the file (and line)."""


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


def decompressed(chunks: Iterator[bytes], gzip: bool) -> Iterator[bytes]:
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


def local_chunks(path: str) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        yield from iter(lambda: fh.read(1 << 20), b"")


def _local_bytes(path: str) -> bytes:
    return b"".join(decompressed(local_chunks(path), is_gzip(path)))


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
