"""The whole asset graph materialized in-process on real Parquet files."""

import os
import subprocess
import sys

import polars as pl
import pytest
from dagster import AssetCheckSeverity

from stedi_assets import schemas
from stedi_assets.definitions import defs
from stedi_assets.io.iceberg_io import LocalIcebergIOManager
from stedi_assets.settings import LOCAL_PSEUDONYM_SECRET
from stedi_assets.transforms.pseudonyms import customer_key
from stedi_assets_tests.support.graph import run_graph
from stedi_assets_tests.support.leaky import LossyEngine, leaky_engine
from stedi_assets_tests.support.paths import REPO_ROOT

ALL_TABLES = set(schemas.TABLES)
REAL_COUNTS = {
    "customer_landing": 956, "accelerometer_landing": 81_273, "step_trainer_landing": 28_680,
    "customer_trusted": 482, "accelerometer_trusted": 40_981, "step_trainer_trusted": 14_460,
    "customer_curated": 482, "machine_learning_curated": 43_681,
}


@pytest.fixture(scope="module")
def real_run(real_2023, tmp_path_factory):
    return run_graph(real_2023, tmp_path_factory.mktemp("real") / "lakehouse")


@pytest.fixture(scope="module")
def sample_run(sample_landing, tmp_path_factory):
    return run_graph(sample_landing, tmp_path_factory.mktemp("sample") / "lakehouse")


def test_real_2023_data_gives_the_published_counts(real_run):
    assert real_run.materialized() == ALL_TABLES
    for name, count in REAL_COUNTS.items():
        assert real_run.table(name).height == count, name
        assert real_run.metadata(name)["dagster/row_count"].value == count


def test_real_2023_checks_pass_with_the_join_figures(real_run):
    checks = real_run.checks()
    assert all(e.passed for e in checks.values()), [k for k, e in checks.items() if not e.passed]
    figures = {k: v.value for k, v in checks[("machine_learning_curated", "join_coverage")]
               .metadata.items()}
    assert figures["joined_rows"] == figures["rows_in_table"] == 43_681
    assert figures["foreign_pairs"] == 2_700
    assert figures["step_readings"] == 14_460 and figures["coverage"] == 1.0


def test_sample_graph_materializes_every_table_with_every_check(sample_run, sample_landing):
    assert sample_run.result.success
    assert sample_run.materialized() == ALL_TABLES
    checks = sample_run.checks()
    expected = ({(t, "consent") for t in ALL_TABLES if schemas.zone_of(t) != "landing"}
                | {(t.name, check) for t in schemas.LANDING_TABLES
                   for check in ("schema", "conservation", "quarantine_rate")}
                | {("step_trainer_trusted", "join_coverage"),
                   ("step_trainer_trusted", "shared_devices"),
                   ("machine_learning_curated", "join_coverage")})
    assert set(checks) == expected
    assert all(e.passed for e in checks.values())


def test_sample_tables_match_an_independent_computation(sample_run):
    """Recompute the chain in plain Python over the landing rows (not the engine)."""
    c = sample_run.table("customer_landing").to_dicts()
    a = sample_run.table("accelerometer_landing")
    s = sample_run.table("step_trainer_landing")
    latest: dict[str, dict] = {}
    for row in c:  # latest lastUpdateDate wins (the sample's repeated records are identical)
        held = latest.get(row["email"])
        if held is None or (row["lastUpdateDate"] or -1) >= (held["lastUpdateDate"] or -1):
            latest[row["email"]] = row
    consenting = {e for e, r in latest.items() if r["shareWithResearchAsOfDate"] is not None}
    acc = a.filter(pl.col("user").is_in(consenting)).unique()
    curated_emails = consenting & set(acc["user"])
    serials = {latest[e]["serialNumber"] for e in curated_emails}
    st = s.filter(pl.col("serialNumber").is_in(serials)).unique()
    ml = st.join(acc.rename({"timestamp": "sensorReadingTime"}), on="sensorReadingTime")
    key = {e: customer_key(e, LOCAL_PSEUDONYM_SECRET) for e in set(acc["user"])}
    ml = ml.with_columns(pl.col("user").replace_strict(key).alias("customerKey"))
    cur = pl.DataFrame([latest[e] for e in curated_emails]).with_columns(
        pl.col("email").replace_strict(key).alias("customerKey"))
    for name, expected in {"accelerometer_trusted": acc, "customer_curated": cur,
                           "step_trainer_trusted": st,
                           "machine_learning_curated": ml}.items():
        actual = sample_run.table(name)
        expected = expected.select(actual.columns)
        assert actual.sort(actual.columns).equals(expected.sort(expected.columns)), name
    assert sample_run.table("customer_trusted").height == len(consenting)
    assert 0 < sample_run.table("machine_learning_curated").height


