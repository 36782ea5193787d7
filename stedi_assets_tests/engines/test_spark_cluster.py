"""Spark's Python workers run the right interpreter although a broken `python3` is first on
PATH: on a local master with no setting at all (LakehouseSpark sets PYSPARK_PYTHON), and on a
real standalone cluster - a master and one worker started from pyspark's own `spark-class` on
127.0.0.1 (ephemeral ports) - with PYSPARK_PYTHON set as the README says, where the graph
builds the tables Polars builds from the same landing files.

The graph runs in a fresh Python process configured only through the environment, as a user
would (STEDI_ENGINE=spark, STEDI_SPARK_MASTER=spark://..., PYSPARK_PYTHON as the README says
for clusters): a session of the test run (spark_session.py) would otherwise be reused by
getOrCreate. Master, worker and driver share this machine, so they share the lakehouse paths.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pyspark
import pytest

from stedi_assets import schemas
from stedi_assets_tests.support.graph_runs import read_table, run_graph
from stedi_assets_tests.support.spark_session import QUICK_JVM_CONF
from stedi_assets_tests.support.tiny_landing import write_tiny_landing

SPARK_HOME = Path(pyspark.__file__).parent
#: Runs the graph (or the step named as argument) in-process, one SparkContext, from the
#: environment alone.
RUN_GRAPH = """
import sys
from dagster import materialize
from stedi_assets import definitions
settings = definitions.Settings.from_env()
defs = definitions.build_definitions(settings)
assets = [*defs.assets, *definitions.all_asset_checks]
if len(sys.argv) > 1:  # one step only
    assets = [a for a in defs.assets if a.node_def.name == sys.argv[1]]
result = materialize(assets, resources=definitions.build_resources(settings),
                     raise_on_error=False)
raise SystemExit(0 if result.success else 1)
"""


def broken_python_path(folder: Path) -> str:
    """PATH with a `python3` that is not the project's (and does not even run) first."""
    folder.mkdir()
    wrapper = folder / "python3"
    wrapper.write_text("#!/bin/sh\necho 'not the project Python' >&2\nexit 7\n")
    wrapper.chmod(0o755)
    return f"{folder}{os.pathsep}{os.environ['PATH']}"


def start(command: list[str], env: dict[str, str], log: Path, ready: str) -> tuple[
        subprocess.Popen, re.Match]:
    """Start a Spark daemon (its own process group) and wait for `ready` in its log."""
    process = subprocess.Popen(command, env=env, stdout=log.open("wb"),
                               stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        found = re.search(ready, log.read_text(errors="replace"))
        if found:
            return process, found
        if process.poll() is not None:
            break
        time.sleep(0.5)
    stop(process)
    raise AssertionError(f"{command[1]} did not start:\n{log.read_text(errors='replace')}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[dict[str, str]]:
    """A standalone master and one worker (2 cores, 1 GB); yields the environment they run in
    (broken python3 first on PATH) and the master URL."""
    base = tmp_path_factory.mktemp("spark-cluster")
    env = {**os.environ, "PATH": broken_python_path(base / "bin"), "SPARK_HOME": str(SPARK_HOME),
           "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_LOG_DIR": str(base / "logs"),
           "SPARK_WORKER_DIR": str(base / "work")}
    env.pop("PYSPARK_PYTHON", None)
    spark_class = str(SPARK_HOME / "bin" / "spark-class")
    master, found = start(
        [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
         "--port", "0", "--webui-port", "0"], env, base / "master.log",
        r"Starting Spark master at (spark://127\.0\.0\.1:\d+)")
    url = found[1]
    try:
        worker, _ = start(
            [spark_class, "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
             "--port", "0", "--webui-port", "0", "--cores", "2", "--memory", "1g",
             "--work-dir", str(base / "work"), url], env, base / "worker.log",
            "Successfully registered with master")
        try:
            yield {"env": env, "master": url, "work": str(base / "work")}
        finally:
            stop(worker)
    finally:
        stop(master)


def test_a_local_master_runs_its_python_workers_with_this_interpreter(tmp_path):
    landing = write_tiny_landing(tmp_path / "landing")
    (landing / "customer" / "broken.json").write_text("not json\n")  # reason from a Python UDF
    env = {**os.environ, "PATH": broken_python_path(tmp_path / "bin"),
           "SPARK_LOCAL_IP": "127.0.0.1", "STEDI_ENGINE": "spark", "STEDI_SPARK_MASTER": "local[1]",
           "STEDI_LANDING_ROOT": str(landing), "STEDI_LAKEHOUSE_ROOT": str(tmp_path / "lake"),
           "STEDI_AUTOMATION": "off", "STEDI_SPARK_CONF": json.dumps(
               {"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "2",
                **QUICK_JVM_CONF})}
    env.pop("PYSPARK_PYTHON", None)
    env.pop("PYSPARK_DRIVER_PYTHON", None)
    run = subprocess.run([sys.executable, "-c", RUN_GRAPH, "land_customer"], env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-4000:]
    [reject] = read_table(tmp_path / "lake", "customer_landing_rejects").to_dicts()
    assert reject["line"] == "not json" and reject["reason"], reject


def test_a_standalone_cluster_builds_the_tables_polars_builds(cluster, tmp_path):
    landing = write_tiny_landing(tmp_path / "landing")  # the real data: engines/test_parity
    env = dict(cluster["env"])
    # The python3 found on PATH is not usable: only PYSPARK_PYTHON can make this pass.
    assert subprocess.run(["python3", "-c", "pass"], env=env,
                          capture_output=True).returncode == 7
    env.update({
        "STEDI_ENGINE": "spark", "STEDI_SPARK_MASTER": cluster["master"],
        "STEDI_LANDING_ROOT": str(landing), "STEDI_LAKEHOUSE_ROOT": str(tmp_path / "lake"),
        "STEDI_LANDING_CACHE": "off", "STEDI_AUTOMATION": "off",
        "PYSPARK_PYTHON": sys.executable,  # the README's setting for a cluster
        "STEDI_SPARK_CONF": json.dumps({
            "spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1",
            "spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "4",
            "spark.executor.memory": "1g", "spark.cores.max": "2", **QUICK_JVM_CONF}),
    })
    run = subprocess.run([sys.executable, "-c", RUN_GRAPH], env=env, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-4000:]
    assert run_graph("polars", landing, tmp_path / "polars").success
    for table_name in schemas.TABLES:
        on_cluster = read_table(tmp_path / "lake", table_name)
        assert on_cluster.equals(read_table(tmp_path / "polars", table_name)), table_name
    assert read_table(tmp_path / "lake", "machine_learning_curated").height > 0
    # The work ran on the cluster's executors, not in a local master of the driver.
    assert list(Path(cluster["work"]).glob("app-*/*/stderr")), "no executor ran on the worker"
