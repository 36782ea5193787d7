"""The checks' customer-sized sets kept between runs (engines/kept_results.py): found again by
a later process for the same customer files and secret, never for other files, another
secret or other code, one set per name on disk, and a broken file only recomputed."""

from __future__ import annotations

import os

import polars as pl
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from stedi_assets.engines import kept_results
from stedi_assets.engines.kept_results import KeptResults
from stedi_assets.engines.polars_engine import PolarsEngine
from stedi_assets.transforms import polars as pe
from stedi_assets.transforms.figures import EarlierCustomers
from stedi_assets.transforms.polars import figures
from stedi_assets_tests.graph.test_incremental_checks import landing
from stedi_assets_tests.graph.test_incremental_customers import CUSTOMERS
from stedi_assets_tests.graph.test_incremental_tables import customer_record
from stedi_assets_tests.unit.test_transforms_polars import customers

LANDING = customers(
    {"email": "Ann@x.io", "serialNumber": "s1", "lastUpdateDate": 1,
     "shareWithResearchAsOfDate": 1},
    {"email": "bob@x.io", "serialNumber": "s2", "lastUpdateDate": 1,
     "shareWithResearchAsOfDate": 1},
    {"email": "cy@x.io", "serialNumber": "s3", "lastUpdateDate": 1},
)
SECRET = "kept-results-secret"
STEPS = pl.DataFrame({"serialNumber": ["s1", "s3", "s3"], "sensorReadingTime": [1, 2, 3]})


@pytest.fixture
def new_process():
    """What a later run's process starts with: nothing remembered in memory."""
    def forget() -> None:
        figures._CONSENTING.clear()
        figures._UPDATED.clear()
        figures._DEVICES.clear()

    forget()
    yield forget
    forget()


def computing_fails(monkeypatch) -> None:
    def fail(*args, **kwargs):
        raise AssertionError("computed although kept")

    monkeypatch.setattr(figures, "latest_customer_records", fail)
    monkeypatch.setattr(figures, "non_consenting_devices", fail)


def write(path, frame: pl.LazyFrame):
    frame.collect().write_parquet(path)
    return pl.scan_parquet(path)


def test_a_later_run_finds_the_sets_kept_for_the_same_customer_files(
        tmp_path, new_process, monkeypatch):
    kept = KeptResults(tmp_path / "cache" / "_checks", tmp_path / "cache")
    landing = write(tmp_path / "customers.parquet", LANDING)
    consenting = pe.consenting_customers(landing, "secret-1", None, kept).collect()
    shared = pe.shared_device_rows(STEPS.lazy(), landing, None, kept)
    assert sorted(consenting["email"]) == ["ann@x.io", "bob@x.io"]
    assert shared == {"rows_checked": 3, "shared_device_rows": 2, "shared_devices": 1}
    assert sorted(p.name.split("-")[0] for p in kept.folder.iterdir()) == [
        "consenting", "non_consenting_devices"]
    new_process()
    computing_fails(monkeypatch)
    again = pe.consenting_customers(pl.scan_parquet(tmp_path / "customers.parquet"),
                                    "secret-1", None, kept).collect()
    assert again.equals(consenting)
    assert pe.shared_device_rows(STEPS.lazy(), landing, None, kept) == shared


def test_other_files_another_secret_or_other_code_compute_anew(
        tmp_path, new_process, monkeypatch):
    kept = KeptResults(tmp_path / "_checks", tmp_path)
    old = write(tmp_path / "old.parquet", LANDING)
    before = pe.consenting_customers(old, "secret-1", None, kept).collect()
    new_process()
    # bob withdraws: another file, another set; only the latest set stays on disk
    withdrawn = customers({"email": "bob@x.io", "serialNumber": "s2", "lastUpdateDate": 2})
    new = write(tmp_path / "new.parquet", pl.concat([LANDING, withdrawn]))
    after = pe.consenting_customers(new, "secret-1", None, kept).collect()
    assert sorted(before["email"]) == ["ann@x.io", "bob@x.io"]
    assert after["email"].to_list() == ["ann@x.io"]
    [only] = list(kept.folder.glob("consenting-*"))
    assert pl.read_parquet(only).equals(after)
    new_process()
    other_secret = pe.consenting_customers(new, "secret-2", None, kept).collect()
    assert other_secret["customerKey"].to_list() != after["customerKey"].to_list()
    new_process()
    monkeypatch.setattr(kept_results, "figures_version", lambda: "another version")
    calls = []
    original = figures.latest_customer_records
    monkeypatch.setattr(figures, "latest_customer_records",
                        lambda *a: calls.append(1) or original(*a))
    assert pe.consenting_customers(new, "secret-2", None, kept).collect().equals(other_secret)
    assert calls == [1]


