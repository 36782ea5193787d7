"""The code location: assets + checks + sensors + resources -> `defs` (what Dagster loads).

Settings come from the environment (stedi_assets/settings.py); resources by deployment from
stedi_assets/deployments.py. Importing `stedi_assets` itself builds nothing.
"""

from __future__ import annotations

from dagster import Definitions, in_process_executor, map_asset_specs

from stedi_assets.alerts import stedi_alerts
from stedi_assets.assets import curated, landing, trusted
from stedi_assets.assets.common import KINDS
from stedi_assets.automation import automation_sensors, full_graph_job, stedi_daily
from stedi_assets.deployments import (  # noqa: F401 - re-exported for tests and scripts
    build_glue_jobs,
    build_resources,
    build_storage,
    engine_resources,
)
from stedi_assets.settings import (  # noqa: F401 - re-exported for tests and scripts
    ENGINES,
    ENVIRONMENTS,
    LOCAL_PSEUDONYM_SECRET,
    Settings,
)

all_assets = [*landing.landing_assets, *trusted.trusted_assets, *curated.curated_assets]
all_asset_checks = [*landing.landing_checks, *trusted.trusted_checks, *curated.curated_checks]


def build_definitions(settings: Settings, **resource_overrides: object) -> Definitions:
    # Kinds show the engine that computes the tables (the asset modules default to polars).
    kinds = {settings.engine, *(KINDS - set(ENGINES))}
    if settings.env == "glue":
        from stedi_assets.assets.glue import glue_assets
    return Definitions(
        assets=glue_assets(all_assets, all_asset_checks) if settings.env == "glue" else
        map_asset_specs(lambda spec: spec.replace_attributes(kinds=kinds), all_assets),
        # on Glue the checks run in the jobs and come back through Pipes with the tables
        asset_checks=[] if settings.env == "glue" else all_asset_checks,
        resources={**build_resources(settings), **resource_overrides},
        jobs=[full_graph_job],
        schedules=[stedi_daily],
        sensors=[stedi_alerts, *automation_sensors(settings.automation,
                                                  settings.sensor_interval_seconds)],
        # One process for the whole run: a process per step costs seconds each on a small box.
        executor=in_process_executor,
    )


defs = build_definitions(Settings.from_env())
