"""No email, name or phone of the landing data leaves the lakehouse (issue 11 item 8): after a
real `dagster asset materialize` on an instance on disk ($DAGSTER_HOME) whose consent check
fails, and the alert sensor posting to a real webhook, none of them is in any file of the
instance (event log, run storage, compute logs), in the command's output or in an alert."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from dagster import DagsterInstance, build_sensor_context

from stedi_assets.alerts import AlertSettings, stedi_alerts
from stedi_assets.assets.landing import loggable_reason
from stedi_assets.settings import LOCAL_PSEUDONYM_SECRET
from stedi_assets.transforms.pseudonyms import customer_key
from stedi_assets_tests.graph.test_consent_rules import LANDING, write_landing
from stedi_assets_tests.support.paths import REPO_ROOT
from stedi_assets_tests.support.webhook import WebhookReceiver


def landing_pii(landing: dict[str, list[str]]) -> set[str]:
    """Every email (any spelling, and its identity), customerName and phone of the landing
    lines, valid or not, lower-cased."""
    text = "\n".join(line for lines in landing.values() for line in lines)
    emails = re.findall(r"[\w.+-]+@[\w.-]+", text)
    names = re.findall(r'"customerName": "([^"]+)"', text)
    phones = re.findall(r'"phone": "([^"]+)"', text)
    found = {v.strip().lower() for v in [*emails, *names, *phones]}
    assert len(names) >= 10 and len(phones) >= 10 and "hal@x.com" in found
    return found


def leaks(data: bytes, pii: set[str]) -> set[str]:
    lowered = data.decode("utf-8", "replace").lower()
    return {value for value in pii if value in lowered}


@pytest.mark.slow
def test_no_landing_pii_in_the_instance_logs_or_alerts(tmp_path):
    landing = write_landing(tmp_path / "landing")
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = {**os.environ, "DAGSTER_HOME": str(home), "STEDI_LANDING_ROOT": str(landing),
           "STEDI_LAKEHOUSE_ROOT": str(tmp_path / "lake")}
    dagster = os.path.join(os.path.dirname(sys.executable), "dagster")
    proc = subprocess.run(
        [dagster, "asset", "materialize", "-f", "stedi_assets_tests/support/leaky_location.py",
         "--select", "*"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    output = proc.stdout + proc.stderr
    # the leaky engine's customer_trusted fails its consent check; the landing step logged
    # its quarantined lines (reasons included, values left out)
    assert proc.returncode != 0, output[-3000:]
    assert "customer_trusted: consent" in output, output[-3000:]
    assert "lastUpdateDate: value is not a valid int64" in output

    with DagsterInstance.from_config(str(home)) as instance, WebhookReceiver() as hook:
        context = build_sensor_context(instance=instance, resources={
            "alerts": AlertSettings(webhook_url=hook.url)})
        stedi_alerts(context)
        bodies = [json.dumps(body) for body in hook.received]
    consent = [b for b in hook.received if b.get("check") == "consent"]
    assert consent and consent[0]["metadata"]["violations"] > 0
    # what the alert names instead: pseudonymous keys of the violating customers
    sample = consent[0]["metadata"]["violating_keys_sample"]
    assert customer_key("dan@x.com", LOCAL_PSEUDONYM_SECRET) in sample

    pii = landing_pii(LANDING)
    files = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.suffix == ".db" for p in files)  # the event log / run storage
    assert any("compute_logs" in str(p) or p.suffix in {".out", ".err", ".complete"}
               for p in files), sorted(str(p.relative_to(home)) for p in files)
    found = {str(p.relative_to(home)): leaks(p.read_bytes(), pii) for p in files}
    assert {k: v for k, v in found.items() if v} == {}
    assert leaks(output.encode(), pii) == set()
    assert leaks("\n".join(bodies).encode(), pii) == set()


def test_logged_reject_reasons_keep_the_problem_but_not_the_value():
    reason = "lastUpdateDate: hal@x.com is not a valid int64; phone: x is not a valid int64"
    assert loggable_reason(reason) == ("lastUpdateDate: value is not a valid int64; "
                                       "phone: value is not a valid int64")
    assert loggable_reason("invalid JSON: Expecting value (column 3)") == (
        "invalid JSON: Expecting value (column 3)")
