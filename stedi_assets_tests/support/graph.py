"""Run the real asset graph in-process, the way `dagster asset materialize` does."""

from dataclasses import dataclass
from pathlib import Path

import polars as pl
from dagster import AssetKey, ExecuteInProcessResult, materialize

from stedi_assets import schemas
from stedi_assets.definitions import Settings, all_asset_checks, all_assets, build_resources


@dataclass
class GraphRun:
    result: ExecuteInProcessResult
    lakehouse: Path

    def table(self, name: str) -> pl.DataFrame:
        folder = self.lakehouse / schemas.zone_of(name) / name
        return pl.read_parquet(folder / "*.parquet")

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


def run_graph(landing: Path, lakehouse: Path, *, selection=None, raise_on_error=True,
              min_join_coverage: float = 0.5, **resource_overrides) -> GraphRun:
    settings = Settings(landing_root=str(landing), lakehouse_root=str(lakehouse),
                        min_join_coverage=min_join_coverage)
    resources = {**build_resources(settings), **resource_overrides}
    result = materialize(
        [*all_assets, *all_asset_checks], resources=resources, selection=selection,
        raise_on_error=raise_on_error,
    )
    return GraphRun(result, lakehouse)
