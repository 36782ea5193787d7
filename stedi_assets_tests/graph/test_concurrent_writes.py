"""Iceberg commits under concurrency, with real processes on one local lakehouse: readers only
ever see whole snapshots, two graph runs at once leave every table whole and right, and a
writer killed mid-write leaves the table as it was."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from stedi_assets import schemas
from stedi_assets.io.iceberg_io import LocalIcebergIOManager
from stedi_assets.io.lakehouse_sql import run_sql
from stedi_assets_tests.support.graph import run_graph
from stedi_assets_tests.support.paths import REPO_ROOT
from stedi_assets_tests.support.tiny_landing import write_tiny_landing

#: Publishes 40 versions of customer_trusted, each in three data files whose every row says
#: its version; version v has 3 * (100 + v) rows.
WRITE_VERSIONS = """
import sys, tempfile
import polars as pl
from dagster import build_output_context
from stedi_assets.io.iceberg_io import LocalIcebergIOManager
from stedi_assets.io.parquet_parts import ParquetParts
io = LocalIcebergIOManager(root=sys.argv[1])
spill = tempfile.mkdtemp()
for version in range(1, 41):
    parts = []
    for part in range(3):
        path = f"{spill}/v{version}-{part}.parquet"
        pl.DataFrame({"email": [f"v{version}"] * (100 + version),
                      "lastUpdateDate": [version] * (100 + version)}).write_parquet(path)
        parts.append(path)
    frame = ParquetParts(tuple(parts), pl.Schema({"email": pl.String, "lastUpdateDate": pl.Int64}))
    io.handle_output(build_output_context(asset_key="customer_trusted", step_key="w"), frame)
print("done")
"""

#: Runs the whole graph once (in-process, as `dagster asset materialize` does).
RUN_GRAPH = """
import sys
from stedi_assets_tests.support.graph import run_graph
run = run_graph(sys.argv[1], sys.argv[2], raise_on_error=False)
failures = [e.step_failure_data.error.message for e in run.result.all_events if e.is_step_failure]
print("OK" if run.result.success else "FAILED: " + " | ".join(failures))
"""

#: real processes and repeated whole-graph runs: seconds each
pytestmark = pytest.mark.slow


def _python(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=REPO_ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_readers_see_only_whole_snapshots_while_a_writer_commits(tmp_path):
    io = LocalIcebergIOManager(root=str(tmp_path))
    writer = _python(WRITE_VERSIONS, str(tmp_path))
    reads, errors, versions = 0, [], set()
    while writer.poll() is None or reads == 0:
        try:
            # stedi-sql's path (SQL over the pinned snapshot) and the assets' path (a scan)
            counts = run_sql(io, "SELECT count(*) AS n, min(lastUpdateDate) AS lo, "
                                 "max(lastUpdateDate) AS hi FROM customer_trusted")
            frame = io.scan_table("customer_trusted").collect()
        except Exception as exc:  # noqa: BLE001 - every failure is counted, none expected
            if "has not been materialized" not in str(exc):
                errors.append(f"{type(exc).__name__}: {exc}")
            continue
        reads += 1
        n, lo, hi = counts.row(0)
        assert lo == hi and n == 3 * (100 + lo), (n, lo, hi)  # one whole snapshot
        version = frame["lastUpdateDate"].unique().to_list()
        assert len(version) == 1 and frame.height == 3 * (100 + version[0])
        versions.add(version[0])
    out, err = writer.communicate()
    assert writer.returncode == 0 and "done" in out, err[-2000:]
    assert errors == [] and reads > 20
    assert len(versions) > 3  # the reads really overlapped the writes
    assert io.scan_table("customer_trusted").select(pl.len()).collect().item() == 3 * 140


def test_two_graph_runs_at_once_leave_every_table_whole_and_right(tmp_path):
    landing = write_tiny_landing(tmp_path / "landing")
    clean = run_graph(landing, tmp_path / "clean")
    expected = {name: _sorted(clean.table(name)) for name in schemas.TABLES}
    shared = tmp_path / "shared"
    outcomes = []
    for _ in range(10):
        pair = [_python(RUN_GRAPH, str(landing), str(shared)) for _ in range(2)]
        for run in pair:
            out, err = run.communicate(timeout=600)
            assert run.returncode == 0, err[-3000:]
            outcomes.append(out.strip().splitlines()[-1])
        io = LocalIcebergIOManager(root=str(shared))
        for name in schemas.TABLES:  # readable, and equal to the clean run
            assert _sorted(io.scan_table(name).collect()).equals(expected[name]), name
    # a lost commit race is retried; a run that still loses says so (never a traceback)
    assert all(o == "OK" or "other writers committed" in o for o in outcomes), outcomes
    assert outcomes.count("OK") >= 10, outcomes


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(frame.columns, nulls_last=True)


WRITE_A_LARGE_TABLE = """
import sys
import polars as pl
from dagster import build_output_context
from stedi_assets.io.iceberg_io import LocalIcebergIOManager
io = LocalIcebergIOManager(root=sys.argv[1])
rows = pl.LazyFrame({"seed": [0]}).select(pl.int_range(0, 400_000_000).alias("timestamp"))
big = rows.with_columns(
    pl.format("user{}@test.com", pl.col("timestamp") % 100_003).alias("user"),
    (pl.col("timestamp") % 3 - 1).cast(pl.Float64).alias("x"),
)
io.handle_output(build_output_context(asset_key="accelerometer_landing", step_key="w"), big)
print("finished")
"""


def test_a_writer_killed_mid_write_leaves_the_table_as_it_was(tmp_path):
    from dagster import build_output_context

    io = LocalIcebergIOManager(root=str(tmp_path))
    previous = pl.DataFrame({"user": ["a@x", "b@x"], "timestamp": [1, 2], "x": [0.0, 1.0]})
    io.handle_output(build_output_context(asset_key="accelerometer_landing", step_key="s"),
                     previous)
    data = Path(io.table_uri("accelerometer_landing")) / "data"
    before = set(data.iterdir())
    writer = _python(WRITE_A_LARGE_TABLE, str(tmp_path))
    deadline, partial = time.monotonic() + 60, None
    while time.monotonic() < deadline and partial is None:  # the new file has bytes on disk
        partial = next((p for p in data.iterdir() if p not in before
                        and p.stat().st_size > 1_000_000), None)
        time.sleep(0.05)
    assert partial is not None, writer.communicate()
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    assert writer.returncode == -signal.SIGKILL

    # readers (and downstream assets) still see exactly the previous snapshot
    assert io.scan_table("accelerometer_landing").collect().equals(previous)
    assert len(io.tables.history("accelerometer_landing")) == 1
    # a re-run commits; the killed writer's file is no snapshot's (removed once a day old)
    replacement = previous.with_columns(pl.col("timestamp") + 10)
    io.handle_output(build_output_context(asset_key="accelerometer_landing", step_key="s"),
                     replacement)
    assert io.scan_table("accelerometer_landing").collect().equals(replacement)
    assert str(partial) not in io.snapshot("accelerometer_landing").files
    # once the orphan is older than a day, the next commit's maintenance deletes it
    two_days_ago = time.time() - 2 * 86400
    os.utime(partial, (two_days_ago, two_days_ago))
    io.handle_output(build_output_context(asset_key="accelerometer_landing", step_key="s"),
                     previous)
    assert not partial.exists()
    assert io.scan_table("accelerometer_landing").collect().equals(previous)
