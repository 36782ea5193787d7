"""What a Dagster user expects of the code location: the `dg` CLI loads it, every asset links to
its source and says where its table lives, Dagster's column-schema checks sit beside ours, and
importing the package builds nothing."""

import os
import subprocess
import sys
from pathlib import Path

from dagster import AssetKey

from stedi_assets import schemas
from stedi_assets.definitions import Settings, build_definitions

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_importing_the_package_builds_nothing():
    code = ("import sys, stedi_assets; "
            "print(sorted(m for m in sys.modules if m.startswith(('stedi_assets', 'dagster'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "STEDI_ENV": "no-such-env"}, check=True).stdout
    assert out.strip() == "['stedi_assets']"


def test_every_asset_has_code_references_table_name_and_storage(tmp_path):
    defs = build_definitions(Settings.from_env({"STEDI_LAKEHOUSE_ROOT": str(tmp_path / "lk")}))
    graph = defs.get_repository_def().asset_graph
    for table in schemas.TABLES.values():
        metadata = graph.get(AssetKey(table.name)).metadata
        refs = metadata["dagster/code_references"].code_references
        assert refs and all(Path(r.file_path).is_file() and r.line_number > 0 for r in refs)
        assert metadata["dagster/table_name"] == table.name
        assert metadata["storage_uri"] == str(tmp_path / "lk" / table.zone / table.name)
    schema_change = {k for k in graph.asset_check_keys if k.name == "column_schema_change"}
    assert {k.asset_key.path[-1] for k in schema_change} == set(schemas.TABLES)


def test_dg_check_and_list_defs_from_the_repository_root():
    for command in (["check", "defs"], ["list", "defs", "--json"]):
        proc = subprocess.run([str(BIN / "dg"), *command], cwd=REPO_ROOT, capture_output=True,
                              text=True, timeout=300, env={**os.environ, "NO_COLOR": "1"})
        assert proc.returncode == 0, proc.stderr[-2000:]
    assert '"machine_learning_curated"' in proc.stdout
