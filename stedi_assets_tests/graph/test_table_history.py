"""Time travel versus erasure, on the whole graph: history keeps a withdrawn customer until the
snapshots that hold them expire; with STEDI_SNAPSHOT_RETENTION=0 the next run leaves no byte of
them in the consented zones, and, once their landing lines are gone too, anywhere under the
lakehouse. Each materialization records the snapshot it committed and the ones it read, and the
same input gives the same data files (and, re-materialized, no new snapshot)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stedi_assets import schemas
from stedi_assets.io.iceberg_io import LocalIcebergIOManager
from stedi_assets.settings import LOCAL_PSEUDONYM_SECRET
from stedi_assets.transforms.pseudonyms import customer_key
from stedi_assets_tests.support.graph import run_graph
from stedi_assets_tests.support.tiny_landing import write_tiny_landing

EMAIL = "ann@example.com"
KEY = customer_key(EMAIL, LOCAL_PSEUDONYM_SECRET)

#: real processes and repeated whole-graph runs: seconds each
pytestmark = pytest.mark.slow


def _files_holding(folder: Path, *needles: str) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()
                  and any(n.encode() in p.read_bytes() for n in needles))


def _withdraw(landing: Path) -> None:
    """ann's newest record carries no research consent."""
    record = {"customerName": "ann", "email": EMAIL, "phone": 8015551212,
              "birthDay": "1970-01-01", "serialNumber": "serial-a", "registrationDate": 1000,
              "lastUpdateDate": 9000, "shareWithResearchAsOfDate": None}
    (landing / "customer" / "customer-2.json").write_text(json.dumps(record) + "\n")


def _erase_from_landing(landing: Path) -> None:
    """ann asked to be forgotten: every landing line of hers is gone."""
    for path in landing.rglob("*.json"):
        kept = [line for line in path.read_text().splitlines(keepends=True)
                if EMAIL not in line]
        path.write_text("".join(kept))


def _run(landing: Path, lake: Path, retention_seconds: int):
    io = LocalIcebergIOManager(root=str(lake), snapshot_retention_seconds=retention_seconds)
    run = run_graph(landing, lake, io_manager=io)
    assert run.result.success
    return run


def test_withdrawal_then_expiry_erases_the_customer_from_the_consented_zones(tmp_path):
    landing, lake = write_tiny_landing(tmp_path / "landing"), tmp_path / "lake"
    _run(landing, lake, 7 * 86400)
    consented = [lake / "trusted", lake / "curated"]
    assert all(_files_holding(zone, EMAIL, KEY) for zone in consented)

    _withdraw(landing)
    kept = _run(landing, lake, 7 * 86400)  # the default: a week of time travel
    for name in ("customer_trusted", "accelerometer_trusted", "customer_curated",
                 "machine_learning_curated"):
        table = kept.table(name)
        assert EMAIL not in str(table.to_dicts()) and KEY not in str(table.to_dicts()), name
    # ... but the history still holds her, readable by time travel
    assert any(_files_holding(zone, EMAIL, KEY) for zone in consented)
    io = LocalIcebergIOManager(root=str(lake))
    first = io.tables.history("customer_trusted")[0]["snapshot_id"]
    old = io.scan_table("customer_trusted", snapshot_id=first).collect()
    assert EMAIL in old["email"].to_list()

    erased = _run(landing, lake, 0)
    for zone in consented:
        assert _files_holding(zone, EMAIL, KEY) == [], zone
    assert EMAIL.encode() not in (lake / "iceberg_catalog.db").read_bytes()
    assert len(io.tables.history("customer_trusted")) == 1
    expired = erased.metadata("customer_trusted")["iceberg/snapshots_expired"].value
    assert expired >= 1


def test_table_history_from_landing_leaves_no_trace_under_the_lakehouse(tmp_path):
    landing, lake = write_tiny_landing(tmp_path / "landing"), tmp_path / "lake"
    _run(landing, lake, 7 * 86400)
    assert _files_holding(lake, EMAIL, KEY)
    _erase_from_landing(landing)
    _run(landing, lake, 0)
    # landing tables, rejects, trusted, curated, metadata, the landing cache, the catalog
    assert _files_holding(lake, EMAIL, KEY) == []


def test_materializations_record_their_snapshot_and_the_snapshots_they_read(tmp_path):
    landing, lake = write_tiny_landing(tmp_path / "landing"), tmp_path / "lake"
    run = _run(landing, lake, 7 * 86400)
    io = LocalIcebergIOManager(root=str(lake))
    committed = {name: run.metadata(name)["iceberg/snapshot_id"].value
                 for name in schemas.TABLES}
    for name, snapshot_id in committed.items():
        assert snapshot_id == str(io.snapshot(name).snapshot_id), name
    reads = run.metadata("machine_learning_curated")["iceberg/upstream_snapshots"].value
    assert reads == {"accelerometer_trusted": committed["accelerometer_trusted"],
                     "step_trainer_trusted": committed["step_trainer_trusted"]}
    reads = run.metadata("customer_trusted")["iceberg/upstream_snapshots"].value
    assert reads == {"customer_landing": committed["customer_landing"],
                     "customer_landing_rejects": committed["customer_landing_rejects"]}
    # the snapshot summary says the same, for readers outside Dagster
    summary = io.tables.load("customer_trusted").current_snapshot().summary
    assert json.loads(summary["stedi.upstream-snapshots"]) == reads


def test_same_input_gives_identical_data_files_and_no_new_snapshot(sample_landing, tmp_path):
    one = _run(sample_landing, tmp_path / "one", 7 * 86400)
    two = _run(sample_landing, tmp_path / "two", 7 * 86400)
    for name in schemas.TABLES:  # two lakehouses from one input: the same bytes, in order
        files = [LocalIcebergIOManager(root=str(run.lakehouse)).snapshot(name).files
                 for run in (one, two)]
        assert [Path(f).read_bytes() for f in files[0]] == [
            Path(f).read_bytes() for f in files[1]], name
    again = _run(sample_landing, tmp_path / "one", 7 * 86400)  # and again: nothing committed
    for name in schemas.TABLES:
        metadata = again.metadata(name)
        assert metadata["iceberg/new_snapshot"].value is False, name
        assert metadata["iceberg/snapshot_id"].value == one.metadata(name)[
            "iceberg/snapshot_id"].value, name
