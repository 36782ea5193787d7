"""Materialize the whole STEDI graph with each engine and print wall time and peak memory.

    python benchmarks/engines.py        # bundled sample, generated SF5, real 2023 data, 2023 x10
    python benchmarks/engines.py --datasets sample,generated --generated-scale 20
    python benchmarks/engines.py --landing DIR --datasets real --engines polars

Each (engine, dataset) run is a fresh subprocess (so Spark's JVM start is counted, as it is
in `dagster asset materialize`). Peak memory is the largest sum of RSS over the run's process
tree (Python + the Spark JVM + Python workers), sampled every 50 ms from /proc, and the
largest single process seen (getrusage(RUSAGE_CHILDREN) cannot be used per run: it keeps the
maximum over every child the benchmark has waited for).

The larger set replicates every real line `--scale` times with shifted emails, serial numbers
and timestamps, so each copy joins only with itself and every table grows exactly `scale`-fold
(stedi-generate, when this branch has it, is the other way to get a large set).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REAL_2023 = REPO.parent / "shared" / "stedi-reference" / "udacity-2023-cleaned" / "landing"
SAMPLE = REPO / "data" / "landing"
DATASETS = ("sample", "generated", "real", "replica")
SHIFT_MS = 10**10  # ~115 days: copies never share a timestamp
SPARK_CONF = {"spark.sql.shuffle.partitions": "8", "spark.ui.enabled": "false",
              "spark.ui.showConsoleProgress": "false", "spark.driver.memory": "2g"}


def replicate(source: Path, out: Path, scale: int) -> Path:
    """Write `scale` shifted copies of every landing line of `source` under `out`."""
    for folder in sorted(p for p in source.iterdir() if p.is_dir()):
        target = out / folder.name
        target.mkdir(parents=True, exist_ok=True)
        for path in sorted(folder.iterdir()):
            records = [json.loads(line.strip().rstrip(",")) for line in path.open()
                       if line.strip()]
            with (target / path.name).open("w") as fh:
                for copy in range(scale):
                    for rec in records:
                        fh.write(json.dumps(_shifted(rec, copy)) + "\n")
    return out


def _shifted(rec: dict, copy: int) -> dict:
    if copy == 0:
        return rec
    rec = dict(rec)
    for key in ("email", "user"):
        if isinstance(rec.get(key), str):
            rec[key] = f"copy{copy}.{rec[key]}"
    if rec.get("serialNumber") is not None:
        rec["serialNumber"] = f"{rec['serialNumber']}-copy{copy}"
    for key in ("timestamp", "timeStamp", "sensorReadingTime"):
        if isinstance(rec.get(key), int | float):
            rec[key] = int(rec[key]) + copy * SHIFT_MS
    return rec


def _tree_rss_kb(root: int) -> tuple[int, int]:
    """(sum, largest) of VmRSS over `root` and all its descendants (Linux /proc)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        children = [c for c, p in parents.items() if p == pid and c not in tree]
        tree.update(children)
        frontier.extend(children)
    sizes = [0]
    for pid in tree:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    sizes.append(int(line.split()[1]))
        except OSError:
            continue
    return sum(sizes), max(sizes)


def measure(engine: str, landing: Path, lakehouse: Path) -> dict:
    env = {**os.environ, "SPARK_LOCAL_IP": os.environ.get("SPARK_LOCAL_IP", "127.0.0.1")}
    cmd = [sys.executable, __file__, "--run-one", engine, str(landing), str(lakehouse)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    peak = largest = 0
    while proc.poll() is None:
        total, biggest = _tree_rss_kb(proc.pid)
        peak, largest = max(peak, total), max(largest, biggest)
        time.sleep(0.05)
    wall = time.perf_counter() - start
    out = proc.stdout.read() if proc.stdout else ""
    if proc.returncode:
        raise SystemExit(f"{engine} run on {landing} failed (exit {proc.returncode})")
    result = json.loads(out.strip().splitlines()[-1])
    return {"wall_s": wall, "peak_tree_mb": peak / 1024, "max_single_mb": largest / 1024,
            **result}


def run_one(engine: str, landing: str, lakehouse: str) -> None:
    """In the subprocess: materialize everything as `definitions` wires it; print counts."""
    sys.path.insert(0, str(REPO))
    from dagster import materialize

    from stedi_assets import definitions
    from stedi_assets.io.iceberg_io import scan_local_table
    from stedi_assets.transforms import polars as polars_ops

    env = {"STEDI_ENGINE": engine, "STEDI_LANDING_ROOT": landing,
           "STEDI_LAKEHOUSE_ROOT": lakehouse, "STEDI_SPARK_CONF": json.dumps(SPARK_CONF)}
    settings = definitions.Settings.from_env(env)
    defs = definitions.build_definitions(settings)
    start = time.perf_counter()
    result = materialize([*defs.assets, *definitions.all_asset_checks],
                         resources=definitions.build_resources(settings))
    graph_s = time.perf_counter() - start
    rows = {t: polars_ops.row_count(scan_local_table(lakehouse, t))
            for t in ("machine_learning_curated", "accelerometer_trusted")}
    print(json.dumps({"ok": result.success, "graph_s": graph_s, **rows}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DATASETS),
                        help=f"comma separated, from {DATASETS}")
    parser.add_argument("--landing", type=Path, default=REAL_2023, help="the `real` dataset")
    parser.add_argument("--scale", type=int, default=10, help="replica size of `real`")
    parser.add_argument("--generated-scale", type=float, default=5,
                        help="stedi-generate --scale of the `generated` dataset")
    parser.add_argument("--engines", default="polars,spark")
    parser.add_argument("--run-one", nargs=3, metavar=("ENGINE", "LANDING", "LAKEHOUSE"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_one:
        run_one(*args.run_one)
        return
    with tempfile.TemporaryDirectory(prefix="stedi-bench-") as tmp:
        chosen = [d for d in args.datasets.split(",") if d]
        if set(chosen) - set(DATASETS):
            raise SystemExit(f"unknown datasets {sorted(set(chosen) - set(DATASETS))}")
        real = args.landing.name if args.landing != REAL_2023 else "real 2023"
        datasets = []
        for dataset in chosen:
            if dataset == "sample":
                datasets.append(("bundled sample (SF0.2)", SAMPLE))
            elif dataset == "generated":
                out = Path(tmp) / "generated"
                subprocess.run([sys.executable, "-m", "stedi_assets.generate", "--scale",
                                str(args.generated_scale), "--seed", "42", "--out", str(out)],
                               check=True, cwd=REPO, stdout=subprocess.DEVNULL)
                datasets.append((f"generated SF{args.generated_scale:g}", out))
            elif dataset == "real":
                datasets.append((real, args.landing))
            elif args.scale > 1:
                datasets.append((f"{real} x{args.scale}",
                                 replicate(args.landing, Path(tmp) / "replica", args.scale)))
        header = ("| engine | dataset | wall time (s) | graph only (s) | peak RSS, process "
                  "tree (MB) | largest process (MB) | machine_learning_curated rows |")
        print(header)
        print("|" + "---|" * 7)
        for name, landing in datasets:
            for engine in args.engines.split(","):
                m = measure(engine, landing, Path(tmp) / f"lake-{engine}-{len(datasets)}-"
                                              f"{name.replace(' ', '_')}")
                print(f"| {engine} | {name} | {m['wall_s']:.1f} | {m['graph_s']:.1f} | "
                      f"{m['peak_tree_mb']:.0f} | {m['max_single_mb']:.0f} | "
                      f"{m['machine_learning_curated']:,} |", flush=True)


if __name__ == "__main__":
    main()
