"""What the code location adds to every asset spec from the settings: the engine among the
kinds, where each table is stored, and the curated tables' freshness policy.

Each function returns a spec -> spec function for `dagster.map_asset_specs`.
"""

from __future__ import annotations

from datetime import timedelta

from dagster import FreshnessPolicy

from stedi_assets.assets.common import KINDS
from stedi_assets.settings import ENGINES, Settings


def engine_kinds(settings: Settings):
    """Spec -> spec whose kinds show the engine that computes the tables (the asset modules
    default to polars)."""
    kinds = {settings.engine, *(KINDS - set(ENGINES))}
    return lambda spec: spec.replace_attributes(kinds=kinds)


def where_stored(settings: Settings, io_manager: object):
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


def freshness(settings: Settings):
    """Spec -> spec with a freshness policy on the curated tables: a stalled landing feed (or a
    failing run) shows as a failed policy in the UI after STEDI_FRESHNESS_HOURS hours."""
    hours = settings.freshness_hours
    policy = FreshnessPolicy.time_window(fail_window=timedelta(hours=hours)) if hours else None

    def add(spec):
        if spec.group_name != "curated" or policy is None:
            return spec
        return spec.replace_attributes(freshness_policy=policy)

    return add
