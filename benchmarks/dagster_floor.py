"""Dagster's own floor for this graph: the same steps with nothing to do, through the CLI.

    python benchmarks/dagster_floor.py \
        --landing ../shared/stedi-reference/udacity-2023-cleaned/landing --reps 5

Prints, per repetition and as medians, the wall time of
`dagster asset materialize --select '*'` for (1) a graph with the STEDI graph's exact shape —
the same step names, asset keys, dependencies and check specs (blocking as in the real graph),
each step yielding its materializations and passing check results without reading, computing
or storing anything — and (2) the STEDI graph itself on `--landing`, into a fresh lakehouse
(`STEDI_LANDING_CACHE=off`, so every file is parsed). The two alternate; both run without
`DAGSTER_HOME` (the CLI's temporary instance, as a first-time user runs them). The shape is
read from `stedi_assets.definitions` once, here, and handed to the no-op graph as JSON, so its
runs do not import the project. Benchmark-only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: Set by main() for the no-op graph's process: the shape of the real graph (JSON).
SHAPE_VARIABLE = "STEDI_FLOOR_SHAPE"


def graph_shape() -> list[dict]:
    """Every executable step of the real graph: its name, asset keys with their dependencies,
    and check specs (name, asset, blocking, additional dependencies)."""
    from stedi_assets.definitions import defs

    steps = []
    for node in defs.resolve_asset_graph().assets_defs:
        if not node.is_executable:
            continue
        steps.append({
            "name": node.node_def.name,
            "assets": [{"key": s.key.to_user_string(),
                        "deps": [d.asset_key.to_user_string() for d in s.deps]}
                       for s in node.specs],
            "checks": [{"name": c.name, "asset": c.asset_key.to_user_string(),
                        "blocking": c.blocking,
                        "deps": [d.asset_key.to_user_string() for d in c.additional_deps]}
                       for c in node.check_specs],
        })
    return sorted(steps, key=lambda s: s["name"])


def noop_definitions(shape: list[dict]):
    """Definitions whose steps are `shape`'s, each doing nothing but report success."""
    import dagster as dg

    def step(spec: dict):
        assets = [dg.AssetSpec(a["key"], deps=a["deps"]) for a in spec["assets"]]
        checks = [dg.AssetCheckSpec(c["name"], asset=c["asset"], blocking=c["blocking"],
                                    additional_deps=c["deps"]) for c in spec["checks"]]

        def body():
            for asset in assets:
                yield dg.MaterializeResult(asset_key=asset.key)
            for check in checks:
                yield dg.AssetCheckResult(asset_key=check.asset_key, check_name=check.name,
                                          passed=True)

        if assets:
            return dg.multi_asset(name=spec["name"], specs=assets, check_specs=checks)(body)
        return dg.multi_asset_check(name=spec["name"], specs=checks)(body)

    nodes = [step(spec) for spec in shape]
    return dg.Definitions(assets=[n for n in nodes if isinstance(n, dg.AssetsDefinition)
                                  and n.keys],
                          asset_checks=[n for n in nodes if not n.keys],
                          executor=dg.in_process_executor)


def _timed(command: list[str], env: dict[str, str], log: Path) -> float:
    started = time.perf_counter()
    with log.open("w") as out:
        done = subprocess.run(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed (exit {done.returncode}); see {log}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--landing", type=Path, required=True)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    dagster = str(Path(sys.executable).with_name("dagster"))
    base = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    with tempfile.TemporaryDirectory(prefix="stedi-floor-") as tmp:
        work = Path(tmp)
        (work / "shape.json").write_text(json.dumps(graph_shape()))
        noop = [dagster, "asset", "materialize", "-f", __file__, "-a", "defs", "--select", "*"]
        noop_env = {**base, SHAPE_VARIABLE: str(work / "shape.json")}
        real = [dagster, "asset", "materialize", "-m", "stedi_assets.definitions",
                "--select", "*"]
        times: dict[str, list[float]] = {"no-op graph (Dagster only)": [], "STEDI graph": []}
        for rep in range(args.reps):
            runs = [("no-op graph (Dagster only)", noop, noop_env)]
            lakehouse = work / f"lakehouse-{rep}"
            runs.append(("STEDI graph", real, {
                **base, "STEDI_LANDING_ROOT": str(args.landing.resolve()),
                "STEDI_LAKEHOUSE_ROOT": str(lakehouse), "STEDI_LANDING_CACHE": "off",
                "STEDI_AUTOMATION": "off"}))
            for name, command, env in runs if rep % 2 == 0 else reversed(runs):
                seconds = _timed(command, env, work / "run.log")
                times[name].append(seconds)
                print(f"rep {rep + 1}: {name}: {seconds:.2f} s", flush=True)
    print("\n| run | wall, median | min | max |\n|---|---:|---:|---:|")
    for name, values in times.items():
        print(f"| {name} | {statistics.median(values):.2f} s | {min(values):.2f} s "
              f"| {max(values):.2f} s |")


if os.environ.get(SHAPE_VARIABLE):  # loaded by `dagster asset materialize -f` (see main)
    defs = noop_definitions(json.loads(Path(os.environ[SHAPE_VARIABLE]).read_text()))

if __name__ == "__main__":
    main()
