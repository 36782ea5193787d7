"""A real `dagster dev` on an instance the CLI materialized: no secret in what the webserver
serves (GraphQL), and opening it launches nothing until a landing file changes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from stedi_assets_tests.support.paths import REPO_ROOT
from stedi_assets_tests.support.tiny_landing import write_tiny_landing
from stedi_assets_tests.support.ui_support import dagster_dev
from stedi_assets_tests.support.webhook import WebhookReceiver

PSEUDONYM_SECRET = "pseudonym-key-that-must-stay-hidden-4f1d"
WEBHOOK_TOKEN = "T0001/B0001/webhook-token-that-must-stay-hidden-9c2e"
SENSOR_INTERVAL = 5  # seconds (STEDI_SENSOR_INTERVAL_SECONDS; 15 by default)

META = """fragment Meta on MetadataEntry { __typename label description
  ... on TextMetadataEntry { text } ... on JsonMetadataEntry { jsonString }
  ... on PathMetadataEntry { path } ... on UrlMetadataEntry { url }
  ... on MarkdownMetadataEntry { mdStr } ... on IntMetadataEntry { intRepr }
  ... on TableSchemaMetadataEntry { schema { columns { name type description } } } }"""
REPOSITORY = """query { workspaceOrError { __typename ... on Workspace { locationEntries { name
  locationOrLoadError { __typename ... on PythonError { message }
  ... on RepositoryLocation { name repositories { name
    allTopLevelResourceDetails { name description resourceType
      configFields { name description configTypeKey defaultValueAsJson }
      configuredValues { key value type } }
    assetNodes { assetKey { path } description groupName jobNames
      metadataEntries { ...Meta } requiredResources { resourceKey } }
    sensors { name description minIntervalSeconds metadataEntries { ...Meta } }
    schedules { name description cronSchedule }
    jobs { name description } } } } } } } }
""" + META
CONFIG_SCHEMA = """query($selector: PipelineSelector!) {
  runConfigSchemaOrError(selector: $selector) {
  __typename ... on RunConfigSchema { rootDefaultYaml
    allConfigTypes { key description __typename
      ... on CompositeConfigType { fields { name description defaultValueAsJson } } } } } }"""
ASSETS = """query { assetsOrError { __typename ... on AssetConnection { nodes { key { path }
  assetMaterializations(limit: 5) { runId description metadataEntries { ...Meta } } } } } }
""" + META
RUNS = """query { runsOrError { __typename ... on Runs { results { runId status runConfigYaml
  tags { key value } assetSelection { path } } } } }"""
RUN_LOGS = """query($runId: ID!) { logsForRun(runId: $runId) { __typename
  ... on EventConnection { events { __typename ... on MessageEvent { message } } } } }"""
TICKS = """query($selector: SensorSelector!) { sensorOrError(sensorSelector: $selector) {
  __typename ... on Sensor { sensorState { status ticks(limit: 20) { status runIds
  skipReason error { message } } } } } }"""


def graphql(base: str, query: str, variables: dict | None = None) -> tuple[str, dict]:
    """(the raw response text, its data); GraphQL errors fail the test."""
    request = urllib.request.Request(
        f"{base}/graphql", data=json.dumps({"query": query, "variables": variables or {}})
        .encode(), headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            text = response.read().decode()
    except urllib.error.HTTPError as exc:  # invalid queries come back as 400 with errors
        text = exc.read().decode()
    body = json.loads(text)
    assert not body.get("errors"), body["errors"]
    return text, body["data"]


def _repository(base: str) -> tuple[str, dict, dict]:
    text, data = graphql(base, REPOSITORY)
    (entry,) = data["workspaceOrError"]["locationEntries"]
    location = entry["locationOrLoadError"]
    assert location["__typename"] == "RepositoryLocation", location
    (repository,) = location["repositories"]
    return text, location, repository


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The tiny lakehouse materialized with `dagster asset materialize` (secrets set), then
    `dagster dev` on the same DAGSTER_HOME, with automation on and a webhook that records."""
    tmp = tmp_path_factory.mktemp("dev")
    landing = write_tiny_landing(tmp / "landing")
    home = tmp / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with WebhookReceiver() as hook:
        env = {k: v for k, v in os.environ.items() if not k.startswith("STEDI_")}
        env.update({
            "STEDI_LANDING_ROOT": str(landing), "STEDI_LAKEHOUSE_ROOT": str(tmp / "lake"),
            "STEDI_PSEUDONYM_SECRET": PSEUDONYM_SECRET,
            "STEDI_ALERT_WEBHOOK_URL": f"{hook.url}/{WEBHOOK_TOKEN}",
            "STEDI_MIN_JOIN_COVERAGE": "0.999",  # a WARN check fails: an alert is sent
            "STEDI_SENSOR_INTERVAL_SECONDS": str(SENSOR_INTERVAL), "DAGSTER_HOME": str(home),
        })
        dagster = os.path.join(os.path.dirname(sys.executable), "dagster")
        cli = subprocess.run([dagster, "asset", "materialize", "-m", "stedi_assets.definitions",
                              "--select", "*"], cwd=REPO_ROOT, env=env, capture_output=True,
                             text=True, timeout=600)
        assert cli.returncode == 0, cli.stderr[-3000:]
        env.pop("DAGSTER_HOME")
        log = tmp / "dagster-dev.log"
        with dagster_dev(REPO_ROOT / "workspace.yaml", home, env, log) as base:
            yield base, landing, hook, log


