"""What a user sees when S3 or Glue is misconfigured: one clear message naming bucket/key."""

from __future__ import annotations

import json
import socket

import pytest

from stedi_assets import schemas
from stedi_assets.deployments import build_storage
from stedi_assets.engines.polars_engine import PolarsEngine
from stedi_assets_tests.support.s3_helpers import (
    authentication_enforced,
    failure_messages,
    materialize_lakehouse,
    s3_settings,
    upload_landing,
)
from stedi_assets_tests.support.tiny_landing import EXPECTED_COUNTS, write_tiny_landing

pytest_plugins = ["stedi_assets_tests.support.s3_server"]

WRONG_SECRET = "wrong-secret-never-to-be-printed"


@pytest.fixture
def tiny_bucket(bucket, s3_client, tmp_path) -> str:
    upload_landing(s3_client, write_tiny_landing(tmp_path / "landing"), bucket, "landing")
    return bucket


def _only_failure(settings) -> str:
    result = materialize_lakehouse(settings)
    assert not result.success
    messages = failure_messages(result)
    assert messages, "the run failed without a step failure"
    # A user error, not a library traceback.
    assert all("Traceback" not in m and "botocore" not in m for m in messages)
    return "\n".join(messages)


def test_missing_lakehouse_bucket_is_named(s3_endpoint, tiny_bucket):
    settings = s3_settings(s3_endpoint, f"s3://{tiny_bucket}/landing",
                           "s3://stedi-no-such-bucket/lakehouse")
    message = _only_failure(settings)
    assert "S3 bucket 'stedi-no-such-bucket' does not exist" in message
    assert "s3://stedi-no-such-bucket/lakehouse/landing/customer_landing" in message


def test_missing_landing_bucket_is_named(s3_endpoint, bucket):
    settings = s3_settings(s3_endpoint, "s3://stedi-no-landing-bucket/landing",
                           f"s3://{bucket}/lakehouse")
    message = _only_failure(settings)
    assert "S3 bucket 'stedi-no-landing-bucket' does not exist" in message
    assert "while listing s3://stedi-no-landing-bucket/landing/customer" in message


def test_empty_landing_prefix_is_named(s3_endpoint, tiny_bucket):
    settings = s3_settings(s3_endpoint, f"s3://{tiny_bucket}/nothing-here/",
                           f"s3://{tiny_bucket}/lakehouse")
    message = _only_failure(settings)
    assert (f"no landing files under s3://{tiny_bucket}/nothing-here/customer/ "
            f"(bucket '{tiny_bucket}', prefix 'nothing-here/customer/')") in message


def test_wrong_credentials_are_access_denied(s3_endpoint, tiny_bucket, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG0")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", WRONG_SECRET)
    settings = s3_settings(s3_endpoint, f"s3://{tiny_bucket}/landing",
                           f"s3://{tiny_bucket}/lakehouse")
    with authentication_enforced(s3_endpoint):
        message = _only_failure(settings)
    assert "S3 access denied (InvalidAccessKeyId) while listing " \
           f"s3://{tiny_bucket}/landing/customer" in message
    assert WRONG_SECRET not in message


def test_unreachable_endpoint_is_named(tiny_bucket):
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    settings = s3_settings(closed, f"s3://{tiny_bucket}/landing", f"s3://{tiny_bucket}/lakehouse")
    message = _only_failure(settings)
    assert f"cannot reach the S3 endpoint (endpoint {closed}) while listing " \
           f"s3://{tiny_bucket}/landing/customer" in message


def test_missing_credentials_are_named(s3_endpoint, tiny_bucket, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    settings = s3_settings(s3_endpoint, f"s3://{tiny_bucket}/landing",
                           f"s3://{tiny_bucket}/lakehouse")
    assert "no AWS credentials found while listing" in _only_failure(settings)


def test_public_landing_bucket_is_read_without_credentials(s3_endpoint, tiny_bucket, s3_client,
                                                           monkeypatch):
    """STEDI_LANDING_ANONYMOUS=1 sends unsigned requests: no credentials needed at all. The
    server serves unsigned object reads only from a public bucket, as S3 does."""
    s3_client.put_bucket_policy(Bucket=tiny_bucket, Policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                       "Resource": f"arn:aws:s3:::{tiny_bucket}/*"},
                      {"Effect": "Allow", "Principal": "*", "Action": "s3:ListBucket",
                       "Resource": f"arn:aws:s3:::{tiny_bucket}"}],
    }))
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    settings = s3_settings(s3_endpoint, f"s3://{tiny_bucket}/landing",
                           f"s3://{tiny_bucket}/lakehouse", STEDI_LANDING_ANONYMOUS="1")
    landing, _, _ = build_storage(settings)
    table = schemas.TABLES["customer_landing"]

    batch = PolarsEngine().read_landing(landing.files("customer"), table, landing.store)

    assert batch.rows.height == EXPECTED_COUNTS["customer_landing"]


def test_unreachable_glue_endpoint_is_named(s3_endpoint, tiny_bucket, monkeypatch):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    settings = s3_settings(s3_endpoint, f"s3://{tiny_bucket}/landing",
                           f"s3://{tiny_bucket}/lakehouse", AWS_ENDPOINT_URL_GLUE=closed,
                           STEDI_GLUE_DATABASE="stedi_errors")
    message = _only_failure(settings)
    assert f"cannot create or update Glue table stedi_errors.customer_landing (endpoint {closed})" \
        in message
