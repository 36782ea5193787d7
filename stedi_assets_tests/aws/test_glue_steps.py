"""The Glue job's step wiring and the glue environment, without Spark or AWS: the steps run over
the Polars engine give the local graph's tables and check results; the glue definitions have the
local graph's keys, groups, deps and checks; the job package imports without Dagster."""

import subprocess
import sys
import zipfile
from io import BytesIO
from pathlib import Path

import polars as pl
import pytest

from stedi_assets import schemas
from stedi_assets.aws import glue_steps
from stedi_assets.aws.glue_deploy import job_definition, package_zip
from stedi_assets.definitions import Settings, all_asset_checks, all_assets, build_definitions
from stedi_assets.deployments import build_glue_jobs
from stedi_assets.io.iceberg_catalog import CatalogConfig
from stedi_assets.io.iceberg_io import LocalIcebergIOManager, scan_local_table
from stedi_assets.io.iceberg_tables import IcebergTables, TableSnapshot
from stedi_assets.io.landing_files import count_lines, list_landing_files
from stedi_assets.io.landing_reader import read_landing_lines
from stedi_assets.settings import LOCAL_PSEUDONYM_SECRET
from stedi_assets.transforms import polars as polars_ops
from stedi_assets_tests.support.graph import run_graph

GLUE_ENV = {"STEDI_ENV": "glue", "STEDI_LAKEHOUSE_ROOT": "s3://lake/stedi/",
            "STEDI_LANDING_ROOT": "s3://landing/", "STEDI_PSEUDONYM_SECRET": "k"}


class PolarsTableIO:
    """The step wiring's TableIO over Polars and the lakehouse's Iceberg tables (one object
    per step, as the Glue job has: each table read at one snapshot for the step)."""

    def __init__(self, root: Path):
        self.tables = IcebergTables(CatalogConfig(root=str(root)))
        self._writer = LocalIcebergIOManager(root=str(root))  # one file, or one per day
        self._reads: dict[str, TableSnapshot] = {}
        self._commits: dict[str, dict] = {}

    def uri(self, table: str) -> str:
        return self.tables.location(table)

    def _scan(self, snapshot: TableSnapshot) -> pl.LazyFrame:
        return pl.scan_parquet(list(snapshot.files)) if snapshot.files else pl.from_arrow(
            snapshot.schema.empty_table()).lazy()

    def read(self, table: str) -> pl.LazyFrame:
        if table not in self._reads:
            self._reads[table] = self.tables.snapshot(table)
        return self._scan(self._reads[table])

    def write(self, table: str, frame) -> pl.LazyFrame:
        rows = frame.lazy().collect()
        files = self._writer._write_files(rows, table)
        published, self._commits[table] = self.tables.publish_and_expire(
            table, files, rows.to_arrow().schema,
            {t: s.snapshot_id for t, s in self._reads.items()}, "test-run", 3600)
        return self._scan(self.tables.snapshot(table, published.snapshot_id))

    def commit_metadata(self, table: str) -> dict:
        return self._commits.get(table, {})


def run_steps(landing: Path, lakehouse: Path, options: glue_steps.StepOptions):
    results = []
    for step in glue_steps.STEP_OUTPUTS:  # landing, trusted, curated: an upstream-first order
        io = PolarsTableIO(lakehouse)
        source = step.removeprefix("land_")
        landing_input = None
        if step.startswith("land_"):
            files = list_landing_files(str(landing), source)
            lines = pl.concat([read_landing_lines(f) for f in files])
            landing_input = glue_steps.LandingInput(lines, files,
                                                    sum(count_lines(f) for f in files))
        results.append(glue_steps.run_step(step, polars_ops, io, options, landing_input))
    return results


@pytest.mark.parametrize("consent_as_of_date", [False, True])
def test_steps_give_the_local_graphs_tables_and_checks(sample_landing, tmp_path,
                                                       consent_as_of_date):
    local = run_graph(sample_landing, tmp_path / "local", privacy=_privacy(consent_as_of_date))
    options = glue_steps.StepOptions(consent_as_of_date=consent_as_of_date,
                                     pseudonym_secret=LOCAL_PSEUDONYM_SECRET)
    results = run_steps(sample_landing, tmp_path / "glue", options)

    tables = {t.table: t for r in results for t in r.tables}
    assert set(tables) == set(schemas.TABLES)
    for name, report in tables.items():
        assert report.rows == local.metadata(name)["dagster/row_count"].value, name
        assert schemas.schema_problems(report.column_types, schemas.TABLES[name]) == []
        local_table = local.table(name)
        glue_table = scan_local_table(tmp_path / "glue", name).collect()
        assert glue_table.sort(glue_table.columns).equals(local_table.sort(local_table.columns))
    checks = {(c.table, c.name): c for r in results for c in r.checks}
    local_checks = local.checks()
    assert set(checks) == set(local_checks)
    for key, check in checks.items():
        expected = local_checks[key]
        assert check.passed == expected.passed, key
        assert check.severity == expected.severity.value, key
        figures = {k: v.value for k, v in expected.metadata.items()}
        assert {k: check.metadata[k] for k in figures} == figures, key


