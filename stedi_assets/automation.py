"""Keeping the graph up to date: landing-file sensor, declarative automation, daily schedule.

- `landing_files` notices new, changed or removed files under the landing root (names, sizes,
  modification times) and materializes the landing table of each source that changed. It
  compares each source's fingerprint with the one it saw last or, on its first tick (a new
  instance, a sensor reset), with the one the latest materialization of the landing table
  recorded: starting `dagster dev` on an up-to-date lakehouse launches nothing.
- Trusted and curated assets carry `ZONE_CONDITION`: materialize eagerly when an upstream
  table was updated — but only when every blocking check of those upstream tables passed.
  (`eager()` alone would run past a failed consent check.)
- `stedi_automation` evaluates those conditions; `stedi_daily` is a fallback schedule for the
  whole graph, off by default (turn it on in the UI).
"""

import json

from dagster import (
    AssetKey,
    AssetSelection,
    AutomationCondition,
    AutomationConditionSensorDefinition,
    DagsterInstance,
    DagsterInvariantViolationError,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    ScheduleDefinition,
    SensorEvaluationContext,
    SkipReason,
    define_asset_job,
    sensor,
)

from stedi_assets import schemas
from stedi_assets.increments import FULL_VERIFICATION_TAG
from stedi_assets.resources import LandingSource

#: Metadata key of the landing source's fingerprint (LandingSource.fingerprint) when its table
#: was landed (assets/landing.py, assets/glue.py); the sensor's first tick starts from it.
LANDING_FINGERPRINT = "landing_fingerprint"

ZONE_CONDITION = (
    AutomationCondition.eager() & AutomationCondition.all_deps_blocking_checks_passed()
).with_label("eager, unless an upstream blocking check failed")

full_graph_job = define_asset_job(
    "stedi_full_graph", selection=AssetSelection.all(),
    description="Every landing, trusted and curated table with its checks.",
)

stedi_daily = ScheduleDefinition(
    name="stedi_daily", job=full_graph_job, cron_schedule="0 3 * * *",
    execution_timezone="UTC", default_status=DefaultScheduleStatus.STOPPED,
    # the consent checks verify every row once a day, not only what changed
    tags={FULL_VERIFICATION_TAG: "true"},
    description="Fallback: bring the whole graph up to date every day at 03:00 UTC, with a "
                "full verification of every consent check (off by default).",
)


def _instance(context: SensorEvaluationContext) -> DagsterInstance | None:
    try:
        return context.instance
    except DagsterInvariantViolationError:  # a context built without one (unit tests)
        return None


def last_landed_fingerprint(instance: DagsterInstance, table_name: str) -> str | None:
    """The landing source's fingerprint recorded by the latest materialization of the table
    (None when it was never materialized, or by a version that did not record it)."""
    event = instance.get_latest_materialization_event(AssetKey(table_name))
    materialization = event.asset_materialization if event else None
    value = materialization.metadata.get(LANDING_FINGERPRINT) if materialization else None
    return str(value.value) if value is not None else None


def automation_sensors(enabled: bool, interval_seconds: int = 15):
    status = DefaultSensorStatus.RUNNING if enabled else DefaultSensorStatus.STOPPED

    @sensor(
        name="landing_files", minimum_interval_seconds=interval_seconds, default_status=status,
        asset_selection=AssetSelection.groups("landing"),
        description="Materializes a landing table when files of its source are added, "
                    "changed or removed under the landing root.",
    )
    def landing_files(context: SensorEvaluationContext, landing: LandingSource):
        seen = json.loads(context.cursor) if context.cursor else {}
        now = {t.name: landing.fingerprint(t.source) for t in schemas.LANDING_TABLES}
        missing = now.keys() - seen.keys()  # first tick: start from what was landed last
        instance = _instance(context) if missing else None
        for name in missing:
            seen[name] = last_landed_fingerprint(instance, name) if instance else None
        changed = sorted(name for name, digest in now.items()
                         if digest and seen.get(name) != digest)
        context.update_cursor(json.dumps(now))
        if not changed:
            return SkipReason("no landing files changed")
        return RunRequest(
            run_key="landing:" + ",".join(f"{n}={now[n][:16]}" for n in changed),
            # a landing table and its quarantine table are materialized together
            asset_selection=[AssetKey(key) for name in changed
                             for key in (name, schemas.rejects_table(schemas.TABLES[name]).name)],
            tags={"stedi/trigger": "landing_files"},
        )

    zone_automation = AutomationConditionSensorDefinition(
        "stedi_automation", target=AssetSelection.groups("trusted", "curated"),
        default_status=status, minimum_interval_seconds=interval_seconds,
        description="Materializes trusted and curated tables when their inputs change, never "
                    "past a failed blocking check.",
    )
    return [landing_files, zone_automation]
