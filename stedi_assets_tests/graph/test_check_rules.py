"""The check rules live once (`check_rules`): the local graph's check specs are its rules, and the
local assets and the Glue steps (with the Pipes report the job sends) give the same outcome for
every check: name, passed, severity, the result's description and every metadata figure."""

import subprocess
import sys

import pytest
from dagster import AssetCheckSeverity

from stedi_assets import check_rules
from stedi_assets.aws import glue_job, glue_steps
from stedi_assets.definitions import all_asset_checks, all_assets
from stedi_assets.resources import CheckSettings, PrivacySettings
from stedi_assets.settings import LOCAL_PSEUDONYM_SECRET
from stedi_assets_tests.aws.test_glue_steps import run_steps
from stedi_assets_tests.support.graph import run_graph

#: Settings under which every kind of outcome occurs on the sample: the defaults (all pass),
#: and thresholds no data meets with every privacy option on (WARNs fail, texts change).
SETTINGS = {
    "defaults": dict(min_join_coverage=0.5, max_reject_share=0.01, consent_as_of_date=False,
                     shared_devices="include"),
    "strict": dict(min_join_coverage=1.0, max_reject_share=0.0, consent_as_of_date=True,
                   shared_devices="exclude"),
}


def test_every_local_check_spec_is_a_rule_and_every_rule_is_checked():
    specs = {(s.asset_key.path[-1], s.name): s
             for d in [*all_assets, *all_asset_checks] for s in d.check_specs}
    assert set(specs) == set(check_rules.RULES)
    for key, rule in check_rules.RULES.items():
        assert (specs[key].blocking, specs[key].description) == (rule.blocking,
                                                                 rule.description), key
        assert rule.severity in (check_rules.ERROR, check_rules.WARN), key
        assert AssetCheckSeverity(rule.severity).value == rule.severity


def test_check_rules_import_without_dagster():
    blocker = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'dagster' or name.startswith('dagster'):\n"
        "            raise ImportError('no dagster')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import stedi_assets.check_rules, stedi_assets.aws.glue_steps\n"
    )
    done = subprocess.run([sys.executable, "-c", blocker], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr


class RecordingPipes:
    """What the Glue job sends through Pipes for each check."""

    def __init__(self):
        self.checks: dict[tuple[str, str], dict] = {}

    def report_asset_materialization(self, **_):
        pass

    def report_asset_check(self, asset_key, check_name, passed, severity, metadata):
        self.checks[(asset_key, check_name)] = {"passed": passed, "severity": severity,
                                                "metadata": metadata}


def _pipes_value(value):
    return value["raw_value"] if isinstance(value, dict) else value


@pytest.mark.parametrize("name", SETTINGS)
def test_local_and_glue_give_the_same_outcome_for_every_check(sample_landing, tmp_path, name):
    settings = SETTINGS[name]
    local = run_graph(
        sample_landing, tmp_path / "local",
        checks=CheckSettings(min_join_coverage=settings["min_join_coverage"],
                             max_reject_share=settings["max_reject_share"]),
        privacy=PrivacySettings(pseudonym_secret=LOCAL_PSEUDONYM_SECRET,
                                consent_as_of_date=settings["consent_as_of_date"],
                                shared_devices=settings["shared_devices"]))
    results = run_steps(sample_landing, tmp_path / "glue", glue_steps.StepOptions(
        pseudonym_secret=LOCAL_PSEUDONYM_SECRET, **settings))
    glue = {(c.table, c.name): c for r in results for c in r.checks}
    pipes = RecordingPipes()
    for result in results:
        glue_job.report(pipes, result)

    local_checks = local.checks()
    assert set(local_checks) == set(glue) == set(pipes.checks) == set(check_rules.RULES)
    for key, expected in local_checks.items():
        figures = {k: v.value for k, v in expected.metadata.items()}
        mine = glue[key]
        assert (mine.passed, mine.severity, mine.description, mine.metadata) == (
            expected.passed, expected.severity.value, expected.description, figures), key
        sent = pipes.checks[key]
        described = {} if expected.description is None else {"description":
                                                             expected.description}
        assert (sent["passed"], sent["severity"]) == (expected.passed, expected.severity.value)
        assert {k: _pipes_value(v) for k, v in sent["metadata"].items()} == {
            **described, **figures}, key
    if name == "strict":  # the WARN checks failed: the comparison covered failing outcomes too
        assert not local_checks[("machine_learning_curated", "join_coverage")].passed
