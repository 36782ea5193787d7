"""Incremental landing (engines/landing_cache.py): a landing step parses only new or rewritten
files, the tables equal a full re-parse row for row, and consent changes still reach every
reading."""

import json
import shutil

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from stedi_assets import schemas
from stedi_assets.engines.polars_engine import PolarsEngine
from stedi_assets.settings import LOCAL_PSEUDONYM_SECRET
from stedi_assets.transforms.pseudonyms import customer_key
from stedi_assets_tests.support.graph import GraphRun, run_graph

pytest_plugins = ["stedi_assets_tests.support.s3_server"]

ZONE_TABLES = sorted(schemas.TABLES)
LANDING = "group:landing"


def _parsed(run: GraphRun) -> dict[str, int]:
    return {t.source: run.metadata(t.name)["files_parsed"].value for t in schemas.LANDING_TABLES}


def _assert_same_tables(run: GraphRun, full: GraphRun) -> None:
    for name in ZONE_TABLES:
        mine, theirs = run.table(name), full.table(name)
        assert_frame_equal(mine.sort(mine.columns), theirs.sort(theirs.columns),
                           check_row_order=True), name


def _copy(sample_landing, tmp_path):
    landing = tmp_path / "landing"
    shutil.copytree(sample_landing, landing)
    return landing


@pytest.mark.slow
def test_new_file_is_the_only_one_parsed_and_tables_equal_a_full_run(sample_landing, tmp_path):
    landing = _copy(sample_landing, tmp_path)
    first = run_graph(landing, tmp_path / "lake")
    assert _parsed(first) == {"customer": 2, "accelerometer": 4, "step_trainer": 3}

    # A new accelerometer drop: readings of a consenting customer one day later, one of a
    # customer nobody knows, a malformed line and a duplicate of an earlier reading.
    before = first.table("accelerometer_trusted")  # read now: the next run replaces it
    known = before.head(3).to_dicts()
    later = [{**r, "timestamp": r["timestamp"] + 86_400_001, "x": 1234.5 + i}
             for i, r in enumerate(known)]
    lines = [json.dumps(r) for r in later]
    lines += [json.dumps({**known[0], "user": "nobody@example.com"}), '{"user": "broken', lines[0]]
    (landing / "accelerometer" / "accelerometer-new-drop.json").write_text("\n".join(lines) + "\n")

    second = run_graph(landing, tmp_path / "lake")
    assert second.result.success
    assert _parsed(second) == {"customer": 0, "accelerometer": 1, "step_trainer": 0}
    assert second.metadata("accelerometer_landing")["files"].value == 5
    full = run_graph(landing, tmp_path / "full", engine=PolarsEngine())
    assert _parsed(full) == {"customer": 2, "accelerometer": 5, "step_trainer": 3}
    _assert_same_tables(second, full)
    trusted = second.table("accelerometer_trusted")
    assert trusted.height == before.height + 3  # the duplicate removed, the stranger dropped
    assert set(trusted["x"]) >= {1234.5, 1235.5, 1236.5}
    assert second.table("accelerometer_landing_rejects")["file"].str.ends_with(
        "accelerometer-new-drop.json").sum() == 1
    assert all(e.passed for (_, check), e in second.checks().items() if check != "join_coverage")


@pytest.mark.slow
def test_consent_withdrawn_in_a_new_customer_file_reaches_readings_parsed_earlier(
        sample_landing, tmp_path):
    landing = _copy(sample_landing, tmp_path)
    first = run_graph(landing, tmp_path / "lake")
    readings = first.table("accelerometer_trusted")["user"].value_counts()
    email = readings.sort("count", descending=True)["user"][0]
    record = first.table("customer_trusted").filter(pl.col("email") == email).to_dicts()[0]
    withdrawn = {**record, "lastUpdateDate": record["lastUpdateDate"] + 1,
                 "shareWithResearchAsOfDate": None}
    (landing / "customer" / "customer-withdrawal.json").write_text(json.dumps(withdrawn) + "\n")

    second = run_graph(landing, tmp_path / "lake")
    assert _parsed(second) == {"customer": 1, "accelerometer": 0, "step_trainer": 0}
    assert email not in set(second.table("accelerometer_trusted")["user"])
    assert customer_key(email, LOCAL_PSEUDONYM_SECRET) not in set(
        second.table("machine_learning_curated")["customerKey"])
    assert all(e.passed for (_, check), e in second.checks().items() if check == "consent")
    _assert_same_tables(second, run_graph(landing, tmp_path / "full", engine=PolarsEngine()))


@pytest.mark.slow
def test_rewritten_and_removed_files_are_never_served_from_the_cache(sample_landing, tmp_path):
    landing = _copy(sample_landing, tmp_path)
    run_graph(landing, tmp_path / "lake")
    files = sorted((landing / "step_trainer").iterdir())
    # same size, new content: the first reading's distance changes digit for digit
    text = files[0].read_text()
    start = text.index('"distanceFromObject":') + len('"distanceFromObject":')
    digit = text[start:].lstrip()[0]
    position = start + (len(text[start:]) - len(text[start:].lstrip()))
    rewritten = text[:position] + ("7" if digit != "7" else "8") + text[position + 1:]
    assert len(rewritten) == len(text) and rewritten != text
    files[0].write_text(rewritten)
    files[1].unlink()

    second = run_graph(landing, tmp_path / "lake")
    assert _parsed(second) == {"customer": 0, "accelerometer": 0, "step_trainer": 1}
    full = run_graph(landing, tmp_path / "full", engine=PolarsEngine())
    _assert_same_tables(second, full)
    cache = tmp_path / "lake" / "_landing_cache" / "step_trainer_landing"
    assert len(list(cache.iterdir())) == len(files) - 1  # the removed file's entry is gone


