"""Tables are replaced all or nothing, and the same input gives the same bytes."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from stedi_assets import schemas
from stedi_assets.io.parquet import LocalParquetIOManager
from stedi_assets_tests.support.graph import run_graph
from stedi_assets_tests.support.paths import REPO_ROOT

WRITE_A_LARGE_TABLE = """
import sys
import polars as pl
from stedi_assets.io.parquet import LocalParquetIOManager
io = LocalParquetIOManager(root=sys.argv[1])
rows = pl.LazyFrame({"seed": [0]}).select(pl.int_range(0, 400_000_000).alias("timestamp"))
big = rows.with_columns(
    pl.format("user{}@test.com", pl.col("timestamp") % 100_003).alias("user"),
    (pl.col("timestamp") % 3 - 1).cast(pl.Float64).alias("x"),
)
io._write(big, io.table_uri("accelerometer_landing"))
print("finished")
"""


@pytest.mark.slow
def test_sigkill_in_the_middle_of_a_write_keeps_the_previous_version(tmp_path):
    io = LocalParquetIOManager(root=str(tmp_path))
    uri = io.table_uri("accelerometer_landing")
    previous = pl.DataFrame({"user": ["a@x", "b@x"], "timestamp": [1, 2], "x": [0.0, 1.0]})
    io._write(previous, uri)

    versions = tmp_path / "landing" / ".accelerometer_landing.versions"
    before = set(versions.iterdir())
    writer = subprocess.Popen([sys.executable, "-c", WRITE_A_LARGE_TABLE, str(tmp_path)],
                              cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    partial = None
    while time.monotonic() < deadline:  # wait until the new version has bytes on disk
        new = [d for d in versions.iterdir() if d not in before]
        if new and (new[0] / "part-00000.parquet").exists() \
                and (new[0] / "part-00000.parquet").stat().st_size > 1_000_000:
            partial = new[0]
            break
        time.sleep(0.05)
    assert partial is not None, writer.communicate()
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    assert writer.returncode == -signal.SIGKILL

    # readers (and downstream assets) still see exactly the previous version
    assert io.scan_table("accelerometer_landing").collect().equals(previous)
    assert pl.read_parquet(f"{uri}/*.parquet").equals(previous)

    # a re-run succeeds, and the killed writer's partial version is cleaned up
    replacement = previous.with_columns(pl.col("timestamp") + 10)
    io._write(replacement, uri)
    assert io.scan_table("accelerometer_landing").collect().equals(replacement)
    assert not partial.exists()


def test_previous_version_stays_readable_until_the_next_write(tmp_path):
    io = LocalParquetIOManager(root=str(tmp_path))
    uri = Path(io.table_uri("customer_trusted"))
    io._write(pl.DataFrame({"email": ["a"]}), str(uri))
    held = uri.resolve()  # a reader that opened version 1
    io._write(pl.DataFrame({"email": ["b"]}), str(uri))
    assert pl.read_parquet(held / "part-00000.parquet")["email"].to_list() == ["a"]
    io._write(pl.DataFrame({"email": ["c"]}), str(uri))
    assert not held.exists()
    assert len(list((uri.parent / ".customer_trusted.versions").iterdir())) == 2


@pytest.mark.slow
def test_same_input_gives_identical_table_files(sample_landing, tmp_path):
    first = run_graph(sample_landing, tmp_path / "one")
    second = run_graph(sample_landing, tmp_path / "two")
    def files(lakehouse: Path, name: str) -> dict[str, bytes]:
        table = lakehouse / schemas.zone_of(name) / name
        return {p.name: p.read_bytes() for p in sorted(table.glob("*.parquet"))}

    for name in schemas.TABLES:
        assert files(first.lakehouse, name) == files(second.lakehouse, name), name
        assert "part-00000.parquet" in files(first.lakehouse, name), name
