"""A code location with the leaky engine, for the browser test of a failing consent check."""

from stedi_assets.definitions import Settings, build_definitions
from stedi_assets_tests.support.leaky import leaky_engine

defs = build_definitions(Settings.from_env(), engine=leaky_engine())
