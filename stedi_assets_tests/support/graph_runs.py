"""Helpers to materialize the whole graph with one engine and read its tables back."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from dagster import AssetSelection, ExecuteInProcessResult

from stedi_assets import definitions
from stedi_assets.io.iceberg_io import scan_local_table
from stedi_assets_tests.support import graph
from stedi_assets_tests.support.graph import graph_settings
from stedi_assets_tests.support.paths import REAL_2022, REAL_2023  # noqa: F401 - re-exported

PUBLISHED_2023 = {
    "customer_landing": 956, "accelerometer_landing": 81273, "step_trainer_landing": 28680,
    "customer_trusted": 482, "accelerometer_trusted": 40981, "step_trainer_trusted": 14460,
    "customer_curated": 482, "machine_learning_curated": 43681,
}


def settings(engine: str, landing_root: Path | str, lakehouse_root: Path | str
             ) -> definitions.Settings:
    return graph_settings(landing_root, lakehouse_root, engine=engine)


def run_graph(engine: str, landing_root: Path | str, lakehouse_root: Path | str,
              selection: str | AssetSelection | None = None,
              raise_on_error: bool = True) -> ExecuteInProcessResult:
    """support.graph.run_graph with the engine first, giving Dagster's result."""
    return graph.run_graph(landing_root, lakehouse_root, engine_name=engine, selection=selection,
                           raise_on_error=raise_on_error).result


def read_table(lakehouse_root: Path | str, table_name: str) -> pl.DataFrame:
    """A table as written (by either engine), sorted on every column for row-by-row compare."""
    frame = scan_local_table(lakehouse_root, table_name).collect()
    return frame.sort(frame.columns, nulls_last=True)


def check_metadata(result: ExecuteInProcessResult) -> dict[str, dict]:
    """{asset/check: (passed, metadata values)} of every check evaluation in a run."""
    out = {}
    for evaluation in result.get_asset_check_evaluations():
        key = f"{evaluation.asset_key.to_user_string()}/{evaluation.check_name}"
        out[key] = {"passed": evaluation.passed,
                    **{k: v.value for k, v in evaluation.metadata.items()}}
    return out
