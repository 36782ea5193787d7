"""The console commands need no pseudonym secret, and importing the package does nothing:
`stedi-sql` and `stedi-ddl` as subprocesses with STEDI_ENV=s3 against the S3/Glue test server."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from stedi_assets_tests.support.paths import REPO_ROOT
from stedi_assets_tests.support.s3_helpers import (
    failure_messages,
    glue_database,
    materialize_lakehouse,
    new_bucket,
    s3_settings,
    upload_landing,
)
from stedi_assets_tests.support.tiny_landing import EXPECTED_COUNTS, write_tiny_landing

pytest_plugins = ["stedi_assets_tests.support.s3_server"]

BIN = os.path.dirname(sys.executable)


@pytest.fixture(scope="module")
def s3_lakehouse(s3_endpoint, s3_client, tmp_path_factory):
    """The tiny landing on S3 and its lakehouse materialized there (with a secret)."""
    bucket = new_bucket(s3_client)
    upload_landing(s3_client, write_tiny_landing(tmp_path_factory.mktemp("tiny")), bucket,
                   "landing")
    roots = {"STEDI_LANDING_ROOT": f"s3://{bucket}/landing/",
             "STEDI_LAKEHOUSE_ROOT": f"s3://{bucket}/lake/"}
    with pytest.MonkeyPatch.context() as monkeypatch:  # the graph does need the secret
        monkeypatch.setenv("STEDI_PSEUDONYM_SECRET", "s3-test-secret")
        result = materialize_lakehouse(s3_settings(s3_endpoint, roots["STEDI_LANDING_ROOT"],
                                                   roots["STEDI_LAKEHOUSE_ROOT"]))
    assert result.success, failure_messages(result)
    return roots


def _run(command: list[str], s3_endpoint: str, roots: dict[str, str]):
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEDI_")}
    env.update(roots, STEDI_ENV="s3", AWS_ENDPOINT_URL=s3_endpoint,
               STEDI_GLUE_DATABASE=glue_database(roots["STEDI_LAKEHOUSE_ROOT"]))
    assert "STEDI_PSEUDONYM_SECRET" not in env
    return subprocess.run(command, env=env, cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=300)


def test_stedi_sql_on_s3_needs_no_secret(s3_endpoint, s3_lakehouse):
    result = _run([f"{BIN}/stedi-sql", "SELECT 1 AS one", "--format", "csv"], s3_endpoint,
                  s3_lakehouse)
    assert (result.returncode, result.stdout, result.stderr) == (0, "one\n1\n", "")
    result = _run([f"{BIN}/stedi-sql", "SELECT count(*) AS n FROM customer_trusted",
                   "--format", "csv"], s3_endpoint, s3_lakehouse)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"n\n{EXPECTED_COUNTS['customer_trusted']}\n"


def test_stedi_ddl_on_s3_needs_no_secret(s3_endpoint, s3_lakehouse):
    result = _run([f"{BIN}/stedi-ddl"], s3_endpoint, s3_lakehouse)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout.count("CREATE EXTERNAL TABLE") == 3  # the raw landing JSON tables
    assert result.stdout.count(": Apache Iceberg table (format v2) at") == 8
    assert f"Iceberg table (format v2) at {s3_lakehouse['STEDI_LAKEHOUSE_ROOT']}" \
        "curated/customer_curated" in result.stdout


IMPORT_PROBE = """
import collections.abc, json, os, sys

class Recording(collections.abc.MutableMapping):
    def __init__(self, environ):
        self.environ, self.reads = environ, []
    def __getitem__(self, key):
        self.reads.append(key)
        return self.environ[key]
    def __setitem__(self, key, value):
        self.environ[key] = value
    def __delitem__(self, key):
        del self.environ[key]
    def __iter__(self):
        self.reads.append("*")
        return iter(self.environ)
    def __len__(self):
        return len(self.environ)

before = set(sys.modules)
os.environ = Recording(os.environ)
import stedi_assets
print(json.dumps({"reads": os.environ.reads, "modules": sorted(set(sys.modules) - before)}))
"""


def test_importing_the_package_builds_nothing_and_reads_no_environment():
    result = subprocess.run([sys.executable, "-c", IMPORT_PROBE], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "STEDI_ENV": "s3"})
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout)
    assert probe["reads"] == []
    assert probe["modules"] == ["stedi_assets"]
