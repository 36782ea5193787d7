"""S3 access shared by the landing reader, the Parquet IO manager and the SQL CLI.

Object data moves through Polars' native cloud I/O (`storage_options`); boto3 is used only for
what Polars does not do: listing prefixes, deleting keys, and a cheap first request whose errors
can be turned into messages a user can act on. Credentials come from the standard AWS chain
(environment, profile, instance role) in both boto3 and Polars; nothing here reads or logs them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

# boto3 and botocore are imported where a client is made or an AWS error is looked at: a
# local lakehouse never needs them, and importing boto3 costs ~0.16 s of every process start
# (the CLI, the code location, each step process) — see docs/benchmarks.md, Dagster overhead.


def boto_config() -> Any:
    """botocore Config under which requests give up quickly on an unreachable endpoint
    instead of retrying for minutes."""
    from botocore.config import Config

    return Config(connect_timeout=5, read_timeout=60,
                  retries={"max_attempts": 3, "mode": "standard"})


def aws_errors() -> tuple[type[Exception], ...]:
    """The errors boto3 calls raise (for `except aws_errors():`, evaluated only when an
    exception is being matched, so botocore is imported only then)."""
    from botocore.exceptions import BotoCoreError, ClientError

    return ClientError, BotoCoreError


_DELETE_BATCH = 1000  # DeleteObjects takes at most 1000 keys per request

_MISSING_BUCKET = {"NoSuchBucket"}
_DENIED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled",
           "InvalidToken", "ExpiredToken", "Forbidden"}
_UNREACHABLE = "unreachable endpoint"
_NO_CREDENTIALS = "no credentials"
#: How the same problems read in Polars (object_store) error messages.
_TEXT_MARKERS = [*((c, c) for c in sorted(_MISSING_BUCKET | _DENIED)),
                 ("403 Forbidden", "Forbidden"), ("Connection refused", _UNREACHABLE),
                 ("error sending request", _UNREACHABLE), ("dns error", _UNREACHABLE)]


class StorageError(Exception):
    """An S3 problem the user must fix; the message names the bucket and key."""


def is_s3_uri(uri: str) -> bool:
    return uri.startswith("s3://")


def split_s3_uri(uri: str) -> tuple[str, str]:
    """'s3://bucket/some/prefix' -> ('bucket', 'some/prefix')."""
    if not is_s3_uri(uri):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[len("s3://"):].partition("/")
    if not bucket:
        raise ValueError(f"no bucket in {uri!r}")
    return bucket, key


def split_s3_folder(uri: str) -> tuple[str, str]:
    """'s3://bucket/some/prefix' -> ('bucket', 'some/prefix/'); the bucket root gives ''."""
    bucket, key = split_s3_uri(uri)
    return bucket, key.strip("/") + "/" if key.strip("/") else ""


@dataclass(frozen=True)
class S3Store:
    """How to reach S3: region, optional custom endpoint (MinIO, moto), anonymous or signed."""

    region: str
    endpoint_url: str | None = None
    anonymous: bool = False

    @cached_property
    def client(self) -> Any:
        """A boto3 S3 client made once per store; credentials from the standard AWS chain."""
        import boto3
        from botocore import UNSIGNED
        from botocore.config import Config

        config = boto_config()
        if self.anonymous:
            config = config.merge(Config(signature_version=UNSIGNED))
        return boto3.session.Session().client(
            "s3", region_name=self.region, endpoint_url=self.endpoint_url or None, config=config
        )

    @property
    def storage_options(self) -> dict[str, str]:
        """Options for Polars' cloud I/O. Without keys in them Polars uses the AWS chain too."""
        options = {"aws_region": self.region}
        if self.endpoint_url:
            options["aws_endpoint_url"] = self.endpoint_url
            if self.endpoint_url.startswith("http://"):
                options["aws_allow_http"] = "true"
        if self.anonymous:
            options["aws_skip_signature"] = "true"
        return options

    def _where(self) -> str:
        return f"endpoint {self.endpoint_url}" if self.endpoint_url else f"region {self.region}"

    def explain(self, exc: Exception, uri: str, doing: str) -> StorageError:
        """Turn a boto3/botocore/Polars error about `uri` into a StorageError a user can act on."""
        bucket, key = split_s3_uri(uri)
        target = f"bucket {bucket!r}, key {key!r}" if key else f"bucket {bucket!r}"
        code = _error_code(exc)
        if code in _MISSING_BUCKET:
            return StorageError(
                f"S3 bucket {bucket!r} does not exist ({self._where()}) while {doing} {uri}. "
                "Check the bucket name in STEDI_LANDING_ROOT/STEDI_LAKEHOUSE_ROOT and "
                "AWS_ENDPOINT_URL."
            )
        if code in _DENIED:
            return StorageError(
                f"S3 access denied ({code}) while {doing} {uri} ({target}, {self._where()}). "
                "Check the AWS credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID/"
                "AWS_SECRET_ACCESS_KEY, instance role) and the bucket policy; a public landing "
                "bucket can be read with STEDI_LANDING_ANONYMOUS=1."
            )
        if code == _UNREACHABLE:
            return StorageError(
                f"cannot reach the S3 endpoint ({self._where()}) while {doing} {uri}. "
                "Check AWS_ENDPOINT_URL (scheme, host and port) and the network."
            )
        if code == _NO_CREDENTIALS:
            return StorageError(
                f"no AWS credentials found while {doing} {uri}. Configure the standard AWS "
                "chain (AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or an instance "
                "role), or set STEDI_LANDING_ANONYMOUS=1 for a public landing bucket."
            )
        return StorageError(f"S3 problem while {doing} {uri} ({target}, {self._where()}): "
                            f"{code or type(exc).__name__}: {_first_line(exc)}")

    def list_keys(self, uri: str) -> list[str]:
        """Every object key under the prefix `uri` (treated as a folder), paginated."""
        return [obj["Key"] for obj in self.list_objects(uri)]

    def list_objects(self, uri: str) -> list[dict[str, Any]]:
        """Every object (Key, Size, ETag, LastModified) under the prefix `uri`, paginated."""
        bucket, prefix = split_s3_folder(uri)
        try:
            return [obj for page in self._pages(bucket, prefix) for obj in page]
        except aws_errors() as exc:
            raise self.explain(exc, uri, "listing") from None

    def _pages(self, bucket: str, prefix: str) -> Iterator[list[dict[str, Any]]]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            yield page.get("Contents", [])

    def delete_keys(self, bucket: str, keys: list[str]) -> None:
        for start in range(0, len(keys), _DELETE_BATCH):
            batch = keys[start:start + _DELETE_BATCH]
            try:
                response = self.client.delete_objects(
                    Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
                )
            except aws_errors() as exc:
                raise self.explain(exc, f"s3://{bucket}/{batch[0]}", "deleting") from None
            errors = response.get("Errors", [])
            if errors:
                first = errors[0]
                raise StorageError(
                    f"could not delete {len(errors)} object(s) in bucket {bucket!r}, e.g. key "
                    f"{first.get('Key')!r}: {first.get('Code')} {first.get('Message')}"
                )


def _error_code(exc: Exception) -> str:
    from botocore.exceptions import (
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
    )

    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError):
        return _UNREACHABLE
    if isinstance(exc, NoCredentialsError):
        return _NO_CREDENTIALS
    text = str(exc)
    return next((code for marker, code in _TEXT_MARKERS if marker in text), "")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else ""
