"""Shared fixtures (the sample and the real reference data) and the test layers' markers.

Tests live in layers: unit/ (pure functions, one module or resource at a time), graph/ (the
Dagster graph end to end on Polars), engines/ (Spark against Polars), aws/ (S3 and Glue against
moto's server on 127.0.0.1), ui/ (a real `dagster dev`, some with headless Chromium); support/
holds what they share. Markers are given here from the layer and the fixtures a test uses:
spark (runs Spark), s3 (moto's S3/Glue server), glue (the Glue path), ui (dagster dev / a
browser), reference (the real STEDI data); `slow` (seconds on its own) is written on the test.
The fast loop, `pytest -m "not spark and not ui and not s3 and not reference and not slow"`,
leaves them out; plain `pytest` (CI) runs everything.
"""

import inspect
import os
from pathlib import Path

import pytest

from stedi_assets_tests.support.paths import REAL_2022, REAL_2023, SAMPLE_LANDING

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

#: fixture -> marker of every test that uses it
FIXTURE_MARKERS = {"spark": "spark", "real_2023": "reference", "real_2022": "reference",
                   "s3_endpoint": "s3"}
#: layer folder -> marker of every test in it
LAYER_MARKERS = {"engines": "spark", "aws": "s3", "ui": "ui"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        path = Path(str(item.fspath))
        layer = path.parent.name
        names = {LAYER_MARKERS.get(layer)}
        names |= {m for f, m in FIXTURE_MARKERS.items() if f in item.fixturenames}
        if "glue" in path.stem:
            names.add("glue")
        # a test that runs Spark names it: in its module, its parameters or its own code
        if "spark" in path.stem or "spark" in item.name or "spark" in _function_source(item):
            names.add("spark")
        if "REAL_2023" in _source(path) or "REAL_2022" in _source(path):
            names.add("reference")
        for name in names - {None}:
            item.add_marker(name)


_SOURCES: dict[Path, str] = {}


def _function_source(item) -> str:
    function = getattr(item, "function", None)
    try:
        return inspect.getsource(function).lower() if function else ""
    except (OSError, TypeError):
        return ""


def _source(path: Path) -> str:
    if path not in _SOURCES:
        _SOURCES[path] = path.read_text()
    return _SOURCES[path]


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
