"""Fixtures: a real S3 + Glue compatible HTTP server (moto's server mode) on 127.0.0.1.

Use with `pytest_plugins = ["stedi_assets_tests.support.s3_server"]`. Nothing is patched in-process:
boto3 and Polars talk HTTP to the server. Credentials are fake (`testing`), set per test module.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from stedi_assets_tests.support.s3_helpers import REGION, new_bucket


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def aws_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Fake credentials from the environment for one test module; no profile or config file of
    this machine. Tests that need other credentials override them with `monkeypatch`."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        _fake_credentials(monkeypatch, tmp_path_factory.mktemp("aws"))
        yield


def _fake_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
                 "AWS_ENDPOINT_URL_GLUE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(scope="module")
def s3_client(s3_endpoint: str, aws_env: None):
    return boto3.client("s3", endpoint_url=s3_endpoint, region_name=REGION)


@pytest.fixture(scope="module")
def glue_client(s3_endpoint: str, aws_env: None):
    return boto3.client("glue", endpoint_url=s3_endpoint, region_name=REGION)


@pytest.fixture
def bucket(s3_client) -> str:
    """A fresh, empty bucket for one test."""
    return new_bucket(s3_client)
