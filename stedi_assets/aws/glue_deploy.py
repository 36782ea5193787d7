"""Deploy the STEDI Glue jobs: upload the job script and the package, create or update one Glue
job per step. Idempotent: a second deploy uploads the same bytes and leaves unchanged jobs alone
(a changed job is updated in place, never deleted and re-created, so its run history stays).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from stedi_assets.aws.glue_launch import GlueJobs
from stedi_assets.aws.glue_steps import STEP_OUTPUTS
from stedi_assets.io.s3 import S3Store, split_s3_uri

PACKAGE = Path(__file__).resolve().parents[1]
SCRIPT = Path(__file__).with_name("glue_job.py")
SCRIPT_NAME = "stedi_glue_job.py"
ZIP_NAME = "stedi_assets.zip"
#: In the job's package the top-level __init__ does not load the Dagster definitions: the job
#: imports only schemas, transforms, io, engines.protocol and aws.glue_steps (no dagster
#: needed on Glue).
_JOB_PACKAGE_INIT = b'"""STEDI lakehouse modules for the Glue job (no Dagster definitions)."""\n'
_FIXED_TIME = (2020, 1, 1, 0, 0, 0)  # same bytes for the same sources: nothing changes twice


class DeployError(Exception):
    """A deploy problem the user must fix; the message names the job, bucket or key."""


def package_zip() -> bytes:
    """The stedi_assets package as a zip for --extra-py-files, byte-for-byte reproducible."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(PACKAGE.rglob("*.py")):
            name = path.relative_to(PACKAGE.parent).as_posix()
            data = _JOB_PACKAGE_INIT if name == "stedi_assets/__init__.py" else path.read_bytes()
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.external_attr = 0o644 << 16
            archive.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def script_uri(jobs: GlueJobs) -> str:
    return f"{jobs.scripts_uri.rstrip('/')}/{SCRIPT_NAME}"


def package_uri(jobs: GlueJobs) -> str:
    return f"{jobs.scripts_uri.rstrip('/')}/{ZIP_NAME}"


def job_definition(jobs: GlueJobs, step: str) -> dict[str, Any]:
    """The Glue job of one step, as CreateJob/UpdateJob fields (Name aside)."""
    default_arguments = {
        "--stedi-step": step,
        "--extra-py-files": package_uri(jobs),
        "--job-language": "python",
        "--enable-metrics": "true",
        "--enable-continuous-cloudwatch-log": "true",
    }
    if jobs.python_modules:
        default_arguments["--additional-python-modules"] = jobs.python_modules
    return {
        "Role": jobs.role_arn,
        "Description": f"STEDI lakehouse step {step}: writes {', '.join(STEP_OUTPUTS[step])}; "
                       "launched from Dagster through Pipes",
        "Command": {"Name": "glueetl", "ScriptLocation": script_uri(jobs), "PythonVersion": "3"},
        "DefaultArguments": default_arguments,
        "ExecutionProperty": {"MaxConcurrentRuns": 1},
        "MaxRetries": 0,
        "Timeout": jobs.timeout_minutes,
        "GlueVersion": jobs.glue_version,
        "WorkerType": jobs.worker_type,
        "NumberOfWorkers": jobs.workers,
    }


def _differs(wanted: dict[str, Any], existing: dict[str, Any]) -> list[str]:
    """Fields of `wanted` that the existing job does not have as wanted."""
    return sorted(key for key, value in wanted.items() if existing.get(key) != value)


def _upload(jobs: GlueJobs, uri: str, data: bytes) -> None:
    store = S3Store(jobs.region, jobs.s3_endpoint_url)
    bucket, key = split_s3_uri(uri)
    try:
        store.client.put_object(Bucket=bucket, Key=key, Body=data)
    except (ClientError, BotoCoreError) as exc:
        raise DeployError(str(store.explain(exc, uri, "uploading"))) from None


def _glue_error(jobs: GlueJobs, job: str, doing: str, exc: Exception) -> DeployError:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code, message = error.get("Code", ""), error.get("Message", "")
        hint = (" The deploying identity needs glue:GetJob/CreateJob/UpdateJob and "
                "iam:PassRole on STEDI_GLUE_ROLE_ARN." if code in {"AccessDeniedException",
                                                                   "AccessDenied"} else "")
        return DeployError(f"AWS Glue refused {doing} job {job}: {code}: {message}.{hint}")
    return DeployError(f"cannot reach AWS Glue while {doing} job {job} "
                       f"({jobs.glue_endpoint_url or jobs.region}): {exc}")


def deploy(jobs: GlueJobs, log: Callable[[str], None] = print) -> dict[str, str]:
    """Upload script and package, then create or update every step's job.
    Returns {job name: "created" | "updated" | "unchanged"}."""
    if not jobs.role_arn:
        raise DeployError("STEDI_GLUE_ROLE_ARN is not set: the IAM role the Glue jobs run as "
                          "(it must read the landing data, read and write the lakehouse and "
                          "the Pipes bucket, and write CloudWatch logs)")
    _upload(jobs, script_uri(jobs), SCRIPT.read_bytes())
    _upload(jobs, package_uri(jobs), package_zip())
    log(f"uploaded {script_uri(jobs)} and {package_uri(jobs)}")
    glue = jobs.client("glue")
    outcome = {}
    for step in STEP_OUTPUTS:
        name, wanted = jobs.job_name(step), job_definition(jobs, step)
        try:
            existing = glue.get_job(JobName=name)["Job"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "EntityNotFoundException":
                raise _glue_error(jobs, name, "reading", exc) from None
            existing = None
        except BotoCoreError as exc:
            raise _glue_error(jobs, name, "reading", exc) from None
        try:
            if existing is None:
                glue.create_job(Name=name, **wanted)
                outcome[name] = "created"
            elif changed := _differs(wanted, existing):
                glue.update_job(JobName=name, JobUpdate=wanted)
                outcome[name] = f"updated ({', '.join(changed)})"
            else:
                outcome[name] = "unchanged"
        except (ClientError, BotoCoreError) as exc:
            raise _glue_error(jobs, name, "creating" if existing is None else "updating",
                              exc) from None
        log(f"{name}: {outcome[name]}")
    return outcome
