"""Both engines: the same function list, and the same tables from the same graph.

The graph is materialized with each engine exactly as `definitions` wires it; tables are
compared row for row after sorting (not only counts), and so are the asset-check figures.
"""

from __future__ import annotations

import inspect
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from stedi_assets import definitions, schemas
from stedi_assets.settings import LOCAL_PSEUDONYM_SECRET
from stedi_assets.transforms import polars as polars_ops
from stedi_assets.transforms import spark as spark_ops
from stedi_assets.transforms.pseudonyms import customer_key
from stedi_assets_tests.support.graph_runs import (
    PUBLISHED_2023,
    check_metadata,
    read_table,
    run_graph,
)

pytest_plugins = ["stedi_assets_tests.support.spark_session"]

#: Helpers that are about the engine's own frame type, named after it.
ENGINE_SPECIFIC = {"polars": {"polars_schema", "typed_columns"}, "spark": {"spark_schema"}}
#: Check figures that list example keys: compared as sets (which 5 come first may differ).
SAMPLES = {"violating_keys_sample"}


def public_functions(package) -> dict[str, inspect.Signature]:
    """The functions an engine's transform package exposes (defined in its own modules)."""
    return {
        name: inspect.signature(fn)
        for name, fn in vars(package).items()
        if inspect.isfunction(fn) and fn.__module__.startswith(package.__name__ + ".")
        and not name.startswith("_")
    }


def test_every_engine_function_has_its_counterpart():
    polars_fns = public_functions(polars_ops)
    spark_fns = public_functions(spark_ops)
    shared_polars = set(polars_fns) - ENGINE_SPECIFIC["polars"]
    shared_spark = set(spark_fns) - ENGINE_SPECIFIC["spark"]
    assert shared_polars == shared_spark, (
        f"only in transforms/polars: {sorted(shared_polars - shared_spark)}; "
        f"only in transforms/spark: {sorted(shared_spark - shared_polars)}"
    )
    for name in shared_polars:
        assert list(polars_fns[name].parameters) == list(spark_fns[name].parameters), name
    for specific in ENGINE_SPECIFIC.values():
        assert specific <= set(polars_fns) | set(spark_fns)
    # Every derived table is a function in both engines.
    derived = {t.name for t in schemas.TABLES.values() if t.zone != "landing"}
    assert derived <= shared_polars


def assert_same_graph_output(lake_a: Path, lake_b: Path) -> None:
    for table_name in schemas.TABLES:
        a, b = read_table(lake_a, table_name), read_table(lake_b, table_name)
        assert a.schema == b.schema, table_name
        assert a.equals(b), f"{table_name}: {a.height} vs {b.height} rows, or values differ"


def assert_same_checks(result_a, result_b) -> None:
    checks_a, checks_b = check_metadata(result_a), check_metadata(result_b)
    assert checks_a.keys() == checks_b.keys()
    for key, figures in checks_a.items():
        other = checks_b[key]
        for name, value in figures.items():
            if name in SAMPLES:
                assert set(value) == set(other[name]), key
            else:
                assert value == other[name], f"{key}: {name}"


def test_real_2023_data_same_tables_on_both_engines(spark, real_2023, tmp_path):
    results = {}
    for engine in ("polars", "spark"):
        results[engine] = run_graph(engine, real_2023, tmp_path / engine)
        assert results[engine].success
        for table_name, rows in PUBLISHED_2023.items():
            assert read_table(tmp_path / engine, table_name).height == rows, (engine, table_name)
        row_counts = {}
        for event in results[engine].get_asset_materialization_events():
            materialization = event.event_specific_data.materialization
            row_counts[materialization.asset_key.path[-1]] = materialization.metadata[
                "dagster/row_count"].value
        rejects = {t.name for t in schemas.TABLES.values() if t.name.endswith("_rejects")}
        assert {k: v for k, v in row_counts.items() if k not in rejects} == PUBLISHED_2023
        assert all(row_counts[r] == 0 for r in rejects), engine
    assert_same_graph_output(tmp_path / "polars", tmp_path / "spark")
    assert_same_checks(results["polars"], results["spark"])
    foreign = check_metadata(results["spark"])["machine_learning_curated/join_coverage"]
    assert foreign["foreign_pairs"] == 2700


