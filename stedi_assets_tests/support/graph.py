"""Run the real asset graph in-process, the way `dagster asset materialize` does."""

from dataclasses import dataclass
from pathlib import Path

import polars as pl
from dagster import AssetKey, ExecuteInProcessResult, materialize

from stedi_assets.definitions import (
    Settings,
    all_asset_checks,
    build_definitions,
    build_resources,
)
from stedi_assets.io.iceberg_io import scan_local_table
from stedi_assets.settings import SparkSettings
from stedi_assets_tests.support.spark_session import SPARK_TEST_CONF


@dataclass
class GraphRun:
    result: ExecuteInProcessResult
    lakehouse: Path

    def table(self, name: str) -> pl.DataFrame:
        return scan_local_table(self.lakehouse, name).collect()

    def materialized(self) -> set[str]:
        return {
            e.asset_key.path[-1] for e in self.result.get_asset_materialization_events()
        }

    def checks(self) -> dict[tuple[str, str], object]:
        """(asset, check) -> AssetCheckEvaluation."""
        return {
            (e.asset_key.path[-1], e.check_name): e
            for e in self.result.get_asset_check_evaluations()
        }

    def metadata(self, name: str) -> dict:
        for e in self.result.get_asset_materialization_events():
            if e.asset_key == AssetKey(name):
                return e.materialization.metadata
        raise KeyError(name)


def graph_settings(landing: Path | str, lakehouse: Path | str, *, engine: str = "polars",
                   min_join_coverage: float = 0.5, **other_settings) -> Settings:
    """The settings of a test run: the given roots, the engine (Spark with the test session's
    configuration), every other setting at its default."""
    return Settings(landing_root=str(landing), lakehouse_root=str(lakehouse),
                    min_join_coverage=min_join_coverage, engine=engine,
                    spark=SparkSettings(conf=dict(SPARK_TEST_CONF) if engine == "spark" else {}),
                    **other_settings)


def run_graph(landing: Path | str, lakehouse: Path | str, *, engine_name: str = "polars",
              selection=None, raise_on_error=True, min_join_coverage: float = 0.5,
              settings: Settings | None = None, tags: dict[str, str] | None = None,
              **resource_overrides) -> GraphRun:
    """The one way tests materialize the graph (or a selection) with its checks, in-process, as
    `definitions` wires it with `engine_name` (polars or spark); `resource_overrides` replace
    resources (e.g. engine=a leaky engine)."""
    settings = settings or graph_settings(landing, lakehouse, engine=engine_name,
                                          min_join_coverage=min_join_coverage)
    assets = build_definitions(settings).assets
    resources = {**build_resources(settings), **resource_overrides}
    result = materialize(
        [*assets, *all_asset_checks], resources=resources, selection=selection,
        raise_on_error=raise_on_error, tags=tags,
    )
    return GraphRun(result, Path(lakehouse))