def _ticks(base: str, location: str, repository: str, sensor: str) -> list[dict]:
    selector = {"repositoryLocationName": location, "repositoryName": repository,
                "sensorName": sensor}
    _, data = graphql(base, TICKS, {"selector": selector})
    return data["sensorOrError"]["sensorState"]["ticks"]


def _wait_for_ticks(base, location, repository, sensor, count, after=0, timeout=240):
    """The ticks of `sensor` once it has completed `count` ticks beyond `after`."""
    deadline = time.monotonic() + timeout
    while True:
        done = [t for t in _ticks(base, location, repository, sensor)
                if t["status"] in ("SKIPPED", "SUCCESS", "FAILURE")]
        if len(done) >= after + count:
            return done
        assert time.monotonic() < deadline, f"{sensor}: only {len(done)} ticks"
        time.sleep(1)


def _runs(base: str) -> list[dict]:
    return graphql(base, RUNS)[1]["runsOrError"]["results"]


def test_webserver_serves_no_secret_value(served):
    base, _, hook, log = served
    texts = []
    text, location, repository = _repository(base)
    texts.append(text)
    resources = {r["name"]: {v["key"]: (v["type"], v["value"]) for v in r["configuredValues"]}
                 for r in repository["allTopLevelResourceDetails"]}
    assert resources["alerts"]["webhook_url"] == ("ENV_VAR", "STEDI_ALERT_WEBHOOK_URL")
    assert resources["privacy"]["pseudonym_secret"] == ("ENV_VAR", "STEDI_PSEUDONYM_SECRET")
    for job in repository["jobs"]:
        selector = {"repositoryLocationName": location["name"],
                    "repositoryName": repository["name"], "pipelineName": job["name"]}
        text, data = graphql(base, CONFIG_SCHEMA, {"selector": selector})
        assert data["runConfigSchemaOrError"]["__typename"] == "RunConfigSchema"
        texts.append(text)
    text, data = graphql(base, ASSETS)
    assert len(data["assetsOrError"]["nodes"]) >= 8
    for node in data["assetsOrError"]["nodes"]:  # each table's Iceberg snapshot, in the UI
        for materialization in node["assetMaterializations"]:
            labels = {e["label"] for e in materialization["metadataEntries"]}
            assert {"dagster/row_count", "dagster/uri", "iceberg/snapshot_id",
                    "iceberg/upstream_snapshots"} <= labels, node["key"]
    texts.append(text)
    text, data = graphql(base, RUNS)
    texts.append(text)
    for run in data["runsOrError"]["results"]:
        texts.append(graphql(base, RUN_LOGS, {"runId": run["runId"]})[0])
    for sensor in repository["sensors"]:
        texts.append(json.dumps(_ticks(base, location["name"], repository["name"],
                                       sensor["name"])))

    # the alert sensor did use the webhook (the EnvVar resolves where the sensor runs)
    deadline = time.monotonic() + 120
    while not hook.received and time.monotonic() < deadline:
        time.sleep(1)
    assert hook.received, "no alert reached the webhook"
    served_text = "\n".join(texts)
    assert len(served_text) > 50_000  # the queries did return the repository's content
    for secret in (PSEUDONYM_SECRET, WEBHOOK_TOKEN, "webhook-token-that-must-stay-hidden"):
        assert secret not in served_text
        assert secret not in log.read_text()


def test_opening_the_ui_launches_nothing_until_a_landing_file_changes(served):
    base, landing, _, _ = served
    _, location, repository = _repository(base)
    names = (location["name"], repository["name"])
    (cli_run,) = _runs(base)  # the `dagster asset materialize` run
    # two intervals of both sensors: the landing sensor compares with what was landed last
    first = len(_wait_for_ticks(base, *names, "landing_files", 2))
    _wait_for_ticks(base, *names, "stedi_automation", 2)
    assert [r["runId"] for r in _runs(base)] == [cli_run["runId"]]

    (landing / "accelerometer" / "accelerometer-2.json").write_text(
        '{"user": "ann@example.com", "timestamp": 9000, "x": 1.0, "y": 0.0, "z": 0.0}\n')
    ticks = _wait_for_ticks(base, *names, "landing_files", 3, after=first)
    landing_runs = [r for r in _runs(base)
                    if {"key": "stedi/trigger", "value": "landing_files"} in r["tags"]]
    assert len(landing_runs) == 1, (landing_runs, ticks)
    assert sorted(k["path"][-1] for k in landing_runs[0]["assetSelection"]) == [
        "accelerometer_landing", "accelerometer_landing_rejects"]