# --- generated inputs ------------------------------------------------------------------------

EMAILS = [f"user{i}@stedi.test" for i in range(6)] + [None]
SERIALS = [f"serial-{i}" for i in range(4)] + [None]
TIMES = [1655564376361 + i for i in range(5)]


def epoch():
    # ints, whole floats (the landing files carry 1655564376361.0), null, or absent
    return st.one_of(st.sampled_from(TIMES), st.sampled_from([float(t) for t in TIMES]),
                     st.none(), st.just("absent"))


def record(**fields):
    return st.fixed_dictionaries(fields).map(
        lambda d: {k: v for k, v in d.items() if v != "absent"})


customers = st.lists(record(
    customerName=st.sampled_from(["Ann", "Bob", None]),
    email=st.sampled_from([e for e in EMAILS if e]),  # required key
    phone=st.one_of(st.sampled_from(["8015551212", "+1 801"]), st.integers(1, 10**10)),
    birthDay=st.sampled_from(["1965-01-01", None]),
    serialNumber=st.sampled_from(SERIALS),
    registrationDate=epoch(), lastUpdateDate=epoch(), shareWithResearchAsOfDate=epoch(),
    shareWithPublicAsOfDate=epoch(), shareWithFriendsAsOfDate=epoch(),
), max_size=12)
readings = st.lists(record(
    user=st.sampled_from([e for e in EMAILS if e] + ["stranger@stedi.test"]),
    timestamp=st.sampled_from(TIMES),
    x=st.one_of(st.floats(-2, 2), st.none()), y=st.integers(-3, 3), z=st.just(0.5),
), max_size=25)
steps = st.lists(record(
    sensorReadingTime=st.sampled_from(TIMES),
    serialNumber=st.sampled_from([s for s in SERIALS if s]),
    distanceFromObject=st.one_of(st.integers(0, 300), st.none()),
), max_size=25)


def write_landing(root: Path, sources: dict[str, list[dict]], aliases: bool) -> None:
    for source, records in sources.items():
        folder = root / source
        folder.mkdir(parents=True)
        half = len(records) // 2
        for n, part in enumerate((records[:half], records[half:])):  # two files; may be empty
            lines = []
            for rec in part:
                if aliases and "timestamp" in rec:
                    rec = {("timeStamp" if k == "timestamp" else k): v for k, v in rec.items()}
                lines.append(json.dumps(rec) + ("," if aliases else ""))
            (folder / f"{source}-{n}.json").write_text("\n".join(lines) + ("\n" if n else ""))


