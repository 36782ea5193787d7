"""The Glue launch path against moto's Glue + S3 server on 127.0.0.1 (real HTTP, nothing patched):
stedi-deploy (twice), the glue environment's assets starting their job through
PipesGlueClient, the job's Pipes messages coming back through S3, and failures.

moto's Glue job runs execute nothing and only move STARTING -> RUNNING -> SUCCEEDED (its state
manager chooses how fast, nothing more). So a "worker" thread here plays the job's Pipes side:
it reads the run's arguments back from the server and reports with the job script's own
`open_pipes` and `report`. A FAILED run, which moto cannot produce, comes from a small HTTP
relay in front of moto that marks one job's runs FAILED with an error message once moto has
finished them (so a worker has time to report first).

Whatever the outcome, no Pipes object (context with the pseudonym key, message chunks) may
stay in the bucket: `assert_no_pipes_objects` lists the whole bucket after each run.
"""

import json
import secrets
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from dagster import materialize
from dagster_pipes import PipesContext, decode_param

from stedi_assets.assets.glue import glue_assets
from stedi_assets.aws import glue_job
from stedi_assets.aws.glue_deploy import SCRIPT, package_zip
from stedi_assets.aws.glue_steps import CheckReport, StepResult, TableReport
from stedi_assets.cli import deploy_main
from stedi_assets.definitions import Settings, all_asset_checks, all_assets, build_resources
from stedi_assets.deployments import build_glue_jobs
from stedi_assets_tests.support.s3_helpers import failure_messages, glue_database, new_bucket

pytest_plugins = ["stedi_assets_tests.support.s3_server"]

ROLE = "arn:aws:iam::123456789012:role/stedi-glue"
FAILING_PREFIX = "stedifail-"
GLUE_ERROR = "AnalysisException: [PATH_NOT_FOUND] Path does not exist: s3://x/landing/customer"


@pytest.fixture(scope="module")
def job_runs_progress(s3_endpoint):
    """Runs take ~2 s per state instead of moto's default 'immediately SUCCEEDED'."""
    def state_manager(action: str, body: dict) -> None:
        request = urllib.request.Request(f"{s3_endpoint}/moto-api/state-manager/{action}",
                                         data=json.dumps(body).encode(), method="POST")
        urllib.request.urlopen(request, timeout=10).close()

    state_manager("set-transition", {"model_name": "glue::job_run",
                                     "transition": {"progression": "time", "seconds": 2}})
    yield
    state_manager("unset-transition", {"model_name": "glue::job_run"})


@pytest.fixture(scope="module")
def failing_relay(s3_endpoint):
    """An HTTP relay to moto that reports the runs of `stedifail-*` jobs as FAILED."""
    class Relay(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
            forward = urllib.request.Request(s3_endpoint + self.path, data=body,
                                             headers=headers, method="POST")
            try:
                with urllib.request.urlopen(forward, timeout=30) as response:
                    status, payload = response.status, response.read()
            except urllib.error.HTTPError as error:  # Glue's 400s (EntityNotFound, ...)
                status, payload = error.code, error.read()
            if status == 200 and self.headers.get("X-Amz-Target") == "AWSGlue.GetJobRun":
                document = json.loads(payload)
                if (document["JobRun"]["JobName"].startswith(FAILING_PREFIX)
                        and document["JobRun"]["JobRunState"] == "SUCCEEDED"):
                    document["JobRun"].update(JobRunState="FAILED", ErrorMessage=GLUE_ERROR)
                    payload = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Relay)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def glue_env(endpoint: str, bucket: str, **extra: str) -> dict[str, str]:
    return {"STEDI_ENV": "glue", "STEDI_LAKEHOUSE_ROOT": f"s3://{bucket}/lake",
            "STEDI_LANDING_ROOT": f"s3://{bucket}/landing", "STEDI_PSEUDONYM_SECRET": "glue-k",
            "STEDI_GLUE_ROLE_ARN": ROLE, "AWS_REGION": "us-east-1",
            "STEDI_GLUE_DATABASE": glue_database(f"s3://{bucket}/lake"),
            "AWS_ENDPOINT_URL": endpoint, **extra}


