"""Figures reach Dagster as plain Python values, whatever type the engine returned them in.

Over Spark Connect counts come back as numpy.int64 (and comparisons as numpy.bool_); Dagster
rejects those in metadata (DagsterInvalidMetadata) and check results. Here an engine returns
every figure as a numpy value and the whole graph must still run, with plain values in every
materialization and check result; the Glue job's report goes through the same conversion.
"""

from types import SimpleNamespace

import numpy as np
from dagster import MetadataValue

from stedi_assets.aws import glue_job
from stedi_assets.check_rules import RULES
from stedi_assets.engines.polars_engine import PolarsEngine
from stedi_assets.figures import plain
from stedi_assets.transforms import polars as pe
from stedi_assets_tests.support.graph import run_graph

PLAIN_TYPES = (bool, int, float, str, type(None))


def numpy_figures(value):
    """What Spark Connect hands back: numpy scalars instead of Python ones."""
    if isinstance(value, dict):
        return {k: numpy_figures(v) for k, v in value.items()}
    if isinstance(value, bool):
        return np.bool_(value)
    if isinstance(value, int):
        return np.int64(value)
    if isinstance(value, float):
        return np.float64(value)
    return value


class NumpyFigures(PolarsEngine):
    """The Polars engine, but every count and figure comes back as numpy values."""

    @property
    def ops(self):
        ops = SimpleNamespace(**{n: getattr(pe, n) for n in dir(pe) if not n.startswith("_")})
        ops.row_count = lambda frame: np.int64(pe.row_count(frame))
        ops.consent_violations = lambda *a, **kw: numpy_figures(pe.consent_violations(*a, **kw))
        ops.join_coverage = lambda *a, **kw: numpy_figures(pe.join_coverage(*a, **kw))

        def without_exact_duplicates(frame):
            rows, removed = pe.without_exact_duplicates(frame)
            return rows, np.int64(removed)

        ops.without_exact_duplicates = without_exact_duplicates
        return ops


def assert_plain(values, where):
    for name, value in values.items():
        raw = value.value if isinstance(value, MetadataValue) else value
        if isinstance(raw, dict):
            assert_plain(raw, f"{where}/{name}")
        elif isinstance(raw, list):
            assert all(isinstance(v, PLAIN_TYPES) for v in raw), (where, name, raw)
        elif not hasattr(raw, "to_dictionary") and not hasattr(raw, "columns"):
            assert isinstance(raw, PLAIN_TYPES), (where, name, type(raw))


def test_plain_turns_numpy_scalars_into_python_values():
    figures = plain({"rows": np.int64(3), "share": np.float32(0.5), "ok": np.bool_(True),
                     "name": np.str_("x"), "nested": {"n": np.uint8(7)},
                     "sample": (np.int32(1), "a"), "path": MetadataValue.path("/x")})
    assert figures == {"rows": 3, "share": 0.5, "ok": True, "name": "x", "nested": {"n": 7},
                       "sample": [1, "a"], "path": MetadataValue.path("/x")}
    assert [type(figures[k]) for k in ("rows", "share", "ok", "name")] == [int, float, bool,
                                                                             str]
    assert type(figures["nested"]["n"]) is int and type(figures["sample"][0]) is int


def test_numpy_figures_from_the_engine_reach_dagster_as_plain_values(sample_landing, tmp_path):
    run = run_graph(sample_landing, tmp_path / "lake", engine=NumpyFigures())
    assert run.result.success
    assert len(run.materialized()) == 11
    for event in run.result.get_asset_materialization_events():
        assert_plain(event.materialization.metadata, event.asset_key.to_user_string())
    evaluations = run.checks()
    # every check of the graph: the in-step landing checks and the separate check steps
    assert len(evaluations) == len(RULES) == 17
    for key, evaluation in evaluations.items():
        assert type(evaluation.passed) is bool, key
        assert_plain(evaluation.metadata, key)
    assert type(run.metadata("accelerometer_trusted")["duplicate_rows_removed"].value) is int
    coverage = evaluations[("machine_learning_curated", "join_coverage")].metadata
    assert type(coverage["rows_in_table"].value) is int


def test_the_glue_jobs_report_sends_plain_values():
    metadata = glue_job._pipes_metadata({"lines_rejected": np.int64(2),
                                         "unknown_keys": {"extra": np.int64(1)},
                                         "reject_share": np.float64(0.25)})
    assert metadata == {"lines_rejected": 2, "unknown_keys": {"raw_value": {"extra": 1},
                                                              "type": "json"},
                        "reject_share": 0.25}
    assert type(metadata["lines_rejected"]) is int
    assert type(metadata["unknown_keys"]["raw_value"]["extra"]) is int