def test_materialization_metadata_for_the_ui(sample_run):
    for name in ALL_TABLES:
        meta = sample_run.metadata(name)
        schema = meta["dagster/column_schema"].value
        assert [c.name for c in schema.columns] == schemas.TABLES[name].column_names
        assert all(c.description for c in schema.columns)
        assert meta["dagster/row_count"].value == sample_run.table(name).height
    landing_meta = sample_run.metadata("step_trainer_landing")
    assert landing_meta["files"].value == 3
    assert landing_meta["lines_read"].value == sample_run.table("step_trainer_landing").height


def test_definitions_describe_every_asset():
    graph = defs.resolve_asset_graph()
    specs = {k.path[-1]: graph.get(k) for k in graph.get_all_asset_keys()}
    assert set(specs) == ALL_TABLES
    for name, node in specs.items():
        assert node.group_name == schemas.zone_of(name)
        assert node.description
        assert node.owners
        assert {"polars", "iceberg"} <= set(node.kinds)
        assert "dagster/column_schema" in node.metadata


def test_failing_consent_check_blocks_downstream(sample_landing, tmp_path):
    run = run_graph(sample_landing, tmp_path / "lake", raise_on_error=False,
                    engine=leaky_engine())
    consent = run.checks()[("customer_trusted", "consent")]
    assert not consent.passed and consent.severity == AssetCheckSeverity.ERROR
    assert consent.metadata["violations"].value > 0
    assert not run.result.success
    # Landing tables and the leaky table itself were written; nothing downstream of it was.
    assert "customer_trusted" in run.materialized()
    assert not run.materialized() & {"accelerometer_trusted", "customer_curated",
                                      "step_trainer_trusted", "machine_learning_curated"}
    assert not (tmp_path / "lake" / "curated").exists()


def test_a_lost_landing_line_fails_conservation_in_the_landing_step_and_blocks(
        sample_landing, tmp_path):
    run = run_graph(sample_landing, tmp_path / "lake", raise_on_error=False,
                    engine=LossyEngine())
    conservation = run.checks()[("accelerometer_landing", "conservation")]
    assert not conservation.passed and conservation.severity == AssetCheckSeverity.ERROR
    assert conservation.metadata["unaccounted"].value == 1
    assert conservation.description == "1 line(s) neither landed nor quarantined"
    # the other sources landed and passed; the lossy table was stored, nothing read it
    assert run.checks()[("customer_landing", "conservation")].passed
    assert {"accelerometer_landing", "customer_landing", "customer_trusted"} <= run.materialized()
    assert not run.materialized() & {"accelerometer_trusted", "customer_curated",
                                      "step_trainer_trusted", "machine_learning_curated"}
    failed = [e for e in run.result.all_events if e.is_step_failure]
    assert [e.step_key for e in failed] == ["land_accelerometer"]
    assert "blocking asset check" in failed[0].step_failure_data.error.message


def test_low_join_coverage_warns_without_blocking(sample_landing, tmp_path):
    run = run_graph(sample_landing, tmp_path / "lake", raise_on_error=False,
                    min_join_coverage=0.999)
    check = run.checks()[("machine_learning_curated", "join_coverage")]
    assert not check.passed and check.severity == AssetCheckSeverity.WARN
    assert check.metadata["warn_below"].value == 0.999
    assert check.metadata["coverage"].value < 0.999
    assert run.materialized() == ALL_TABLES  # a WARN does not stop anything


@pytest.mark.slow
def test_readme_command_materializes_the_graph(sample_landing, tmp_path):
    """`dagster asset materialize -m stedi_assets.definitions --select '*'`, as the README runs
    it."""
    env = {**os.environ, "STEDI_LANDING_ROOT": str(sample_landing),
           "STEDI_LAKEHOUSE_ROOT": str(tmp_path / "lake")}
    env.pop("DAGSTER_HOME", None)
    dagster = os.path.join(os.path.dirname(sys.executable), "dagster")
    proc = subprocess.run([dagster, "asset", "materialize", "-m", "stedi_assets.definitions",
                           "--select", "*"], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "RUN_SUCCESS" in proc.stderr + proc.stdout
    for name in ALL_TABLES:  # each an Iceberg table with a snapshot of Parquet data files
        snapshot = LocalIcebergIOManager(root=str(tmp_path / "lake")).snapshot(name)
        assert all(f.endswith(".parquet") for f in snapshot.files), name
        assert snapshot.files or (snapshot.rows == 0 and name.endswith("_rejects")), name
