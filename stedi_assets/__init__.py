"""STEDI lakehouse: landing -> trusted -> curated as a Dagster asset graph."""

from stedi_assets.definitions import defs

__all__ = ["defs"]
