"""Shared fixtures: where the real reference data is, the sample, and running the graph."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_REFERENCE = REPO_ROOT.parent / "shared" / "stedi-reference"
REAL_2023 = SHARED_REFERENCE / "udacity-2023-cleaned" / "landing"
REAL_2022 = SHARED_REFERENCE / "udacity-2022-original-partial" / "landing"
SAMPLE_LANDING = REPO_ROOT / "data" / "landing"


def _reference(path: Path) -> Path:
    if path.is_dir():
        return path
    if os.environ.get("CI"):
        pytest.fail(f"reference data {path} is missing: CI must run these tests, not skip them")
    pytest.skip(f"reference data {path} is absent (it lives in ../shared beside the repository)")


@pytest.fixture(scope="session")
def real_2023() -> Path:
    return _reference(REAL_2023)


@pytest.fixture(scope="session")
def real_2022() -> Path:
    return _reference(REAL_2022)


@pytest.fixture(scope="session")
def sample_landing() -> Path:
    assert SAMPLE_LANDING.is_dir(), "the bundled sample data/landing is missing"
    return SAMPLE_LANDING
