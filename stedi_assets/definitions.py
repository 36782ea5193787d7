"""The code location: assets + checks + sensors + resources -> `defs` (what Dagster loads).

Settings come from the environment (stedi_assets/settings.py); resources by deployment from
stedi_assets/deployments.py. Importing `stedi_assets` itself builds nothing.
"""

from __future__ import annotations

import warnings
from datetime import timedelta

from dagster import (
    BetaWarning,
    Definitions,
    FreshnessPolicy,
    build_column_schema_change_checks,
    in_process_executor,
    map_asset_specs,
    with_source_code_references,
)

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


def _where_stored(settings: Settings, io_manager: object):
    """Spec -> spec with the table's name (as the catalog knows it) and storage URI, so the
    UI's metadata table says where each table lives before it is first materialized."""
    database = settings.aws.glue_database if settings.env != "local" else ""

    def add(spec):
        name = spec.key.path[-1]
        return spec.merge_attributes(metadata={
            "dagster/table_name": f"{database}.{name}" if database else name,
            "storage_uri": io_manager.table_uri(name),
        })

    return add


def _freshness(settings: Settings):
    """Spec -> spec with a freshness policy on the curated tables: a stalled landing feed (or a
    failing run) shows as a failed policy in the UI after STEDI_FRESHNESS_HOURS hours."""
    hours = settings.freshness_hours
    policy = FreshnessPolicy.time_window(fail_window=timedelta(hours=hours)) if hours else None

    def add(spec):
        if spec.group_name != "curated" or policy is None:
            return spec
        return spec.replace_attributes(freshness_policy=policy)

    return add


def build_definitions(settings: Settings, **resource_overrides: object) -> Definitions:
    # Kinds show the engine that computes the tables (the asset modules default to polars).
    kinds = {settings.engine, *(KINDS - set(ENGINES))}
    resources = {**build_resources(settings), **resource_overrides}
    if settings.env == "glue":
        from stedi_assets.assets.glue import glue_assets

        assets = glue_assets(all_assets, all_asset_checks)
    else:
        assets = map_asset_specs(lambda spec: spec.replace_attributes(kinds=kinds), all_assets)
    with warnings.catch_warnings():  # both are beta in Dagster 1.13; the CLI need not say so
        warnings.simplefilter("ignore", BetaWarning)
        # the UI links each asset to its file and line
        assets = with_source_code_references(map_asset_specs(
            _freshness(settings),
            map_asset_specs(_where_stored(settings, resources["io_manager"]), assets)))
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