def use_env(monkeypatch, env: dict[str, str]) -> dict[str, str]:
    """The process environment too: the pseudonym secret reaches Dagster as an EnvVar."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def deploy(monkeypatch, env: dict[str, str], capsys) -> str:
    use_env(monkeypatch, env)
    assert deploy_main([]) == 0
    return capsys.readouterr().out


def run_asset(settings: Settings, step: str):
    selected = [a for a in glue_assets(all_assets, all_asset_checks) if a.node_def.name == step]
    return materialize(selected, resources=build_resources(settings), raise_on_error=False)


def assert_no_pipes_objects(s3_client, bucket: str, secret: str) -> None:
    """Only what stedi-deploy put (lake/_glue/) and the landing data remain; no object holds
    the secret."""
    keys = [item["Key"] for page in s3_client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket) for item in page.get("Contents", [])]
    assert all(k.startswith(("lake/_glue/", "landing/")) for k in keys), keys
    for key in keys:
        body = s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert secret.encode() not in body, key


def failures(result) -> list[str]:
    """The descriptions of the dagster Failures raised by the steps (what the UI shows)."""
    return [event.step_failure_data.user_failure_data.description
            for event in result.all_events if event.is_step_failure]


class FakeGlueWorker(threading.Thread):
    """Plays the Glue job's Pipes side for the next run of `job`: reads the run's arguments from
    the server and reports `result` with glue_job.open_pipes/report (S3 context + messages)."""

    def __init__(self, glue_client, job: str, result: StepResult, secret: str = "glue-k"):
        super().__init__(daemon=True)
        self.glue, self.job, self.result, self.error = glue_client, job, result, None
        self.secret = secret
        self.known = {r["Id"] for r in glue_client.get_job_runs(JobName=job)["JobRuns"]}

    def run(self):
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                runs = [r for r in self.glue.get_job_runs(JobName=self.job)["JobRuns"]
                        if r["Id"] not in self.known]
                if runs:
                    argv = [part for k, v in runs[0]["Arguments"].items() for part in (k, v)]
                    # A Glue job is one process; this thread plays several in one: forget the
                    # last run's Pipes context (open_dagster_pipes would return it again).
                    PipesContext.set(None)
                    with glue_job.open_pipes(argv, glue_job.parse_args(argv)) as pipes:
                        assert pipes.extras["pseudonym_secret"] == self.secret
                        glue_job.report(pipes, self.result)
                    return
                time.sleep(0.2)
            raise AssertionError(f"no run of {self.job} started")
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test
            self.error = exc


def test_deploy_uploads_and_creates_the_jobs_then_changes_nothing(
        s3_endpoint, s3_client, glue_client, monkeypatch, capsys):
    bucket = new_bucket(s3_client)
    env = glue_env(s3_endpoint, bucket, STEDI_GLUE_WORKERS="3", STEDI_GLUE_JOB_PREFIX="dep-")
    first = deploy(monkeypatch, env, capsys)
    second = deploy(monkeypatch, env, capsys)

    assert first.count(": created") == 8 and second.count(": unchanged") == 8, second
    script = s3_client.get_object(Bucket=bucket, Key="lake/_glue/stedi_glue_job.py")
    assert script["Body"].read() == SCRIPT.read_bytes()
    package = s3_client.get_object(Bucket=bucket, Key="lake/_glue/stedi_assets.zip")
    assert package["Body"].read() == package_zip()
    job = glue_client.get_job(JobName="dep-machine_learning_curated")["Job"]
    assert job["Command"]["ScriptLocation"] == f"s3://{bucket}/lake/_glue/stedi_glue_job.py"
    assert (job["GlueVersion"], job["WorkerType"], job["NumberOfWorkers"]) == ("5.0", "G.1X", 3)
    assert job["Role"] == ROLE
    assert job["DefaultArguments"]["--stedi-step"] == "machine_learning_curated"
    assert job["DefaultArguments"]["--extra-py-files"] == f"s3://{bucket}/lake/_glue/stedi_assets.zip"


def test_deploy_without_a_role_says_what_is_missing(s3_endpoint, s3_client, monkeypatch,
                                                    capsys):
    env = glue_env(s3_endpoint, new_bucket(s3_client))
    monkeypatch.delenv("STEDI_GLUE_ROLE_ARN", raising=False)
    for name, value in env.items():
        if name != "STEDI_GLUE_ROLE_ARN":
            monkeypatch.setenv(name, value)
    assert deploy_main([]) == 2
    assert "STEDI_GLUE_ROLE_ARN is not set" in capsys.readouterr().err


def test_asset_runs_its_glue_job_and_gets_the_reported_table_and_check(
        s3_endpoint, s3_client, glue_client, job_runs_progress, monkeypatch, capsys):
    bucket, secret = new_bucket(s3_client), f"glue-k-{secrets.token_hex(8)}"
    env = glue_env(s3_endpoint, bucket, STEDI_CONSENT_AS_OF_DATE="on",
                   STEDI_PSEUDONYM_SECRET=secret)
    deploy(monkeypatch, env, capsys)
    result = StepResult(
        [TableReport("customer_trusted", 7, {"email": "string"}, f"s3://{bucket}/lake/trusted/"
                     "customer_trusted", {"duplicate_rows_removed": 0})],
        [CheckReport("customer_trusted", "consent", True, "ERROR", "all consenting",
                     {"violations": 0})])
    worker = FakeGlueWorker(glue_client, "stedi-customer_trusted", result, secret)
    worker.start()
    outcome = run_asset(Settings.from_env(env), "customer_trusted")
    worker.join(timeout=30)
    assert worker.error is None, worker.error
    assert outcome.success, failure_messages(outcome)

    [materialization] = outcome.asset_materializations_for_node("customer_trusted")
    metadata = materialization.metadata
    assert metadata["dagster/row_count"].value == 7
    assert metadata["duplicate_rows_removed"].value == 0
    run_id = metadata["AWS Glue Job Run ID"].value
    assert metadata["AWS Glue Job Run URL"].value.endswith(
        f"#/job/stedi-customer_trusted/run/{run_id}")
    [check] = outcome.get_asset_check_evaluations()
    assert (check.check_name, check.passed) == ("consent", True)

    [run] = [r for r in glue_client.get_job_runs(JobName="stedi-customer_trusted")["JobRuns"]
             if r["Id"] == run_id]
    arguments = run["Arguments"]
    assert arguments["--stedi-step"] == "customer_trusted"
    assert arguments["--stedi-lakehouse-root"] == f"s3://{bucket}/lake"
    assert arguments["--stedi-landing-root"] == f"s3://{bucket}/landing"
    assert arguments["--stedi-consent-as-of-date"] == "on"
    assert arguments["--stedi-s3-endpoint-url"] == s3_endpoint
    assert "--dagster-pipes-context" in arguments and "--dagster-pipes-messages" in arguments
    assert not any(secret in value for value in arguments.values())  # the secret: extras only
    assert run["JobRunState"] == "SUCCEEDED"
    # The temporary objects went under the Pipes prefix (and are gone, below).
    assert decode_param(arguments["--dagster-pipes-context"])["key"].startswith(
        "dagster-pipes/context/")
    assert decode_param(arguments["--dagster-pipes-messages"])["key_prefix"].startswith(
        "dagster-pipes/messages/")
    assert_no_pipes_objects(s3_client, bucket, secret)


def test_a_failed_glue_run_fails_the_asset_with_glues_error_message(
        s3_endpoint, s3_client, failing_relay, job_runs_progress, monkeypatch, capsys):
    env = glue_env(s3_endpoint, new_bucket(s3_client), STEDI_GLUE_JOB_PREFIX=FAILING_PREFIX,
                   AWS_ENDPOINT_URL_GLUE=failing_relay)
    deploy(monkeypatch, env, capsys)
    outcome = run_asset(Settings.from_env(env), "customer_curated")
    assert not outcome.success
    [message] = failures(outcome)
    assert message.startswith(f"Glue job {FAILING_PREFIX}customer_curated run jr_")
    assert message.endswith(f"ended FAILED: {GLUE_ERROR}")
    assert "Traceback" not in message


def test_a_failed_run_leaves_no_context_no_messages_and_no_secret_on_s3(
        s3_endpoint, s3_client, glue_client, failing_relay, job_runs_progress, monkeypatch,
        capsys):
    bucket, secret = new_bucket(s3_client), f"glue-k-{secrets.token_hex(8)}"
    env = glue_env(s3_endpoint, bucket, STEDI_GLUE_JOB_PREFIX=f"{FAILING_PREFIX}clean-",
                   AWS_ENDPOINT_URL_GLUE=failing_relay, STEDI_PSEUDONYM_SECRET=secret)
    deploy(monkeypatch, env, capsys)
    # The job reads its context (with the secret) and writes message chunks, then fails.
    result = StepResult([], [CheckReport("customer_curated", "consent", False, "ERROR",
                                         "violations", {"violations": 3})])
    worker = FakeGlueWorker(glue_client, f"{FAILING_PREFIX}clean-customer_curated", result,
                            secret)
    worker.start()
    outcome = run_asset(Settings.from_env(env), "customer_curated")
    worker.join(timeout=30)
    assert worker.error is None, worker.error
    [message] = failures(outcome)
    assert f"ended FAILED: {GLUE_ERROR}" in message
    assert_no_pipes_objects(s3_client, bucket, secret)


def test_a_job_that_was_never_deployed_says_to_deploy(s3_endpoint, s3_client, monkeypatch):
    bucket = new_bucket(s3_client)
    env = use_env(monkeypatch, glue_env(s3_endpoint, bucket, STEDI_GLUE_JOB_PREFIX="never-"))
    outcome = run_asset(Settings.from_env(env), "customer_trusted")
    [message] = failures(outcome)
    assert message.startswith("Glue job never-customer_trusted does not exist (endpoint http")
    assert "stedi-deploy" in message
    # The launch raised after the context was written: it is gone all the same.
    assert_no_pipes_objects(s3_client, bucket, "glue-k")


def test_a_run_that_reports_nothing_fails_clearly(s3_endpoint, s3_client, job_runs_progress,
                                                   monkeypatch, capsys):
    env = glue_env(s3_endpoint, new_bucket(s3_client), STEDI_GLUE_JOB_PREFIX="silent-")
    deploy(monkeypatch, env, capsys)
    outcome = run_asset(Settings.from_env(env), "land_customer")
    [message] = failures(outcome)
    assert "succeeded but reported no materialization of customer_landing, " \
           "customer_landing_rejects" in message
    assert_no_pipes_objects(s3_client, env["STEDI_LAKEHOUSE_ROOT"][5:].split("/")[0], "glue-k")


def test_missing_pipes_bucket_is_named(s3_endpoint, s3_client, monkeypatch):
    env = use_env(monkeypatch, glue_env(s3_endpoint, new_bucket(s3_client),
                                        STEDI_GLUE_PIPES_BUCKET="no-such-bucket"))
    [message] = failures(run_asset(Settings.from_env(env), "customer_trusted"))
    assert message.startswith("S3 bucket 'no-such-bucket' for the Pipes context")
    assert build_glue_jobs(Settings.from_env(env)).pipes_bucket == "no-such-bucket"
