"""The one place that reads the environment and picks engine, storage and settings.

- STEDI_LANDING_ROOT: folder holding customer/, accelerometer/, step_trainer/
  (default <repo>/data/landing)
- STEDI_LAKEHOUSE_ROOT: where the <zone>/<table>/ Parquet tables go (default <repo>/data/lakehouse)
- STEDI_MIN_JOIN_COVERAGE: the join-coverage checks WARN below this share (default 0.5)
- STEDI_ALERT_WEBHOOK_URL: where alerts are POSTed as JSON (default: none, log only)
- STEDI_UI_URL: base URL of the Dagster UI used in alert links (default http://127.0.0.1:3000)
- STEDI_AUTOMATION: `on` (default) starts the landing sensor and declarative automation
  with `dagster dev`; `off` leaves them stopped (they can still be started in the UI)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dagster import Definitions, in_process_executor

from stedi_assets.alerts import AlertSettings, stedi_alerts
from stedi_assets.assets import curated, landing, trusted
from stedi_assets.automation import automation_sensors, full_graph_job, stedi_daily
from stedi_assets.io.parquet import LocalParquetIOManager
from stedi_assets.resources import CheckSettings, LandingSource, PolarsEngine


def _default_data_dir() -> Path:
    """<repo>/data for a checkout (editable install); ./data otherwise."""
    repo = Path(__file__).resolve().parents[1]
    if (repo / "pyproject.toml").is_file():
        return repo / "data"
    return Path.cwd() / "data"


def _switch(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = env.get(name, "").strip().lower()
    if not value:
        return default
    if value in {"1", "on", "true", "yes"}:
        return True
    if value in {"0", "off", "false", "no"}:
        return False
    raise ValueError(f"{name} must be on or off, got {value!r}")


@dataclass(frozen=True)
class Settings:
    landing_root: str
    lakehouse_root: str
    min_join_coverage: float
    alert_webhook_url: str | None = None
    ui_url: str = "http://127.0.0.1:3000"
    automation: bool = True

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
            alert_webhook_url=env.get("STEDI_ALERT_WEBHOOK_URL") or None,
            ui_url=env.get("STEDI_UI_URL", "http://127.0.0.1:3000"),
            automation=_switch(env, "STEDI_AUTOMATION", default=True),
        )


def build_resources(settings: Settings) -> dict[str, object]:
    return {
        "engine": PolarsEngine(),
        "landing": LandingSource(root=settings.landing_root),
        "io_manager": LocalParquetIOManager(root=settings.lakehouse_root),
        "checks": CheckSettings(min_join_coverage=settings.min_join_coverage),
        "alerts": AlertSettings(webhook_url=settings.alert_webhook_url,
                                ui_base_url=settings.ui_url),
    }


all_assets = [*landing.landing_assets, *trusted.trusted_assets, *curated.curated_assets]
all_asset_checks = [*landing.landing_checks, *trusted.trusted_checks, *curated.curated_checks]


def build_definitions(settings: Settings, **resource_overrides: object) -> Definitions:
    return Definitions(
        assets=all_assets,
        asset_checks=all_asset_checks,
        resources={**build_resources(settings), **resource_overrides},
        jobs=[full_graph_job],
        schedules=[stedi_daily],
        sensors=[stedi_alerts, *automation_sensors(settings.automation)],
        # One process for the whole run: a process per step costs seconds each on a small box.
        executor=in_process_executor,
    )


defs = build_definitions(Settings.from_env())
