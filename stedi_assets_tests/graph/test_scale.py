"""Scale work: the generator across chunk boundaries and as Parquet, streamed landing."""

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from stedi_assets import generate as gen
from stedi_assets import schemas
from stedi_assets.engines.polars_engine import PolarsEngine
from stedi_assets.io.landing_files import count_lines, list_landing_files
from stedi_assets.io.parquet_parts import ParquetParts


def _bytes(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.json"))}


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(gen, "CHUNK_CUSTOMERS", 130)  # scale 0.5 -> 4 chunks, last partial


def test_generator_is_deterministic_across_chunk_boundaries(tmp_path, small_chunks):
    first = gen.generate(tmp_path / "a", scale=0.5, seed=11)
    gen.generate(tmp_path / "b", scale=0.5, seed=11)
    assert _bytes(tmp_path / "a") == _bytes(tmp_path / "b")
    customers = PolarsEngine().read_landing(
        list_landing_files(str(tmp_path / "a"), "customer"),
        schemas.TABLES["customer_landing"]).rows
    # customers of every chunk, numbered on across chunk boundaries, none lost or repeated
    first_file = customers.head(500)
    assert first_file["email"].n_unique() == 500 == first["customer"] - customers.height + 500
    numbers = first_file["email"].str.extract(r"\.(\d+)@").cast(pl.Int64)
    assert numbers.to_list() == list(range(500))


def test_parquet_output_lands_the_same_rows_as_json(tmp_path, small_chunks):
    json_counts = gen.generate(tmp_path / "json", scale=0.5, seed=3)
    parquet_counts = gen.generate(tmp_path / "parquet", scale=0.5, seed=3, fmt="parquet")
    assert json_counts == parquet_counts
    engine = PolarsEngine()
    for table in schemas.LANDING_TABLES:
        from_json = engine.read_landing(list_landing_files(str(tmp_path / "json"), table.source),
                                        table)
        files = list_landing_files(str(tmp_path / "parquet"), table.source)
        assert all(f.endswith(".parquet") for f in files)
        from_parquet = engine.read_landing(files, table)
        assert from_json.rejects.height == 0
        assert_frame_equal(from_json.rows, from_parquet.rows)
        assert from_parquet.lines_read == sum(count_lines(f) for f in files) \
            == json_counts[table.source]


@pytest.mark.slow
def test_streamed_landing_gives_the_eager_tables(tmp_path):
    gen.generate(tmp_path, scale=0.05, seed=5)
    extra = tmp_path / "accelerometer" / "zz-messy.json"
    extra.write_text('{"user":"a@b","timestamp":1,"x":1,"y":2,"z":3,"extra":1}\n'
                     'not json\n\n{"user":"a@b","timestamp":"abc"}\n'
                     '{"user":"c@d","timeStamp":2.0,"x":0,"y":0,"z":0}\n' * 3)
    engine = PolarsEngine(batch_lines=7, spill_root=str(tmp_path))  # many batches per file
    unknown = {}
    for table in schemas.LANDING_TABLES:
        files = list_landing_files(str(tmp_path), table.source)
        eager = PolarsEngine().read_landing(files, table)
        streamed = engine.stream_landing(files, table)
        assert isinstance(streamed.rows, ParquetParts)  # one file per batch, in order
        assert len(streamed.rows.paths) >= len(files)
        assert_frame_equal(streamed.rows.scan().collect(), eager.rows)
        assert_frame_equal(streamed.rejects, eager.rejects)
        assert (streamed.lines_read, streamed.unknown_keys) == (eager.lines_read,
                                                                eager.unknown_keys)
        streamed.close()
        unknown[table.source] = eager.unknown_keys
    assert unknown["accelerometer"] == {"extra": 3}
    assert not list(tmp_path.glob("stedi-*"))  # spilled parts removed by close()
