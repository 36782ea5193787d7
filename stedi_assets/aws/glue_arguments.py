"""The Glue job arguments, one codec both ways: Dagster encodes the settings into the
`--stedi-*` run arguments (deployments.build_glue_jobs) and the job script decodes them
(glue_job.parse_args) from the same list, with the defaults declared in settings.py."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from stedi_assets.settings import SHARED_DEVICES
from stedi_assets.variables import default


@dataclass(frozen=True)
class JobArgument:
    #: the Python name; the flag is --stedi-<name with dashes>, decoded as stedi_<name>
    name: str
    #: "text", "share" (float), "switch" (bool as on/off) or "json" (an object)
    kind: str = "text"
    default: str = ""
    choices: tuple[str, ...] | None = None
    help: str | None = None

    @property
    def flag(self) -> str:
        return "--stedi-" + self.name.replace("_", "-")


ARGUMENTS: tuple[JobArgument, ...] = (
    JobArgument("lakehouse_root"),
    JobArgument("landing_root"),
    JobArgument("landing_folders", "json", "{}", help="JSON {source: folder}"),
    JobArgument("consent_as_of_date", "switch", default("STEDI_CONSENT_AS_OF_DATE"),
                ("on", "off")),
    JobArgument("shared_devices", "text", default("STEDI_SHARED_DEVICES"), SHARED_DEVICES),
    JobArgument("min_join_coverage", "share", default("STEDI_MIN_JOIN_COVERAGE")),
    JobArgument("max_reject_share", "share", default("STEDI_MAX_REJECT_SHARE")),
    JobArgument("pseudonym_secret_id", help="AWS Secrets Manager secret holding the pseudonym "
                "key; without it the key comes in the Pipes extras (never as a job argument)"),
    JobArgument("aws_region"),
    JobArgument("s3_endpoint_url"),
    JobArgument("glue_endpoint_url"),
    JobArgument("glue_database", "text", default("STEDI_GLUE_DATABASE"),
                help="catalog database of the Iceberg tables"),
    JobArgument("iceberg_catalog_uri", help="another Iceberg catalog (SQLAlchemy or REST URI)"),
    JobArgument("snapshot_retention", "text", default("STEDI_SNAPSHOT_RETENTION"),
                help="snapshots older than this (7d, 12h, 0) are expired after each commit"),
)


def _text(argument: JobArgument, value: Any) -> str:
    if argument.kind == "switch":
        return "on" if value else "off"
    if argument.kind == "json":
        return json.dumps(value or {}, sort_keys=True)
    return "" if value is None else str(value)


def encode(values: Mapping[str, Any]) -> dict[str, str]:
    """{--stedi-flag: text} for the given values (by name); empty texts are left out."""
    unknown = set(values) - {a.name for a in ARGUMENTS}
    if unknown:
        raise ValueError(f"no Glue job argument for {sorted(unknown)}")
    encoded = {a.flag: _text(a, values[a.name]) for a in ARGUMENTS if a.name in values}
    return {flag: text for flag, text in encoded.items() if text}


def decode(argv: Sequence[str], steps: Sequence[str]) -> argparse.Namespace:
    """The job's arguments as `stedi_<name>` attributes (a share as a float, a switch as its
    on/off text); Glue's own arguments (--JOB_NAME, ...) and the Pipes ones are ignored."""
    parser = argparse.ArgumentParser(prog="stedi-glue-job")
    parser.add_argument("--stedi-step", required=True, choices=sorted(steps))
    for a in ARGUMENTS:
        parser.add_argument(a.flag, default=a.default, choices=a.choices, help=a.help,
                            required=a.name == "lakehouse_root",
                            type=float if a.kind == "share" else str)
    args, _ = parser.parse_known_args(list(argv))
    return args