def test_a_broken_kept_file_is_recomputed_and_replaced(tmp_path, new_process):
    kept = KeptResults(tmp_path / "_checks", tmp_path)
    landing = write(tmp_path / "customers.parquet", LANDING)
    first = pe.consenting_customers(landing, "s", None, kept).collect()
    [path] = list(kept.folder.glob("consenting-*"))
    path.write_bytes(b"not parquet")
    new_process()
    assert pe.consenting_customers(landing, "s", None, kept).collect().equals(first)
    assert pl.read_parquet(path).equals(first)


def test_nothing_is_kept_through_a_linked_cache_folder(tmp_path, new_process):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, tmp_path / "cache")
    kept = KeptResults(tmp_path / "cache" / "_checks", tmp_path / "cache")
    landing = write(tmp_path / "customers.parquet", LANDING)
    assert pe.consenting_customers(landing, "s", None, kept).collect().height == 2
    assert not any(elsewhere.iterdir())


def test_the_polars_engine_keeps_them_beside_its_landing_cache_only(tmp_path):
    assert PolarsEngine().kept_results is None
    kept = PolarsEngine(landing_cache=str(tmp_path / "cache")).kept_results
    assert kept.folder == tmp_path / "cache" / "_checks"


# -- a kept set updated from the customers who changed (an incremental consent check) -----

#: a customer line quarantined (a bad value) still withdraws its readable email's consent
_customer_line = st.one_of(customer_record, customer_record.map(
    lambda r: {**r, "lastUpdateDate": "not a date"}))


def _files(folder, name: str, records: list[dict]) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """The customer landing table and its rejects as lakehouse files (scanned, as a run
    loads them)."""
    rows, rejects = landing(records, "customer_landing")
    folder.mkdir(parents=True, exist_ok=True)
    return write(folder / f"{name}.parquet", rows.lazy()), \
        write(folder / f"{name}-rejects.parquet", rejects.lazy())


def _earlier(then: tuple, now: tuple, changed_records: list[dict]) -> EarlierCustomers:
    changed = pe.customer_identities(*(f.lazy() for f in landing(changed_records,
                                                                 "customer_landing")))
    records = pe.restrict_customers(now[0], changed)
    return EarlierCustomers(*then, changed, pe.consenting_customers(records, SECRET, now[1]))


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(then=st.lists(_customer_line, min_size=1, max_size=5),
       gone=st.sets(st.integers(0, 4), max_size=2),
       added=st.lists(_customer_line, max_size=3))
def test_a_kept_set_updated_from_the_changed_customers_equals_one_computed_anew(
        tmp_path_factory, then, gone, added):
    figures._CONSENTING.clear()
    figures._UPDATED.clear()
    work = tmp_path_factory.mktemp("kept")
    kept = KeptResults(work / "_checks", work)
    removed = [r for i, r in enumerate(then) if i in gone]
    now_records = [r for i, r in enumerate(then) if i not in gone] + added
    assume(removed + added and now_records)
    before = _files(work, "then", then)
    pe.consenting_customers(*before[:1], SECRET, before[1], kept)  # what the last pass kept
    figures._CONSENTING.clear()  # a later run's process
    figures._UPDATED.clear()
    now = _files(work, "now", now_records)
    updated = pe.consenting_customers(now[0], SECRET, now[1], kept,
                                      earlier=_earlier(before, now, removed + added)).collect()
    figures._CONSENTING.clear()
    figures._UPDATED.clear()
    anew = pe.consenting_customers(now[0], SECRET, now[1]).collect()
    assert updated.sort(updated.columns).equals(anew.sort(anew.columns))


ANN = {**CUSTOMERS[0], "email": "ann@x.io", "serialNumber": "s1"}
BOB = {**CUSTOMERS[0], "email": "bob@x.io", "serialNumber": "s2"}


