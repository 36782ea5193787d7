"""What every zone asset shares: owners, kinds and definition-time metadata from `schemas`."""

from __future__ import annotations

from typing import Any

from dagster import AssetOut, AssetSpec

from stedi_assets import schemas
from stedi_assets.automation import ZONE_CONDITION
from stedi_assets.io.iceberg_io import table_schema_metadata

OWNERS = ["team:stedi-data"]
KINDS = {"polars", "iceberg"}


def asset_kwargs(table_name: str) -> dict[str, Any]:
    """Keyword arguments of @asset for a STEDI table: group, description, schema, owners."""
    table = schemas.TABLES[table_name]
    return {
        "name": table.name,
        # landing tables are refreshed by the landing_files sensor; the zones follow them
        "automation_condition": None if table.zone == "landing" else ZONE_CONDITION,
        "group_name": table.zone,
        "description": table.description,
        "owners": OWNERS,
        "kinds": KINDS,
        "metadata": {
            "dagster/column_schema": table_schema_metadata(table.name),
            "zone": table.zone,
        },
    }


def asset_out(table_name: str) -> AssetOut:
    """The same description as an AssetOut (stored by the IO manager), for multi-assets."""
    kwargs = asset_kwargs(table_name)
    return AssetOut.from_spec(AssetSpec(key=kwargs.pop("name"), **kwargs), dagster_type=Any)
