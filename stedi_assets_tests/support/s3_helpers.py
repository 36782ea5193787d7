"""Helpers for tests against the S3/Glue test server (see `s3_server` for the fixtures):
upload landing data, settings for the s3 environment, materialize the graph, read results."""

from __future__ import annotations

import contextlib
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

from dagster import ExecuteInProcessResult, materialize

from stedi_assets.definitions import Settings, all_asset_checks, all_assets, build_resources
from stedi_assets_tests.support.paths import REAL_2023

REGION = "us-east-1"

REAL_2023_LANDING = REAL_2023
#: The seeds' public bucket names the customer folder `customers`.
SEEDS_FOLDERS = {"customer": "customers", "accelerometer": "accelerometer",
                 "step_trainer": "step_trainer"}


def new_bucket(s3_client) -> str:
    name = f"stedi-test-{uuid.uuid4().hex[:12]}"
    s3_client.create_bucket(Bucket=name)
    return name


def upload_landing(s3_client, local_landing: Path, bucket: str, prefix: str,
                   folders: dict[str, str] | None = None) -> int:
    """Upload <local_landing>/<source>/** to s3://bucket/<prefix>/<folder>/; returns file count."""
    count = 0
    for source_dir in sorted(p for p in local_landing.iterdir() if p.is_dir()):
        folder = (folders or {}).get(source_dir.name, source_dir.name)
        for path in sorted(p for p in source_dir.rglob("*") if p.is_file()):
            key = f"{prefix.strip('/')}/{folder}/{path.relative_to(source_dir).as_posix()}"
            s3_client.upload_file(str(path), bucket, key)
            count += 1
    return count


def glue_database(lakehouse_root: str) -> str:
    """One Glue database per test lakehouse (its bucket), as one per real lakehouse: the test
    server's catalog is shared by the tests of a module."""
    return "stedi_" + lakehouse_root.removeprefix("s3://").split("/")[0].replace("-", "_")


def s3_settings(endpoint: str, landing_root: str, lakehouse_root: str, **env: str) -> Settings:
    """Settings exactly as `definitions` reads them for STEDI_ENV=s3 against the test server
    (with the lakehouse's own Glue database)."""
    return Settings.from_env({
        "STEDI_GLUE_DATABASE": glue_database(lakehouse_root),
        "STEDI_ENV": "s3",
        "STEDI_PSEUDONYM_SECRET": "s3-test-secret",
        "STEDI_LANDING_ROOT": landing_root,
        "STEDI_LAKEHOUSE_ROOT": lakehouse_root,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": REGION,
        **env,
    })


@contextlib.contextmanager
def authentication_enforced(endpoint: str) -> Iterator[None]:
    """Make the server check signatures against its IAM users (it has none), then relax again.

    moto accepts any credentials unless told otherwise through its /moto-api/reset-auth call."""
    def reset(value: str) -> None:
        request = urllib.request.Request(f"{endpoint}/moto-api/reset-auth", data=value.encode(),
                                         headers={"Content-Type": "text/plain"}, method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200

    reset("0")
    try:
        yield
    finally:
        reset("inf")


def materialize_lakehouse(settings: Settings) -> ExecuteInProcessResult:
    """Materialize the whole graph (assets and checks) with the resources `definitions` builds."""
    return materialize([*all_assets, *all_asset_checks], resources=build_resources(settings),
                       raise_on_error=False)


def row_counts(result: ExecuteInProcessResult) -> dict[str, int]:
    return {
        event.materialization.asset_key.path[-1]:
            event.materialization.metadata["dagster/row_count"].value
        for event in result.get_asset_materialization_events()
    }


def failure_messages(result: ExecuteInProcessResult) -> list[str]:
    return [event.step_failure_data.error.message
            for event in result.all_events if event.is_step_failure]
