"""The sample generator: deterministic, realistic traits, and the committed sample is its output."""

import json
from pathlib import Path

import polars as pl

from stedi_assets import schemas
from stedi_assets.engines.polars_engine import PolarsEngine
from stedi_assets.generate import generate, main
from stedi_assets.io.landing_files import list_landing_files

SAMPLE_ARGS = {"scale": 0.2, "seed": 42}  # what data/landing was generated with (README)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.json"))}


def test_same_seed_same_bytes_other_seed_other_data(tmp_path):
    generate(tmp_path / "a", scale=0.05, seed=7)
    generate(tmp_path / "b", scale=0.05, seed=7)
    generate(tmp_path / "c", scale=0.05, seed=8)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    assert _files(tmp_path / "a") != _files(tmp_path / "c")


def test_committed_sample_is_the_generator_output(tmp_path, sample_landing):
    generate(tmp_path, **SAMPLE_ARGS)
    assert _files(tmp_path) == _files(sample_landing), (
        "data/landing is stale: regenerate it with "
        "`stedi-generate --scale 0.2 --seed 42 --out data/landing`")
    size = sum(len(b) for b in _files(sample_landing).values())
    assert size < 5_000_000


def test_scale_sets_the_volume(tmp_path):
    counts = generate(tmp_path, scale=1, seed=1)
    assert 1_000 <= counts["customer"] <= 1_100
    assert 80_000 <= counts["accelerometer"] <= 120_000
    assert 25_000 <= counts["step_trainer"] <= 35_000


def test_the_real_data_traits_are_present(tmp_path):
    assert main(["--scale", "0.3", "--seed", "3", "--out", str(tmp_path)]) == 0
    raw = {s: [line for f in list_landing_files(str(tmp_path), s)
               for line in Path(f).read_text().splitlines()]
           for s in ("customer", "accelerometer", "step_trainer")}
    assert len(list_landing_files(str(tmp_path), "accelerometer")) > 1
    customers = [json.loads(line) for line in raw["customer"]]
    absent = sum("shareWithResearchAsOfDate" not in c for c in customers)
    null = sum(c.get("shareWithResearchAsOfDate", 0) is None for c in customers)
    consenting = sum(c.get("shareWithResearchAsOfDate") is not None for c in customers)
    assert absent and null and 0.35 < consenting / len(customers) < 0.65
    assert any(isinstance(c["registrationDate"], float) for c in customers)
    assert any(isinstance(c["phone"], int) for c in customers)
    assert len({c["email"] for c in customers}) < len(customers)  # re-exported duplicates
    assert any('"timeStamp"' in line for line in raw["accelerometer"])
    assert any(line.endswith("},") for line in raw["step_trainer"])
    assert any(".0," in line.split('"timestamp":')[-1][:16] for line in raw["accelerometer"])

    engine = PolarsEngine()
    c = engine.read_landing(list_landing_files(str(tmp_path), "customer"),
                            schemas.TABLES["customer_landing"]).rows
    a = engine.read_landing(list_landing_files(str(tmp_path), "accelerometer"),
                            schemas.TABLES["accelerometer_landing"]).rows
    # timestamps shared by several customers
    assert a.group_by("timestamp").agg(pl.col("user").n_unique().alias("n"))["n"].max() > 1
    # readings taken before the customer's research consent
    early = a.join(c.unique("email"), left_on="user", right_on="email").filter(
        pl.col("timestamp") < pl.col("shareWithResearchAsOfDate"))
    assert early.height > 0
