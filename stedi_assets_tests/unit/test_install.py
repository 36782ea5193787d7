"""The installs do not drift: CI runs the README's test command, and constraints.txt pins every
distribution the test environment holds, at the version installed."""

import re
from importlib import metadata

from stedi_assets_tests.support.paths import REPO_ROOT


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_ci_runs_the_readme_test_command_verbatim():
    readme = (REPO_ROOT / "README.md").read_text()
    ci_lines = [line for line in (REPO_ROOT / ".ci" / "run").read_text().splitlines()
                if "pytest" in line and not line.startswith("#")]
    assert len(ci_lines) == 1
    assert ci_lines[0] in readme
    assert "-c constraints.txt" in ci_lines[0]


def test_constraints_pin_every_installed_distribution():
    pins = {}
    for line in (REPO_ROOT / "constraints.txt").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[_normalise(name)] = version
    bootstrap = {"pip", "setuptools", "wheel", "stedi-assets"}
    for dist in metadata.distributions():
        name = _normalise(dist.metadata["Name"])
        if name in bootstrap:
            continue
        assert name in pins, f"{name} is installed but not pinned in constraints.txt"
        assert pins[name] == dist.version, f"{name} {dist.version} installed, {pins[name]} pinned"
