"""Landing readers: tolerant normalisation, every line accounted for, clear errors."""

import shutil

import polars as pl
import pytest

from stedi_assets import schemas
from stedi_assets.engines.polars_engine import PolarsEngine
from stedi_assets.io.landing_files import count_lines, list_landing_files
from stedi_assets.io.landing_reader import LandingError, read_landing_lines
from stedi_assets.transforms import polars as pe
from stedi_assets_tests.support.graph import run_graph

ENGINE = PolarsEngine()


def _lines(*texts: str, file: str = "f.json") -> pl.DataFrame:
    return pl.DataFrame({"file": [file] * len(texts),
                         "line_number": list(range(1, len(texts) + 1)), "line": list(texts)})


def _parse(table: str, *texts: str):
    return pe.parse_landing(_lines(*texts), schemas.TABLES[table])


def test_customer_normalisation_float_epochs_numeric_phone_and_missing_consent():
    rows, rejects, blank = _parse(
        "customer_landing",
        '{"customerName":"A B","email":"a@x","phone":8015551212,"birthDay":"1965-01-01",'
        '"serialNumber":"s1","registrationDate":1655564376361.0,"lastUpdateDate":1655564376361,'
        '"shareWithResearchAsOfDate":null,"shareWithPublicAsOfDate":1655564376361}',
        '{"email":"c@x","serialNumber":"s2","shareWithResearchAsOfDate":1655564376362.0,'
        '"newField":"ignored"}',
    )
    assert rejects.height == 0 and blank == {"newField": 1}
    assert rows.schema == pe.polars_schema(schemas.TABLES["customer_landing"])
    first, second = rows.to_dicts()
    assert first["phone"] == "8015551212"
    assert first["registrationDate"] == 1655564376361
    assert first["shareWithResearchAsOfDate"] is None
    assert first["shareWithFriendsAsOfDate"] is None  # key absent -> null
    assert second["shareWithResearchAsOfDate"] == 1655564376362
    assert second["customerName"] is None


def test_accelerometer_old_spelling_trailing_comma_bom_and_blank_lines():
    rows, rejects, _ = _parse(
        "accelerometer_landing",
        '\ufeff{"user":"a@x","timeStamp":1655471492661,"x":1.0,"y":-1,"z":0.0}',
        "",
        '  {"user":"b@x","timestamp":1655471492662.0,"x":0,"y":0,"z":1} ,\r',
    )
    assert rejects.to_dicts() == [
        {"file": "f.json", "line_number": 2, "line": "", "reason": "blank line"}]
    assert rows.to_dicts() == [
        {"user": "a@x", "timestamp": 1655471492661, "x": 1.0, "y": -1.0, "z": 0.0},
        {"user": "b@x", "timestamp": 1655471492662, "x": 0.0, "y": 0.0, "z": 1.0},
    ]


def test_bad_lines_become_rejects_with_file_line_and_reason():
    rows, rejects, _ = _parse(
        "step_trainer_landing",
        '{"sensorReadingTime":1,"serialNumber":"s","distanceFromObject":200}',
        '{"sensorReadingTime":2,"serialNumber":"s","distanceFromObject":"far"}',
        '{"sensorReadingTime":3,"distanceFromObject":1}',
        '{"sensorReadingTime":4.5,"serialNumber":"s"}',
        '{"sensorReadingTime":5,"serialNumber":"s"',
        '[1, 2]',
        '{"sensorReadingTime":6,"serialNumber":{"nested":1}}',
    )
    assert rows["sensorReadingTime"].to_list() == [1]
    reasons = dict(zip(rejects["line_number"], rejects["reason"], strict=True))
    assert set(reasons) == {2, 3, 4, 5, 6, 7}
    assert "distanceFromObject: far is not a valid int64" in reasons[2]
    assert "missing required key 'serialNumber'" in reasons[3]
    assert "sensorReadingTime: 4.5 is not a valid int64" in reasons[4]
    assert reasons[5].startswith("invalid JSON")
    assert "not a JSON object" in reasons[6]
    assert "nested" in reasons[7]
    assert rejects["file"].unique().to_list() == ["f.json"]
    assert rejects.filter(pl.col("line_number") == 2)["line"].item().endswith('"far"}')


def test_both_real_versions_load_with_every_line_accounted_for(real_2023, real_2022):
    expected_2023 = {"customer_landing": 956, "accelerometer_landing": 81_273,
                     "step_trainer_landing": 28_680}
    for table in schemas.LANDING_TABLES:
        for root in (real_2023, real_2022):
            files = list_landing_files(str(root), table.source)
            batch = ENGINE.read_landing(files, table)
            raw_lines = sum(count_lines(f) for f in files)
            assert batch.lines_read == raw_lines
            assert batch.rejects.height == 0, batch.rejects.head()
            assert batch.rows.height == batch.lines_read
            assert batch.rows.null_count().select(table.required_columns).sum_horizontal()[0] == 0
            if root == real_2023:
                assert batch.rows.height == expected_2023[table.name]
    # the 2022 step-trainer lines end in "}," and the accelerometer spells "timeStamp"
    steps = ENGINE.read_landing(list_landing_files(str(real_2022), "step_trainer"),
                                schemas.TABLES["step_trainer_landing"])
    assert steps.rows.height == 239_760
    accel = ENGINE.read_landing(list_landing_files(str(real_2022), "accelerometer"),
                                schemas.TABLES["accelerometer_landing"])
    assert accel.rows["timestamp"].null_count() == 0


def test_non_utf8_lines_are_quarantined_with_their_number(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'{"user":"a","timestamp":1}\n\xff\xfe\x00\x01 binary\n{"user":"b",'
                    b'"timestamp":2}')
    lines = read_landing_lines(str(bad))
    assert lines["line_number"].to_list() == [1, 2, 3]
    assert count_lines(str(bad)) == 3
    rows, rejects, _ = pe.parse_landing(lines, schemas.TABLES["accelerometer_landing"])
    assert rows["user"].to_list() == ["a", "b"]
    assert rejects.select("line_number", "reason").to_dicts() == [
        {"line_number": 2, "reason": "not UTF-8 text"}]


def test_missing_landing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(LandingError, match="does not exist.*STEDI_LANDING_ROOT"):
        list_landing_files(str(tmp_path), "customer")
    (tmp_path / "customer").mkdir()
    (tmp_path / "customer" / ".hidden").write_text("x")
    with pytest.raises(LandingError, match="holds no files"):
        list_landing_files(str(tmp_path), "customer")


def test_bad_lines_are_quarantined_by_the_landing_asset(tmp_path, sample_landing):
    landing = tmp_path / "landing"
    shutil.copytree(sample_landing, landing)
    broken = landing / "accelerometer" / "accelerometer-broken.json"
    broken.write_text('{"user":"a@x","timestamp":1,"x":0,"y":0,"z":0}\n{"user": oops}\n')
    run = run_graph(landing, tmp_path / "lake", selection=["accelerometer_landing",
                                                      "accelerometer_landing_rejects"])
    assert run.result.success
    rejects = run.table("accelerometer_landing_rejects")
    assert rejects.to_dicts() == [{"file": str(broken), "line_number": 2,
                                   "line": '{"user": oops}',
                                   "reason": "invalid JSON: Expecting value (column 10)"}]
    meta = run.metadata("accelerometer_landing")
    assert meta["lines_rejected"].value == 1
    checks = run.checks()
    conservation = checks[("accelerometer_landing", "conservation")]
    assert conservation.passed
    assert conservation.metadata["lines_in_files"].value == \
        run.table("accelerometer_landing").height + 1
