"""Helpers to materialize the whole graph with one engine and read its tables back."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from dagster import AssetSelection, ExecuteInProcessResult, materialize

from stedi_assets import definitions, schemas
from stedi_assets.settings import SparkSettings
from stedi_assets_tests.support.paths import REAL_2022, REAL_2023  # noqa: F401 - re-exported
from stedi_assets_tests.support.spark_session import SPARK_TEST_CONF

PUBLISHED_2023 = {
    "customer_landing": 956, "accelerometer_landing": 81273, "step_trainer_landing": 28680,
    "customer_trusted": 482, "accelerometer_trusted": 40981, "step_trainer_trusted": 14460,
    "customer_curated": 482, "machine_learning_curated": 43681,
}


def settings(engine: str, landing_root: Path | str, lakehouse_root: Path | str
             ) -> definitions.Settings:
    return definitions.Settings(
        landing_root=str(landing_root), lakehouse_root=str(lakehouse_root),
        min_join_coverage=0.5, engine=engine,
        spark=SparkSettings(conf=dict(SPARK_TEST_CONF) if engine == "spark" else {}),
    )


def run_graph(engine: str, landing_root: Path | str, lakehouse_root: Path | str,
              selection: str | AssetSelection | None = None,
              raise_on_error: bool = True) -> ExecuteInProcessResult:
    """Materialize the graph (or a selection) with its checks, as `definitions` wires it."""
    defs = definitions.build_definitions(settings(engine, landing_root, lakehouse_root))
    assets = [*defs.assets, *definitions.all_asset_checks]
    return materialize(assets, resources=definitions.build_resources(
        settings(engine, landing_root, lakehouse_root)), selection=selection,
        raise_on_error=raise_on_error)


def read_table(lakehouse_root: Path | str, table_name: str) -> pl.DataFrame:
    """A table as written (by either engine), sorted on every column for row-by-row compare."""
    zone = schemas.zone_of(table_name)
    frame = pl.read_parquet(f"{lakehouse_root}/{zone}/{table_name}/*.parquet")
    return frame.sort(frame.columns, nulls_last=True)


def check_metadata(result: ExecuteInProcessResult) -> dict[str, dict]:
    """{asset/check: (passed, metadata values)} of every check evaluation in a run."""
    out = {}
    for evaluation in result.get_asset_check_evaluations():
        key = f"{evaluation.asset_key.to_user_string()}/{evaluation.check_name}"
        out[key] = {"passed": evaluation.passed,
                    **{k: v.value for k, v in evaluation.metadata.items()}}
    return out
