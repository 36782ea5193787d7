"""What a Dagster user expects of the code location: the `dg` CLI loads it, every asset links to
its source and says where its table lives, Dagster's column-schema checks sit beside ours, and
importing the package builds nothing."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import AssetKey

from stedi_assets import schemas
from stedi_assets.definitions import Settings, build_definitions
from stedi_assets_tests.support.paths import REPO_ROOT

BIN = Path(sys.executable).parent


def test_importing_the_package_builds_nothing():
    code = ("import sys, stedi_assets; "
            "print(sorted(m for m in sys.modules if m.startswith(('stedi_assets', 'dagster'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "STEDI_ENV": "no-such-env"}, check=True).stdout
    assert out.strip() == "['stedi_assets']"


def test_a_local_code_location_loads_no_aws_or_spark_library(tmp_path):
    """`dagster asset materialize` and `dagster dev` import the definitions in every process:
    a local lakehouse on Polars needs neither boto3 (~0.16 s to import) nor Spark or Glue."""
    code = ("import sys, stedi_assets.definitions as d; assert d.defs; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'boto3', 'botocore', "
            "'s3transfer', 'pyspark', 'py4j', 'dagster_aws', 'dagster_pyspark'}))")
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEDI_")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**env, "STEDI_LAKEHOUSE_ROOT": str(tmp_path / "lakehouse")},
                         cwd=REPO_ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_every_asset_has_code_references_table_name_and_storage(tmp_path):
    defs = build_definitions(Settings.from_env({"STEDI_LAKEHOUSE_ROOT": str(tmp_path / "lk")}))
    graph = defs.get_repository_def().asset_graph
    for table in schemas.TABLES.values():
        metadata = graph.get(AssetKey(table.name)).metadata
        refs = metadata["dagster/code_references"].code_references
        assert refs and all(Path(r.file_path).is_file() and r.line_number > 0 for r in refs)
        assert metadata["dagster/table_name"] == table.name
        assert metadata["storage_uri"] == str(tmp_path / "lk" / table.zone / table.name)
    schema_change = {k for k in graph.asset_check_keys if k.name == "column_schema_change"}
    assert {k.asset_key.path[-1] for k in schema_change} == set(schemas.TABLES)


@pytest.mark.slow
def test_dg_check_and_list_defs_from_the_repository_root():
    for command in (["check", "defs"], ["list", "defs", "--json"]):
        proc = subprocess.run([str(BIN / "dg"), *command], cwd=REPO_ROOT, capture_output=True,
                              text=True, timeout=300, env={**os.environ, "NO_COLOR": "1"})
        assert proc.returncode == 0, proc.stderr[-2000:]
    assert '"machine_learning_curated"' in proc.stdout


def test_curated_tables_carry_the_configured_freshness_policy(tmp_path):
    for hours, expected in (("26", 26 * 3600), ("3", 3 * 3600), ("0", None)):
        defs = build_definitions(Settings.from_env({
            "STEDI_LAKEHOUSE_ROOT": str(tmp_path), "STEDI_FRESHNESS_HOURS": hours}))
        graph = defs.get_repository_def().asset_graph
        for table in schemas.TABLES.values():
            policy = graph.get(AssetKey(table.name)).freshness_policy
            if table.zone != "curated" or expected is None:
                assert policy is None, table.name
            else:
                assert policy.fail_window.to_timedelta().total_seconds() == expected


def test_configuration_doc_is_generated_from_the_settings():
    from stedi_assets.variables import VARIABLES, configuration_markdown

    doc = (REPO_ROOT / "docs" / "configuration.md").read_text()
    assert doc == configuration_markdown(), "run: python -m stedi_assets.variables > " \
                                            "docs/configuration.md"
    # every variable the code reads is declared (and so documented)
    source = "\n".join(p.read_text() for p in (REPO_ROOT / "stedi_assets").rglob("*.py"))
    read = set(re.findall(r'"((?:STEDI|AWS)_[A-Z_0-9]*[A-Z0-9])"', source))
    declared = {v.name for v in VARIABLES} | {"AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL_S3",
                                              "AWS_ENDPOINT_URL_GLUE"}
    assert read <= declared, sorted(read - declared)


def test_glue_arguments_round_trip_through_one_codec():
    from stedi_assets.aws import glue_arguments, glue_steps

    values = {"lakehouse_root": "s3://lake/stedi", "landing_root": "s3://land/",
              "landing_folders": {"customer": "customers"}, "consent_as_of_date": True,
              "shared_devices": "exclude", "min_join_coverage": 0.25,
              "max_reject_share": 0.125, "pseudonym_secret_id": "stedi/key",
              "aws_region": "eu-west-1", "s3_endpoint_url": "http://127.0.0.1:9"}
    encoded = glue_arguments.encode(values)
    argv = ["--JOB_NAME", "x", "--stedi-step", "customer_trusted",
            *(part for item in encoded.items() for part in item)]
    decoded = glue_arguments.decode(argv, glue_steps.STEP_OUTPUTS)
    assert decoded.stedi_step == "customer_trusted"
    assert json.loads(decoded.stedi_landing_folders) == values["landing_folders"]
    assert decoded.stedi_consent_as_of_date == "on"
    for name in ("lakehouse_root", "landing_root", "shared_devices", "min_join_coverage",
                 "max_reject_share", "pseudonym_secret_id", "aws_region", "s3_endpoint_url"):
        assert getattr(decoded, f"stedi_{name}") == values[name], name
    # an argument left out decodes to the default declared in settings.py
    bare = glue_arguments.decode(["--stedi-step", "customer_trusted", "--stedi-lakehouse-root",
                                  "/x"], glue_steps.STEP_OUTPUTS)
    assert bare.stedi_max_reject_share == Settings("l", "h").max_reject_share
