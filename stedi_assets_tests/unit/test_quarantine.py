"""Every input line accounted for: the fuzz corpus and both real data versions, end to end."""

import shutil
from pathlib import Path

import polars as pl
from dagster import AssetCheckSeverity

from stedi_assets import schemas
from stedi_assets.resources import CheckSettings
from stedi_assets_tests.support.graph import run_graph
from stedi_assets_tests.support.paths import CORPUS

#: (file, line) -> start of the quarantine reason; see corpus/EXPECTED.md
EXPECTED_REJECTS = {
    ("accelerometer-wrong-type.json", 2): "x: abc is not a valid float64",
    ("accelerometer-invalid-json.json", 2): "invalid JSON",
    ("accelerometer-invalid-json.json", 3): "invalid JSON",
    ("accelerometer-invalid-json.json", 4): "invalid JSON",
    ("accelerometer-missing-keys.json", 2): "missing required key 'user'",
    ("accelerometer-missing-keys.json", 3): "missing required key 'timestamp'",
    ("accelerometer-missing-keys.json", 4): "missing required key 'user'",
    ("accelerometer-bom-blank-crlf.json", 2): "blank line",
    ("accelerometer-bom-blank-crlf.json", 3): "blank line",
    ("accelerometer-mixed.json", 2): "not UTF-8 text",
    ("accelerometer-mixed.json", 3): "not a JSON object",
    ("accelerometer-mixed.json", 4): "not a JSON object",
    ("accelerometer-mixed.json", 5): "timestamp: nested",
    ("accelerometer-mixed.json", 6): "timestamp: 1655564444502.5 is not a valid int64",
    ("accelerometer-structure.json", 2): "duplicate key 'x'",
    ("accelerometer-structure.json", 3): "too deeply nested (more than 100 levels)",
}


def _landing_with_corpus(tmp_path: Path, sample: Path) -> Path:
    landing = tmp_path / "landing"
    shutil.copytree(sample, landing)
    for f in CORPUS.glob("*.json"):
        shutil.copy(f, landing / "accelerometer" / f.name)
    return landing


def test_fuzz_corpus_lands_with_every_defect_quarantined(tmp_path, sample_landing):
    landing = _landing_with_corpus(tmp_path, sample_landing)
    run = run_graph(landing, tmp_path / "lake")
    assert run.result.success
    rejects = run.table("accelerometer_landing_rejects")
    found = {(Path(r["file"]).name, r["line_number"]): r["reason"] for r in rejects.to_dicts()}
    assert set(found) == set(EXPECTED_REJECTS)
    for where, reason in EXPECTED_REJECTS.items():
        assert found[where].startswith(reason), (where, found[where])
    # the raw text is kept as it was read
    bad_type = rejects.filter(pl.col("line_number") == 2,
                              pl.col("file").str.ends_with("wrong-type.json"))
    assert '"x":"abc"' in bad_type["line"].item()
    corpus_rows = run.table("accelerometer_landing").filter(pl.col("user") == "ann@x.com")
    assert corpus_rows.height == 10  # the good lines of the six files: 2+1+1+2+2+2
    meta = run.metadata("accelerometer_landing")
    assert meta["unknown_keys"].value == {"app": 1}
    checks = run.checks()
    conservation = checks[("accelerometer_landing", "conservation")]
    assert conservation.passed and conservation.metadata["unaccounted"].value == 0
    assert conservation.metadata["lines_rejected"].value == len(EXPECTED_REJECTS)
    assert checks[("accelerometer_landing", "quarantine_rate")].passed  # 14 of ~19k lines


def test_quarantine_rate_warns_on_a_broken_export(tmp_path, sample_landing):
    landing = _landing_with_corpus(tmp_path, sample_landing)
    run = run_graph(landing, tmp_path / "lake", raise_on_error=False,
                    checks=CheckSettings(max_reject_share=0.0001))
    rate = run.checks()[("accelerometer_landing", "quarantine_rate")]
    assert not rate.passed and rate.severity == AssetCheckSeverity.WARN
    assert rate.metadata["lines_rejected"].value == len(EXPECTED_REJECTS)
    assert "machine_learning_curated" in run.materialized()  # a WARN blocks nothing


def test_2022_original_data_lands_with_every_line_accounted_for(real_2022, tmp_path):
    run = run_graph(real_2022, tmp_path / "lake")
    assert run.result.success
    for table in schemas.LANDING_TABLES:
        check = run.checks()[(table.name, "conservation")]
        assert check.passed, table.name
        figures = {k: v.value for k, v in check.metadata.items()}
        assert figures["lines_in_files"] == figures["rows_landed"] + figures["lines_rejected"]
    assert run.table("step_trainer_landing").height == 239_760
    assert run.table("accelerometer_landing").height == 25_133
    assert run.table("customer_landing").height == 999