@settings(max_examples=3, deadline=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(customer_records=customers, accelerometer_records=readings, step_records=steps,
       aliases=st.booleans())
def test_generated_inputs_same_tables_on_both_engines(
        spark, customer_records, accelerometer_records, step_records, aliases):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_landing(root / "landing", {"customer": customer_records,
                                         "accelerometer": accelerometer_records,
                                         "step_trainer": step_records}, aliases)
        polars_run = run_graph("polars", root / "landing", root / "polars")
        spark_run = run_graph("spark", root / "landing", root / "spark")
        assert polars_run.success and spark_run.success
        assert read_table(root / "spark", "customer_landing").height == len(customer_records)
        assert_same_graph_output(root / "polars", root / "spark")
        assert_same_checks(polars_run, spark_run)


# --- a table written by one engine is read by the other -------------------------------------

SMALL_LANDING = {
    "customer": [{"email": "a@x", "serialNumber": "s1", "shareWithResearchAsOfDate": 1.0},
                 {"email": "a@x", "serialNumber": "s1", "shareWithResearchAsOfDate": 1.0},
                 {"email": "b@x", "serialNumber": "s2", "phone": 8015551212}],
    "accelerometer": [{"user": "a@x", "timestamp": 5, "x": 1.5},
                      {"user": "b@x", "timestamp": 5, "y": 2}],
    "step_trainer": [{"sensorReadingTime": 5, "serialNumber": "s1", "distanceFromObject": 7},
                     {"sensorReadingTime": 6, "serialNumber": "s2"}],
}


@pytest.mark.parametrize("first, then", [("polars", "spark"), ("spark", "polars")])
def test_tables_written_by_one_engine_are_read_by_the_other(spark, tmp_path, first, then):
    write_landing(tmp_path / "landing", SMALL_LANDING, aliases=False)
    reference = run_graph("polars", tmp_path / "landing", tmp_path / "reference")
    mixed = tmp_path / "mixed"
    landing_only = run_graph(first, tmp_path / "landing", mixed, selection="group:landing")
    rest = run_graph(then, tmp_path / "landing", mixed,
                     selection="group:trusted or group:curated")
    assert reference.success and landing_only.success and rest.success
    materialized = {e.asset_key.path[-1] for e in rest.get_asset_materialization_events()}
    assert materialized == {t.name for t in schemas.TABLES.values() if t.zone != "landing"}
    assert_same_graph_output(tmp_path / "reference", mixed)
    # b@x never consented: its reading at the same instant must not pair with a@x's device.
    a_key = customer_key("a@x", LOCAL_PSEUDONYM_SECRET)
    assert read_table(mixed, "machine_learning_curated").to_dicts() == [
        {"sensorReadingTime": 5, "serialNumber": "s1", "distanceFromObject": 7,
         "x": 1.5, "y": None, "z": None, "customerKey": a_key},
    ]
    assert read_table(mixed, "customer_curated")["customerKey"].to_list() == [a_key]


# --- the engine choice ----------------------------------------------------------------------

def test_engine_is_chosen_by_environment():
    assert definitions.Settings.from_env({}).engine == "polars"
    spark_settings = definitions.Settings.from_env({
        "STEDI_ENGINE": "spark", "STEDI_SPARK_MASTER": "spark://cluster:7077",
        "STEDI_SPARK_CONF": '{"spark.executor.memory": "4g"}'})
    assert spark_settings.spark.session_config()["spark.master"] == "spark://cluster:7077"
    assert spark_settings.spark.session_config()["spark.executor.memory"] == "4g"
    connect = definitions.Settings.from_env(
        {"STEDI_ENGINE": "spark", "STEDI_SPARK_REMOTE": "sc://spark:15002"})
    assert connect.spark.session_config()["spark.remote"] == "sc://spark:15002"
    assert "spark.master" not in connect.spark.session_config()
    with pytest.raises(ValueError, match="STEDI_ENGINE"):
        definitions.Settings.from_env({"STEDI_ENGINE": "duckdb"})
    with pytest.raises(ValueError, match="STEDI_SPARK_CONF"):
        definitions.Settings.from_env({"STEDI_ENGINE": "spark", "STEDI_SPARK_CONF": "[1]"})

    defs = definitions.build_definitions(spark_settings)
    resources = definitions.build_resources(spark_settings)
    assert resources["engine"].kind == "spark"
    assert type(resources["io_manager"]).__name__ == "SparkIcebergIOManager"
    spec = next(iter(defs.resolve_all_asset_specs()))
    assert spec.kinds == {"spark", "iceberg"}
    polars_spec = next(iter(definitions.build_definitions(
        definitions.Settings.from_env({})).resolve_all_asset_specs()))
    assert polars_spec.kinds == {"polars", "iceberg"}


def test_spark_commits_only_its_data_files(spark, tmp_path):
    """Spark's write leaves _SUCCESS/.crc files beside its parts: only the Parquet data files
    enter the snapshot, and Polars reads exactly what Spark wrote."""
    from dagster import build_output_context
    from dagster_pyspark import PySparkResource

    from stedi_assets.io.spark_iceberg import SparkIcebergIOManager

    io = SparkIcebergIOManager(root=str(tmp_path), pyspark=PySparkResource(spark_config={}))
    frame = spark.createDataFrame([(2, "b"), (1, "a")], "a long, s string").repartition(2)
    io.handle_output(build_output_context(asset_key="customer_curated", step_key="s"), frame)
    snapshot = io.snapshot("customer_curated")
    assert snapshot.files and all(f.endswith(".parquet") for f in snapshot.files)
    folder = (tmp_path / "curated" / "customer_curated" / "data")
    assert not [p for p in folder.rglob("*") if p.is_file() and p.suffix != ".parquet"]
    assert read_table(tmp_path, "customer_curated")["a"].to_list() == [1, 2]
    assert sorted(io.scan_table("customer_curated").collect()) == sorted(frame.collect())
