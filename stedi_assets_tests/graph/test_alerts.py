"""The alert sensor on a real Dagster instance, posting to a real webhook on 127.0.0.1."""

import socket

import pytest
from dagster import DagsterInstance, build_sensor_context, materialize

from stedi_assets.alerts import AlertSettings, stedi_alerts
from stedi_assets.definitions import Settings, all_asset_checks, all_assets, build_resources
from stedi_assets_tests.support.leaky import leaky_engine
from stedi_assets_tests.support.webhook import WebhookReceiver


def _run(instance, landing, lake, **overrides):
    settings = Settings(landing_root=str(landing), lakehouse_root=str(lake),
                        min_join_coverage=overrides.pop("min_join_coverage", 0.5))
    return materialize([*all_assets, *all_asset_checks], instance=instance,
                       resources={**build_resources(settings), **overrides},
                       raise_on_error=False)


def _tick(instance, url, cursor=None):
    context = build_sensor_context(instance=instance, cursor=cursor,
                                   resources={"alerts": AlertSettings(webhook_url=url)})
    result = stedi_alerts(context)
    return context.cursor, result


@pytest.fixture
def instance():
    with DagsterInstance.ephemeral() as inst:
        yield inst


@pytest.mark.slow
def test_one_alert_per_failed_check_none_for_passing_runs(instance, sample_landing, tmp_path):
    ok = _run(instance, sample_landing, tmp_path / "ok")
    leaky = _run(instance, sample_landing, tmp_path / "leak", engine=leaky_engine())
    warned = _run(instance, sample_landing, tmp_path / "warn", min_join_coverage=0.999)
    assert ok.success and not leaky.success and warned.success
    with WebhookReceiver() as hook:
        cursor, _ = _tick(instance, hook.url)
        alerts = hook.received
        assert [(a["asset"], a["check"], a["severity"]) for a in alerts] == [
            ("customer_trusted", "consent", "ERROR"),
            ("step_trainer_trusted", "join_coverage", "WARN"),
            ("machine_learning_curated", "join_coverage", "WARN"),
        ]
        consent = alerts[0]
        assert consent["run_id"] == leaky.run_id
        assert consent["run_url"] == f"http://127.0.0.1:3000/runs/{leaky.run_id}"
        assert consent["metadata"]["violations"] > 0
        assert "consent" in consent["text"] and "customer_trusted" in consent["text"]
        # the leaky run failed because of that check: no second alert for the run itself
        assert not [a for a in alerts if a["kind"] == "run_failure"]
        # a restarted sensor resumes from its stored cursor: nothing is sent twice
        _tick(instance, hook.url, cursor)
        assert len(hook.received) == 3


def test_failed_run_without_failed_check_gets_a_run_alert(instance, tmp_path):
    failed = _run(instance, tmp_path / "no-landing", tmp_path / "lake")
    assert not failed.success
    with WebhookReceiver() as hook:
        _tick(instance, hook.url)
        assert [a["kind"] for a in hook.received] == ["run_failure"]
        text = hook.received[0]["text"]
        assert "land_customer" in text and "does not exist" in text
        assert hook.received[0]["run_id"] == failed.run_id


def test_webhook_errors_are_retried_next_tick_without_duplicates(instance, sample_landing,
                                                                 tmp_path):
    _run(instance, sample_landing, tmp_path / "warn", min_join_coverage=0.999)
    with WebhookReceiver() as hook:
        hook.responses = [500]
        cursor, result = _tick(instance, hook.url)
        assert "delivery failing" in result.skip_message and "HTTP 500" in result.skip_message
        assert hook.received == []
        cursor, _ = _tick(instance, hook.url, cursor)
        assert len(hook.received) == 2
        _tick(instance, hook.url, cursor)
        assert len(hook.received) == 2


def test_partial_delivery_resumes_where_it_stopped(instance, sample_landing, tmp_path):
    _run(instance, sample_landing, tmp_path / "warn", min_join_coverage=0.999)
    with WebhookReceiver() as hook:
        hook.responses = [200, 503]  # the first alert goes out, the second bounces
        cursor, _ = _tick(instance, hook.url)
        assert len(hook.received) == 1
        _tick(instance, hook.url, cursor)
        assert [a["check"] for a in hook.received] == ["join_coverage", "join_coverage"]
        assert hook.received[0]["asset"] != hook.received[1]["asset"]


def test_unreachable_webhook_never_crashes_the_sensor(instance, sample_landing, tmp_path):
    _run(instance, sample_landing, tmp_path / "warn", min_join_coverage=0.999)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    _, result = _tick(instance, f"http://127.0.0.1:{closed_port}/hook")
    assert "webhook unreachable" in result.skip_message


def test_without_webhook_alerts_go_to_the_log_only(instance, sample_landing, tmp_path):
    _run(instance, sample_landing, tmp_path / "warn", min_join_coverage=0.999)
    _, result = _tick(instance, None)
    assert result.skip_message == "2 alert(s) sent"
