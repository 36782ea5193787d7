"""The one place that reads the environment and picks engine, storage and settings.

- STEDI_LANDING_ROOT: folder holding customer/, accelerometer/, step_trainer/
  (default <repo>/data/landing)
- STEDI_LAKEHOUSE_ROOT: where the <zone>/<table>/ Parquet tables go (default <repo>/data/lakehouse)
- STEDI_MIN_JOIN_COVERAGE: the join-coverage checks WARN below this share (default 0.5)
- STEDI_ENGINE: polars (default) or spark
- STEDI_SPARK_MASTER: Spark master URL for STEDI_ENGINE=spark (default local[*])
- STEDI_SPARK_REMOTE: Spark Connect URL (sc://host:15002); used instead of the master
- STEDI_SPARK_CONF: extra Spark settings as a JSON object, e.g. {"spark.driver.memory": "4g"}
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dagster import Definitions, in_process_executor, map_asset_specs
from dagster_pyspark import PySparkResource

from stedi_assets.assets import curated, landing, trusted
from stedi_assets.assets.common import KINDS
from stedi_assets.io.parquet import LocalParquetIOManager
from stedi_assets.io.spark_parquet import SparkParquetIOManager
from stedi_assets.resources import CheckSettings, LandingSource, PolarsEngine, SparkEngine

ENGINES = ("polars", "spark")


def _default_data_dir() -> Path:
    """<repo>/data for a checkout (editable install); ./data otherwise."""
    repo = Path(__file__).resolve().parents[1]
    if (repo / "pyproject.toml").is_file():
        return repo / "data"
    return Path.cwd() / "data"


@dataclass(frozen=True)
class Settings:
    landing_root: str
    lakehouse_root: str
    min_join_coverage: float
    engine: str = "polars"
    spark_config: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        data = _default_data_dir()
        coverage = env.get("STEDI_MIN_JOIN_COVERAGE", "0.5")
        try:
            min_join_coverage = float(coverage)
        except ValueError:
            raise ValueError(
                f"STEDI_MIN_JOIN_COVERAGE must be a number between 0 and 1, got {coverage!r}"
            ) from None
        return cls(
            landing_root=env.get("STEDI_LANDING_ROOT", str(data / "landing")),
            lakehouse_root=env.get("STEDI_LAKEHOUSE_ROOT", str(data / "lakehouse")),
            min_join_coverage=min_join_coverage,
            **_engine_settings(env),
        )


def _engine_settings(env: Mapping[str, str]) -> dict[str, object]:
    """STEDI_ENGINE and, for spark, the session settings (STEDI_SPARK_*)."""
    engine = env.get("STEDI_ENGINE", "polars").strip().lower()
    if engine not in ENGINES:
        raise ValueError(f"STEDI_ENGINE must be one of {ENGINES}, got {engine!r}")
    remote = env.get("STEDI_SPARK_REMOTE")
    master = env.get("STEDI_SPARK_MASTER", "local[*]")
    config = {"spark.remote": remote} if remote else {"spark.master": master}
    config["spark.sql.session.timeZone"] = "UTC"
    if not remote and master.startswith("local"):
        config["spark.pyspark.python"] = sys.executable  # Python workers match the driver
    try:
        extra = json.loads(env.get("STEDI_SPARK_CONF") or "{}")
    except json.JSONDecodeError as exc:
        raise ValueError(f"STEDI_SPARK_CONF must be a JSON object: {exc}") from None
    if not isinstance(extra, dict):
        raise ValueError("STEDI_SPARK_CONF must be a JSON object of Spark settings")
    config.update({str(k): str(v) for k, v in extra.items()})
    return {"engine": engine, "spark_config": config}


def engine_resources(settings: Settings) -> dict[str, object]:
    """The engine and the IO manager that hands it frames of its own kind."""
    if settings.engine == "spark":
        pyspark = PySparkResource(spark_config=dict(settings.spark_config))
        return {
            "engine": SparkEngine(pyspark=pyspark),
            "io_manager": SparkParquetIOManager(root=settings.lakehouse_root, pyspark=pyspark),
        }
    return {
        "engine": PolarsEngine(),
        "io_manager": LocalParquetIOManager(root=settings.lakehouse_root),
    }


def build_resources(settings: Settings) -> dict[str, object]:
    return {
        **engine_resources(settings),
        "landing": LandingSource(root=settings.landing_root),
        "checks": CheckSettings(min_join_coverage=settings.min_join_coverage),
    }


all_assets = [*landing.landing_assets, *trusted.trusted_assets, *curated.curated_assets]
all_asset_checks = [*landing.landing_checks, *trusted.trusted_checks, *curated.curated_checks]


def build_definitions(settings: Settings) -> Definitions:
    # Kinds show the engine that computes the tables (the asset modules default to polars).
    kinds = {settings.engine, *(KINDS - set(ENGINES))}
    return Definitions(
        assets=map_asset_specs(lambda spec: spec.replace_attributes(kinds=kinds), all_assets),
        asset_checks=all_asset_checks,
        resources=build_resources(settings),
        # One process for the whole run: a process per step costs seconds each on a small box.
        executor=in_process_executor,
    )


defs = build_definitions(Settings.from_env())