def _privacy(consent_as_of_date: bool):
    from stedi_assets.resources import PrivacySettings

    return PrivacySettings(pseudonym_secret=LOCAL_PSEUDONYM_SECRET,
                           consent_as_of_date=consent_as_of_date)


def test_steps_cover_the_local_graph_and_share_its_consent_keys():
    assert {a.node_def.name: {k.path[-1] for k in a.keys} for a in all_assets} == {
        step: set(tables) for step, tables in glue_steps.STEP_OUTPUTS.items()}
    with pytest.raises(ValueError, match="unknown step 'nope'"):
        glue_steps.run_step("nope", polars_ops, None, glue_steps.StepOptions())


def test_glue_definitions_have_the_local_keys_groups_deps_and_checks():
    local = build_definitions(Settings.from_env({"STEDI_LAKEHOUSE_ROOT": "/tmp/x"}))
    glue = build_definitions(Settings.from_env(GLUE_ENV))
    local_graph, glue_graph = local.resolve_asset_graph(), glue.resolve_asset_graph()
    assert glue_graph.get_all_asset_keys() == local_graph.get_all_asset_keys()
    for key in local_graph.get_all_asset_keys():
        mine, theirs = glue_graph.get(key), local_graph.get(key)
        assert (mine.group_name, mine.parent_keys) == (theirs.group_name, theirs.parent_keys)
        assert {"glue", "spark"} <= mine.kinds
    local_specs = {s.key: s.blocking for c in [*all_assets, *all_asset_checks]
                   for s in c.check_specs}
    glue_specs = {s.key: s.blocking for a in glue_graph.assets_defs for s in a.check_specs}
    # Dagster's own column-schema checks run in Dagster beside the jobs, in both environments
    schema_change = {k for k in glue_specs if k.name == "column_schema_change"}
    assert {k.asset_key for k in schema_change} == set(local_graph.get_all_asset_keys())
    assert {k: v for k, v in glue_specs.items() if k not in schema_change} == local_specs


def test_glue_settings_become_run_arguments_and_job_definitions():
    jobs = build_glue_jobs(Settings.from_env({
        **GLUE_ENV, "STEDI_GLUE_WORKERS": "5", "STEDI_GLUE_WORKER_TYPE": "G.2X",
        "STEDI_GLUE_ROLE_ARN": "arn:aws:iam::1:role/glue", "STEDI_CONSENT_AS_OF_DATE": "on",
        "STEDI_GLUE_PSEUDONYM_SECRET_ID": "stedi/pseudonym", "STEDI_LANDING_PREFIXES":
        "customer=customers"}))
    assert jobs.run_arguments["--stedi-lakehouse-root"] == "s3://lake/stedi"
    assert jobs.run_arguments["--stedi-consent-as-of-date"] == "on"
    assert jobs.run_arguments["--stedi-landing-folders"] == '{"customer": "customers"}'
    assert jobs.run_arguments["--stedi-pseudonym-secret-id"] == "stedi/pseudonym"
    assert jobs.pseudonym_secret is None and jobs.pipes_bucket == "lake"
    job = job_definition(jobs, "customer_trusted")
    assert (job["GlueVersion"], job["WorkerType"], job["NumberOfWorkers"]) == ("5.0", "G.2X", 5)
    assert job["Command"]["ScriptLocation"] == "s3://lake/stedi/_glue/stedi_glue_job.py"
    assert job["DefaultArguments"]["--stedi-step"] == "customer_trusted"
    assert job["DefaultArguments"]["--extra-py-files"] == "s3://lake/stedi/_glue/stedi_assets.zip"


@pytest.mark.parametrize(("env", "message"), [
    ({"STEDI_GLUE_WORKERS": "1"}, "STEDI_GLUE_WORKERS must be a whole number >= 2"),
    ({"STEDI_GLUE_WORKER": "G.1X"}, "unknown settings"),
    ({"STEDI_LAKEHOUSE_ROOT": "/tmp/lake"}, "STEDI_ENV=glue needs STEDI_LAKEHOUSE_ROOT=s3://"),
    ({"STEDI_PSEUDONYM_SECRET": ""}, "STEDI_PSEUDONYM_SECRET must be set when STEDI_ENV=glue"),
])
def test_inconsistent_glue_settings_are_refused(env, message):
    with pytest.raises(ValueError, match=message):
        build_definitions(Settings.from_env({**GLUE_ENV, **env}))


def test_job_package_is_reproducible_and_imports_without_dagster(tmp_path):
    assert package_zip() == package_zip()
    archive = tmp_path / "stedi_assets.zip"
    archive.write_bytes(package_zip())
    names = zipfile.ZipFile(BytesIO(archive.read_bytes())).namelist()
    assert "stedi_assets/aws/glue_job.py" in names and "stedi_assets/schemas.py" in names
    blocker = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'dagster' or name.startswith('dagster.'):\n"
        "            raise ImportError('dagster is not on Glue')\n"
        "sys.meta_path.insert(0, Block())\n"
        f"sys.path.insert(0, {str(archive)!r})\n"
        "import stedi_assets.aws.glue_job as job\n"
        "assert job.__file__.startswith(sys.path[0]), job.__file__\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", blocker], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
