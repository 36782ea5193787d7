"""Automation: the landing sensor, eager zones that stop at failed blocking checks, schedule."""

import shutil

import pytest
from dagster import (
    AssetKey,
    DagsterInstance,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    SkipReason,
    build_sensor_context,
    evaluate_automation_conditions,
    materialize,
)

from stedi_assets.automation import automation_sensors
from stedi_assets.definitions import (
    Settings,
    all_asset_checks,
    all_assets,
    build_definitions,
    build_resources,
)
from stedi_assets.resources import LandingSource
from stedi_assets_tests.support.leaky import leaky_engine

DOWNSTREAM = ["customer_trusted", "accelerometer_trusted", "customer_curated",
              "step_trainer_trusted", "machine_learning_curated"]


@pytest.fixture
def landing(tmp_path, sample_landing):
    root = tmp_path / "landing"
    shutil.copytree(sample_landing, root)
    return root


def _landing_sensor(enabled=True):
    return next(s for s in automation_sensors(enabled) if s.name == "landing_files")


def _tick(root, cursor=None, instance=None):
    context = build_sensor_context(cursor=cursor, instance=instance,
                                   resources={"landing": LandingSource(root=str(root))})
    return context, _landing_sensor()(context)


def test_landing_sensor_requests_only_the_sources_whose_files_changed(landing):
    context, first = _tick(landing)
    assert isinstance(first, RunRequest)
    assert {k.path[-1] for k in first.asset_selection} == {
        "customer_landing", "accelerometer_landing", "step_trainer_landing",
        "customer_landing_rejects", "accelerometer_landing_rejects",
        "step_trainer_landing_rejects"}
    context, again = _tick(landing, context.cursor)
    assert isinstance(again, SkipReason)

    new_file = landing / "accelerometer" / "accelerometer-new.json"
    new_file.write_text('{"user":"x@test.com","timestamp":1,"x":0.0,"y":0.0,"z":0.0}\n')
    context, after_new = _tick(landing, context.cursor)
    assert [k.path[-1] for k in after_new.asset_selection] == [
        "accelerometer_landing", "accelerometer_landing_rejects"]
    assert after_new.run_key != first.run_key

    new_file.write_text('{"user":"x@test.com","timestamp":2,"x":0.0,"y":0.0,"z":0.0}\n' * 2)
    context, after_change = _tick(landing, context.cursor)
    assert [k.path[-1] for k in after_change.asset_selection] == [
        "accelerometer_landing", "accelerometer_landing_rejects"]


def test_first_tick_starts_from_what_was_last_landed(landing, tmp_path):
    """A new sensor cursor (a new `dagster dev`, a reset sensor) on an instance where the
    landing tables were materialized: nothing changed, nothing is launched."""
    with DagsterInstance.ephemeral() as instance:
        assert _materialize(instance, landing, tmp_path / "lake").success
        [record] = instance.fetch_materializations(AssetKey("customer_landing"), 1).records
        assert record.asset_materialization.metadata["landing_fingerprint"].value == \
            LandingSource(root=str(landing)).fingerprint("customer")
        context, first = _tick(landing, instance=instance)
        assert isinstance(first, SkipReason)

        (landing / "step_trainer" / "step-new.json").write_text(
            '{"sensorReadingTime":1,"serialNumber":"s","distanceFromObject":1}\n')
        _, fresh = _tick(landing, instance=instance)  # again without a cursor
        assert [k.path[-1] for k in fresh.asset_selection] == [
            "step_trainer_landing", "step_trainer_landing_rejects"]
        _, with_cursor = _tick(landing, context.cursor, instance=instance)
        assert with_cursor.run_key == fresh.run_key


def _materialize(instance, landing, lake, selection=None, **overrides):
    settings = Settings(landing_root=str(landing), lakehouse_root=str(lake),
                        min_join_coverage=0.5)
    return materialize([*all_assets, *all_asset_checks], instance=instance,
                       selection=selection, raise_on_error=False,
                       resources={**build_resources(settings), **overrides})


def _requested(defs, instance, cursor=None):
    result = evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
    names = {name for name in DOWNSTREAM if result.get_num_requested(AssetKey(name))}
    return names, result.cursor


def test_new_landing_data_flows_downstream_on_its_own(landing, tmp_path):
    defs = build_definitions(Settings(str(landing), str(tmp_path / "lake"), 0.5))
    with DagsterInstance.ephemeral() as instance:
        assert _materialize(instance, landing, tmp_path / "lake").success
        requested, cursor = _requested(defs, instance)
        assert requested == set()  # everything is up to date
        _materialize(instance, landing, tmp_path / "lake", selection=["accelerometer_landing",
                                                                "accelerometer_landing_rejects"])
        requested, cursor = _requested(defs, instance, cursor)
        # accelerometer_trusted and everything below it; customer_trusted did not change
        assert requested == {"accelerometer_trusted", "customer_curated",
                             "step_trainer_trusted", "machine_learning_curated"}


def test_automation_never_runs_past_a_failed_blocking_check(landing, tmp_path):
    defs = build_definitions(Settings(str(landing), str(tmp_path / "lake"), 0.5))
    with DagsterInstance.ephemeral() as instance:
        assert _materialize(instance, landing, tmp_path / "lake").success
        _, cursor = _requested(defs, instance)
        # customer_landing changes (a new file: a customer's record landed again) and
        # customer_trusted is rebuilt by a leaky transform (unchanged inputs would keep it):
        first = sorted((landing / "customer").glob("*.json"))[0]
        (landing / "customer" / "zz-again.json").write_text(
            first.read_text().splitlines()[0] + "\n")
        leak = _materialize(instance, landing, tmp_path / "lake",
                            selection=["customer_landing", "customer_landing_rejects",
                                       "customer_trusted"],
                            engine=leaky_engine())
        failed = [e for e in leak.get_asset_check_evaluations() if not e.passed]
        assert [(e.asset_key.path[-1], e.check_name) for e in failed] == [
            ("customer_trusted", "consent")]
        requested, _ = _requested(defs, instance, cursor)
        assert "accelerometer_trusted" not in requested
        assert "customer_curated" not in requested


@pytest.mark.filterwarnings("ignore:Starting in dagster 1.11:UserWarning")
def test_sensors_and_schedule_defaults():
    defs = build_definitions(Settings("l", "h", 0.5))
    assert defs.get_sensor_def("stedi_alerts").default_status == DefaultSensorStatus.RUNNING
    assert defs.get_sensor_def("landing_files").default_status == DefaultSensorStatus.RUNNING
    assert defs.get_sensor_def("stedi_automation").default_status == \
        DefaultSensorStatus.RUNNING
    schedule = defs.get_schedule_def("stedi_daily")
    assert schedule.default_status == DefaultScheduleStatus.STOPPED
    off = build_definitions(Settings("l", "h", 0.5, automation=False))
    assert off.get_sensor_def("landing_files").default_status == DefaultSensorStatus.STOPPED
    assert off.get_sensor_def("stedi_alerts").default_status == DefaultSensorStatus.RUNNING
