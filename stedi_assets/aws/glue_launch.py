"""Launch a step's Glue job from Dagster through Pipes, and the settings the deploy shares.

PipesGlueClient starts the run (`start_job_run_params`), hands the job its Pipes context as a
temporary S3 object (PipesS3ContextInjector) and reads the job's materializations, check
results and logs from S3 (PipesS3MessageReader). Failures come back as a dagster Failure whose
description says what went wrong in Glue's own words, never a boto3 traceback.

Both temporary kinds of object live under one prefix of the Pipes bucket (PIPES_PREFIX:
`context/<random>/context.json`, `messages/<random>/<n>.json`) and are deleted when the run
ends, whatever the outcome: the context can carry the pseudonym key and the message chunks
carry check metadata. dagster-aws deletes the context only after a successful run and the
chunks never, hence the two small subclasses below.
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from dagster import (
    AssetExecutionContext,
    ConfigurableResource,
    Failure,
    MaterializeResult,
    MetadataValue,
)
from dagster_aws.pipes import PipesGlueClient, PipesS3ContextInjector, PipesS3MessageReader
from pydantic import PrivateAttr

from stedi_assets.aws.glue_steps import STEP_OUTPUTS
from stedi_assets.io.s3 import boto_config

#: Where the Pipes context objects and message chunks go in the Pipes bucket (temporary).
PIPES_PREFIX = "dagster-pipes/"

#: How PipesGlueClient reports a run that did not succeed.
_RUN_ENDED = re.compile(r"Glue job (?P<job>\S+) run (?P<run>\S+) completed with status "
                        r"(?P<state>\S+) :\n?(?P<message>.*)", re.DOTALL)


def console_url(region: str, job_name: str, run_id: str) -> str:
    return (f"https://{region}.console.aws.amazon.com/gluestudio/home?region={region}"
            f"#/job/{job_name}/run/{run_id}")


class CleanS3ContextInjector(PipesS3ContextInjector):
    """PipesS3ContextInjector whose context object is deleted in every outcome: dagster-aws
    0.29 deletes it after the `yield` without a `finally`, so a failed, stopped or timed-out run
    (or a launch that raises) left the context - and the pseudonym key in its extras - on S3."""

    @contextmanager
    def inject_context(self, context: Any) -> Iterator[Any]:
        with super().inject_context(context) as params:
            try:
                yield params
            finally:  # the parent's own delete runs only on success (a second delete is a no-op)
                self.client.delete_object(Bucket=params["bucket"], Key=params["key"])


class CleanS3MessageReader(PipesS3MessageReader):
    """PipesS3MessageReader whose chunks go under `key_prefix` (not the bucket root) and are
    deleted once the run has ended and the last chunk was read, in every outcome."""

    def __init__(self, *, key_prefix: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.key_prefix = key_prefix

    @contextmanager
    def get_params(self) -> Iterator[Any]:
        with super().get_params() as params:
            chunks = f"{self.key_prefix}{''.join(random.choices(string.ascii_letters, k=30))}"
            params = {**params, "key_prefix": chunks}
            try:
                yield params
            finally:  # read_messages leaves this block after its reader threads have stopped
                delete_prefix(self.client, self.bucket, f"{chunks}/")


def delete_prefix(s3: Any, bucket: str, prefix: str) -> None:
    """Delete every object under `prefix` (a message writer may write chunks 1..n)."""
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})


class GlueJobs(ConfigurableResource):
    """The STEDI Glue jobs: one per step (`<job_prefix><step>`, e.g. stedi-customer_trusted),
    all running the same script. Launch settings first, then what `stedi-deploy` uses."""

    job_prefix: str = "stedi-"
    region: str = "us-east-1"
    glue_endpoint_url: str | None = None
    s3_endpoint_url: str | None = None
    #: Bucket for the Pipes context objects and message chunks (temporary objects under
    #: PIPES_PREFIX, deleted after every run).
    pipes_bucket: str
    #: Arguments every run gets (--stedi-lakehouse-root, --stedi-landing-root, ...).
    run_arguments: dict[str, str] = {}
    #: Sent to the job in the Pipes extras (an S3 object deleted when the run ends, in every
    #: outcome) unless the job
    #: reads it from Secrets Manager (--stedi-pseudonym-secret-id in run_arguments).
    pseudonym_secret: str | None = None
    #: Seconds between reads of the job's message chunks on S3.
    message_interval: float = 10.0
    # -- deployment ----------------------------------------------------------------------------
    scripts_uri: str = ""
    role_arn: str | None = None
    worker_type: str = "G.1X"
    workers: int = 2
    python_modules: str = ""
    glue_version: str = "5.0"
    timeout_minutes: int = 60
    _clients: dict[str, Any] = PrivateAttr(default_factory=dict)

    def client(self, service: str) -> Any:
        """One boto3 client per service, from the standard AWS credential chain."""
        if service not in self._clients:
            endpoint = self.s3_endpoint_url if service == "s3" else self.glue_endpoint_url
            self._clients[service] = boto3.session.Session().client(
                service, region_name=self.region, endpoint_url=endpoint or None,
                config=boto_config())
        return self._clients[service]

    def job_name(self, step: str) -> str:
        return f"{self.job_prefix}{step}"

    def _where(self) -> str:
        return (f"endpoint {self.glue_endpoint_url}" if self.glue_endpoint_url
                else f"region {self.region}")

    def run(self, context: AssetExecutionContext, step: str) -> list[Any]:
        """Run the step's Glue job and return its materializations and check results."""
        job = self.job_name(step)
        pipes = PipesGlueClient(
            client=self.client("glue"),
            context_injector=CleanS3ContextInjector(bucket=self.pipes_bucket,
                                                    client=self.client("s3"),
                                                    key_prefix=f"{PIPES_PREFIX}context/"),
            message_reader=CleanS3MessageReader(bucket=self.pipes_bucket,
                                                client=self.client("s3"),
                                                key_prefix=f"{PIPES_PREFIX}messages/",
                                                interval=self.message_interval),
        )
        extras = {"pseudonym_secret": self.pseudonym_secret} if self.pseudonym_secret else {}
        try:
            invocation = pipes.run(context=context, extras=extras, start_job_run_params={
                "JobName": job, "Arguments": dict(self.run_arguments)})
        except ClientError as exc:
            raise self._refused(job, exc) from None
        except BotoCoreError as exc:
            raise Failure(description=f"cannot reach AWS Glue/S3 ({self._where()}) to run "
                                      f"{job}: {exc}. Check AWS_ENDPOINT_URL, the region and "
                                      "the AWS credentials.") from None
        except RuntimeError as exc:
            raise self._run_failed(job, str(exc)) from None
        results = list(invocation.get_results(implicit_materializations=False))
        reported = {r.asset_key.path[-1] for r in results if isinstance(r, MaterializeResult)}
        missing = [t for t in STEP_OUTPUTS[step] if t not in reported]
        if missing:
            run_id = invocation.metadata.get("AWS Glue Job Run ID")
            raise Failure(
                description=f"Glue job {job} run {run_id.value if run_id else '?'} succeeded "
                            f"but reported no materialization of {', '.join(missing)}. Is the "
                            "job running stedi_assets/aws/glue_job.py (redeploy with "
                            "`stedi-deploy`)? Its log is in CloudWatch (/aws-glue/jobs/).",
                metadata=dict(invocation.metadata))
        return results

    def _refused(self, job: str, exc: ClientError) -> Failure:
        error = exc.response.get("Error", {})
        code, message = error.get("Code", ""), error.get("Message", "")
        operation = getattr(exc, "operation_name", "")
        if code == "EntityNotFoundException" and operation == "StartJobRun":
            return Failure(description=f"Glue job {job} does not exist ({self._where()}). "
                                       "Deploy the jobs first: `stedi-deploy` (same STEDI_* "
                                       "settings).")
        if code == "NoSuchBucket":
            return Failure(description=f"S3 bucket {self.pipes_bucket!r} for the Pipes context "
                                       "and messages does not exist; set "
                                       "STEDI_GLUE_PIPES_BUCKET to an existing bucket.")
        if code == "ConcurrentRunsExceededException":
            return Failure(description=f"Glue job {job} is already running ({message}); wait "
                                       "for that run or raise its MaxConcurrentRuns.")
        return Failure(description=f"AWS refused {operation or 'the request'} for Glue job "
                                   f"{job} ({self._where()}): {code}: {message}")

    def _run_failed(self, job: str, text: str) -> Failure:
        ended = _RUN_ENDED.match(text)
        if not ended:
            return Failure(description=f"Glue job {job} failed: {text}")
        run_id, state = ended["run"], ended["state"]
        message = ended["message"].strip()
        if not message or message == "None":
            message = "Glue gave no error message; see the run's logs"
        return Failure(
            description=f"Glue job {job} run {run_id} ended {state}: {message}",
            metadata={"AWS Glue Job Run ID": run_id, "AWS Glue Job Name": job,
                      "AWS Glue Job Run State": state,
                      "AWS Glue Job Run URL": MetadataValue.url(
                          console_url(self.region, job, run_id))},
        )
