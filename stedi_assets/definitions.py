"""The code location: assets + checks + sensors + resources -> `defs` (what Dagster loads).

Settings come from the environment (stedi_assets/settings.py), resources by deployment from
stedi_assets/deployments.py, what each asset spec is given from them (engine kind, storage,
freshness) from stedi_assets/assets/specs.py. Importing `stedi_assets` itself builds nothing.
"""

from __future__ import annotations

import warnings

from dagster import (
    BetaWarning,
    Definitions,
    build_column_schema_change_checks,
    in_process_executor,
    map_asset_specs,
    with_source_code_references,
)

from stedi_assets.alerts import stedi_alerts
from stedi_assets.assets import curated, landing, trusted
from stedi_assets.assets.specs import engine_kinds, freshness, where_stored
from stedi_assets.automation import automation_sensors, full_graph_job, stedi_daily
from stedi_assets.deployments import build_resources
from stedi_assets.settings import Settings

all_assets = [*landing.landing_assets, *trusted.trusted_assets, *curated.curated_assets]
all_asset_checks = [*landing.landing_checks, *trusted.trusted_checks, *curated.curated_checks]


def build_definitions(settings: Settings, **resource_overrides: object) -> Definitions:
    resources = {**build_resources(settings), **resource_overrides}
    if settings.env == "glue":
        from stedi_assets.assets.glue import glue_assets

        assets = glue_assets(all_assets, all_asset_checks)
    else:
        assets = map_asset_specs(engine_kinds(settings), all_assets)
    with warnings.catch_warnings():  # both are beta in Dagster 1.13; the CLI need not say so
        warnings.simplefilter("ignore", BetaWarning)
        # the UI links each asset to its file and line
        assets = with_source_code_references(map_asset_specs(
            freshness(settings),
            map_asset_specs(where_stored(settings, resources["io_manager"]), assets)))
        # Dagster's own: WARN when a table's columns change between materializations
        schema_change_checks = build_column_schema_change_checks(assets=all_assets)
    return Definitions(
        assets=assets,
        asset_checks=[
            # on Glue the project's checks run in the jobs and come back through Pipes
            *([] if settings.env == "glue" else all_asset_checks),
            *schema_change_checks,
        ],
        resources=resources,
        jobs=[full_graph_job],
        schedules=[stedi_daily],
        sensors=[stedi_alerts, *automation_sensors(settings.automation,
                                                  settings.sensor_interval_seconds)],
        # One process for the whole run: a process per step costs seconds each on a small box.
        executor=in_process_executor,
    )


defs = build_definitions(Settings.from_env())