def test_cache_setting():
    from stedi_assets.definitions import Settings

    local = Settings.from_env({"STEDI_LAKEHOUSE_ROOT": "/tmp/lake"})
    assert local.landing_cache_folder() == "/tmp/lake/_landing_cache"
    off = Settings.from_env({"STEDI_LAKEHOUSE_ROOT": "/tmp/lake", "STEDI_LANDING_CACHE": "off"})
    assert off.landing_cache_folder() is None
    on_s3 = Settings.from_env({"STEDI_ENV": "s3", "STEDI_LAKEHOUSE_ROOT": "s3://b/lake/",
                               "STEDI_PSEUDONYM_SECRET": "x"})
    assert on_s3.landing_cache_folder() is None
    chosen = Settings.from_env({"STEDI_LAKEHOUSE_ROOT": "s3://b/lake/", "STEDI_ENV": "s3",
                                "STEDI_LANDING_CACHE": "/var/cache/stedi"})
    assert chosen.landing_cache_folder() == "/var/cache/stedi"


def test_s3_landing_files_are_stamped_by_etag(s3_endpoint, s3_client, sample_landing, tmp_path):
    """An S3 landing root with a local lakehouse: the cache keys objects by size and ETag."""
    from dagster import materialize

    from stedi_assets.definitions import Settings, all_asset_checks, all_assets, build_resources
    from stedi_assets_tests.support.s3_helpers import new_bucket, upload_landing

    bucket = new_bucket(s3_client)
    upload_landing(s3_client, sample_landing, bucket, "landing")

    def run(lake: str, cache: str = "auto") -> GraphRun:
        settings = Settings.from_env({
            "STEDI_LANDING_ROOT": f"s3://{bucket}/landing", "STEDI_LANDING_CACHE": cache,
            "STEDI_LAKEHOUSE_ROOT": str(tmp_path / lake), "AWS_ENDPOINT_URL": s3_endpoint,
            # an S3 landing root needs a real key (the development key is for local folders)
            "AWS_REGION": "us-east-1", "STEDI_PSEUDONYM_SECRET": "incremental-test-key"})
        return GraphRun(materialize([*all_assets, *all_asset_checks],
                                    resources=build_resources(settings)), tmp_path / lake)

    assert _parsed(run("lake")) == {"customer": 2, "accelerometer": 4, "step_trainer": 3}
    assert _parsed(run("lake")) == {"customer": 0, "accelerometer": 0, "step_trainer": 0}
    key = "landing/customer/customer-1655293787736.json"
    body = s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
    s3_client.put_object(Bucket=bucket, Key=key, Body=body.replace(b"@", b"#", 1))  # same size
    third = run("lake")
    assert _parsed(third) == {"customer": 1, "accelerometer": 0, "step_trainer": 0}
    _assert_same_tables(third, run("full", cache="off"))


def test_conservation_counts_a_cached_file_once_and_still_finds_a_lost_row(sample_landing,
                                                                            tmp_path):
    """A file is counted from its raw bytes when it is parsed; a run reusing its cache entry
    takes that count (no second read of the file) and still compares it with the rows
    stored: a row lost from an entry fails conservation."""
    landing, lake = _copy(sample_landing, tmp_path), tmp_path / "lake"
    run_graph(landing, lake, selection=LANDING)
    raw = {str(f): f.read_bytes().count(b"\n") for f in (landing / "accelerometer").iterdir()}
    entries = sorted((lake / "_landing_cache" / "accelerometer_landing").iterdir())
    accounting = {e: json.loads((e / "accounting.json").read_text()) for e in entries}
    assert {a["file"]: a["lines_counted"] for a in accounting.values()} == raw

    entry = entries[0]
    part = sorted(entry.glob("part-*.parquet"))[0]
    rows = pl.read_parquet(part)
    part.unlink()  # a new file: the table's hard link to the old one stays as it was
    rows.head(rows.height - 1).write_parquet(part)
    second = run_graph(landing, lake, selection=LANDING, raise_on_error=False)
    assert second.metadata("accelerometer_landing")["files_parsed"].value == 0
    conservation = second.checks()[("accelerometer_landing", "conservation")]
    assert not conservation.passed
    assert conservation.metadata["lines_in_files"].value == sum(raw.values())
    assert conservation.metadata["unaccounted"].value == 1

    # the count is the entry's: one more line recorded is one more line unaccounted
    accounting[entry]["lines_counted"] += 1
    (entry / "accounting.json").write_text(json.dumps(accounting[entry]))
    third = run_graph(landing, lake, selection=LANDING, raise_on_error=False)
    assert third.checks()[("accelerometer_landing", "conservation")].metadata[
        "unaccounted"].value == 2
