"""STEDI lakehouse: landing -> trusted -> curated as a Dagster asset graph.

Importing the package builds nothing and reads no environment: Dagster loads the code location
from `stedi_assets.definitions` (workspace.yaml, [tool.dagster]).
"""