def _planted(tmp_path, kept: KeptResults) -> tuple[tuple, pl.DataFrame]:
    """(the customer files of a last pass, holding ann, and the set kept for them with a row
    planted: zed, who is no customer — standing for whatever an update carries forward)."""
    before = _files(tmp_path, "then", [ANN])
    planted = pe.consenting_customers(*before[:1], SECRET, before[1]).collect()
    planted = pl.concat([planted, planted.with_columns(pl.lit("zed@x.io").alias("email"))])
    kept.put("consenting", figures._inputs_key(before, SECRET), planted)
    return before, planted


def test_the_kept_set_of_the_last_pass_is_what_is_updated(tmp_path, new_process, monkeypatch):
    """The update starts from the set kept for the customer files of the last pass (a row
    planted in it stays), and computes no other customer."""
    kept = KeptResults(tmp_path / "_checks", tmp_path)
    ann, bob = ANN, BOB
    before, planted = _planted(tmp_path, kept)
    new_process()
    now = _files(tmp_path, "now", [ann, bob])
    earlier = _earlier(before, now, [bob])
    computing_fails(monkeypatch)  # only the changed customer (bob) is computed, above
    earlier.consenting_changed.collect()
    updated = pe.consenting_customers(now[0], SECRET, now[1], kept, earlier=earlier).collect()
    assert sorted(updated["email"]) == ["ann@x.io", "bob@x.io", "zed@x.io"]
    # a set kept for other customer files is not updated: the set is computed anew
    new_process()
    monkeypatch.undo()
    elsewhere = KeptResults(tmp_path / "_other", tmp_path)
    elsewhere.put("consenting", figures._inputs_key(before, SECRET), planted)
    missing = _earlier(_files(tmp_path, "other", [bob]), now, [ann])
    again = pe.consenting_customers(now[0], SECRET, now[1], elsewhere,
                                    earlier=missing).collect()
    assert sorted(again["email"]) == ["ann@x.io", "bob@x.io"]


def test_a_full_verification_never_uses_an_updated_set(tmp_path, new_process, monkeypatch):
    """An updated set is remembered and kept under a name of its own: later incremental checks
    read it (and update it further), a full verification computes the set from the customer
    tables alone — a row planted in the set the update started from (standing for a fault in
    the update) reaches the incremental checks, never a full verification, in this process
    or a later one."""
    kept = KeptResults(tmp_path / "_checks", tmp_path)
    ann, bob = ANN, BOB
    cy = {**CUSTOMERS[0], "email": "cy@x.io", "serialNumber": "s3"}
    before, _ = _planted(tmp_path, kept)
    new_process()
    now = _files(tmp_path, "now", [ann, bob])
    earlier = _earlier(before, now, [bob])

    def emails(frame: pl.LazyFrame) -> list[str]:
        return sorted(frame.collect()["email"])

    updated = ["ann@x.io", "bob@x.io", "zed@x.io"]
    assert emails(pe.consenting_customers(now[0], SECRET, now[1], kept, earlier=earlier)) \
        == updated
    new_process()  # a later process: an incremental check finds the updated set kept ...
    computing_fails(monkeypatch)
    assert emails(pe.consenting_customers(now[0], SECRET, now[1], kept, earlier=earlier)) \
        == updated
    monkeypatch.undo()
    # (read back, it is remembered as updated: a full verification here does not take it)
    assert emails(pe.consenting_customers(now[0], SECRET, now[1])) == ["ann@x.io", "bob@x.io"]
    new_process()  # ... and a later update starts from it
    later = _files(tmp_path, "later", [ann, bob, cy])
    assert emails(pe.consenting_customers(later[0], SECRET, later[1], kept,
                                          earlier=_earlier(now, later, [cy]))) == \
        sorted([*updated, "cy@x.io"])
    # a full verification in the same process does not take the updated set remembered ...
    fresh = ["ann@x.io", "bob@x.io", "cy@x.io"]
    assert emails(pe.consenting_customers(later[0], SECRET, later[1])) == fresh
    new_process()  # ... nor, in a later process, the one kept
    assert emails(pe.consenting_customers(later[0], SECRET, later[1], kept)) == fresh
    names = sorted(p.name.split("-")[0] for p in (tmp_path / "_checks").glob("*.parquet"))
    assert names == ["consenting", "updated_consenting"]  # one of each, neither replaced
    new_process()  # with a set computed for these tables, an incremental check takes that one
    assert emails(pe.consenting_customers(later[0], SECRET, later[1], kept,
                                          earlier=_earlier(now, later, [cy]))) == fresh
