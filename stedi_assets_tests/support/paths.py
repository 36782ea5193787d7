"""The one place that knows where things are: the repository, the bundled sample, the fuzz
corpus and the real STEDI reference data beside the repository (../shared/stedi-reference)."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_LANDING = REPO_ROOT / "data" / "landing"
CORPUS = REPO_ROOT / "stedi_assets_tests" / "corpus"
SHARED_REFERENCE = REPO_ROOT.parent / "shared" / "stedi-reference"
REAL_2023 = SHARED_REFERENCE / "udacity-2023-cleaned" / "landing"
REAL_2022 = SHARED_REFERENCE / "udacity-2022-original-partial" / "landing"
