"""Secrets reach Dagster as EnvVars; the public development key never touches real data."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from dagster import DagsterInstance, EnvVar, materialize

from stedi_assets.definitions import (
    Settings,
    all_asset_checks,
    all_assets,
    build_definitions,
    build_resources,
)
from stedi_assets.settings import LOCAL_PSEUDONYM_SECRET, AlertingSettings
from stedi_assets_tests.support.paths import REPO_ROOT
from stedi_assets_tests.support.tiny_landing import write_tiny_landing

DEV_KEY_WARNING = "public development key"


def _warnings(instance: DagsterInstance, run_id: str) -> list[str]:
    return [e.user_message for e in instance.all_logs(run_id)
            if e.level >= 30 and DEV_KEY_WARNING in e.user_message]


def test_webhook_url_from_the_environment_is_an_env_var(monkeypatch):
    url = "https://hooks.slack.com/services/T000/B000/webhook-credential"
    monkeypatch.setenv("STEDI_ALERT_WEBHOOK_URL", url)
    settings = Settings.from_env({"STEDI_ALERT_WEBHOOK_URL": url})
    assert settings.alerts.webhook_url_from_env
    alerts = build_resources(settings)["alerts"]
    assert alerts.webhook_url == EnvVar("STEDI_ALERT_WEBHOOK_URL")
    assert url not in repr(alerts)
    # without the environment (a Settings built in code) the value is kept as given
    direct = Settings("l", "h", 0.5,
                      alerts=AlertingSettings(webhook_url="http://127.0.0.1:9/hook"))
    assert build_resources(direct)["alerts"].webhook_url == "http://127.0.0.1:9/hook"


@pytest.mark.parametrize("env", [
    {"STEDI_LANDING_ROOT": "s3://cd0030bucket/"},                      # real data on S3
    {"STEDI_LANDING_ROOT": "s3://cd0030bucket/", "STEDI_ENV": "local"},
    {"STEDI_ENV": "s3", "STEDI_LAKEHOUSE_ROOT": "s3://lake/stedi/"},
    {"STEDI_ENV": "glue", "STEDI_LAKEHOUSE_ROOT": "s3://lake/stedi/"},
])
def test_development_key_is_refused_unless_both_roots_are_local(env, tmp_path):
    settings = Settings.from_env({"STEDI_LAKEHOUSE_ROOT": str(tmp_path / "lake"), **env})
    assert settings.pseudonym_secret is None
    with pytest.raises(ValueError, match="STEDI_PSEUDONYM_SECRET must be set"):
        build_definitions(settings)


def test_development_key_value_is_refused_on_s3_even_when_given(tmp_path):
    # the dataclass default, or STEDI_PSEUDONYM_SECRET set to the public value
    direct = Settings(landing_root="s3://cd0030bucket/", lakehouse_root=str(tmp_path),
                      min_join_coverage=0.5)
    given = Settings.from_env({"STEDI_LANDING_ROOT": "s3://cd0030bucket/",
                               "STEDI_LAKEHOUSE_ROOT": str(tmp_path),
                               "STEDI_PSEUDONYM_SECRET": LOCAL_PSEUDONYM_SECRET})
    for settings in (direct, given):
        with pytest.raises(ValueError, match="STEDI_PSEUDONYM_SECRET is the public development"):
            build_resources(settings)


def test_loading_the_code_location_refuses_and_names_the_setting(tmp_path):
    """What `dagster dev` / `dagster asset materialize` see: loading stops with the reason."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEDI_")}
    env.update(STEDI_LANDING_ROOT="s3://cd0030bucket/",
               STEDI_LAKEHOUSE_ROOT=str(tmp_path / "lake"))
    result = subprocess.run([sys.executable, "-c", "import stedi_assets.definitions"],
                            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "ValueError: STEDI_PSEUDONYM_SECRET must be set when STEDI_LANDING_ROOT is on S3" \
        in result.stderr


@pytest.mark.slow
def test_every_run_with_the_development_key_warns_and_a_real_key_does_not(tmp_path,
                                                                          monkeypatch):
    landing = write_tiny_landing(tmp_path / "landing")
    local = Settings.from_env({"STEDI_LANDING_ROOT": str(landing),
                               "STEDI_LAKEHOUSE_ROOT": str(tmp_path / "lake")})
    assert local.pseudonym_secret == LOCAL_PSEUDONYM_SECRET
    monkeypatch.setenv("STEDI_PSEUDONYM_SECRET", "a-real-secret")
    keyed = Settings.from_env({"STEDI_LANDING_ROOT": str(landing),
                               "STEDI_LAKEHOUSE_ROOT": str(tmp_path / "lake2"),
                               "STEDI_PSEUDONYM_SECRET": "a-real-secret"})
    with DagsterInstance.ephemeral() as instance:
        runs = []
        for settings in (local, local, keyed):
            result = materialize([*all_assets, *all_asset_checks], instance=instance,
                                 resources=build_resources(settings), raise_on_error=False)
            assert result.success
            runs.append(result.run_id)
        first, second, with_secret = (_warnings(instance, run) for run in runs)
        assert len(first) == 1 and len(second) == 1, (first, second)
        assert "STEDI_PSEUDONYM_SECRET" in first[0]
        assert with_secret == []
