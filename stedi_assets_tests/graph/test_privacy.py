"""Nobody leaked: latest record wins, withdrawal, consent as of date, pseudonymous curated data,
and properties that hold for any generated landing data."""

import json
import shutil

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stedi_assets import schemas
from stedi_assets.engines.polars_engine import PolarsEngine
from stedi_assets.resources import PrivacySettings
from stedi_assets.settings import LOCAL_PSEUDONYM_SECRET
from stedi_assets.transforms import polars as pe
from stedi_assets.transforms.pseudonyms import customer_key
from stedi_assets_tests.support.graph import run_graph

PII = {"customerName", "email", "user", "phone", "birthDay"}


def test_curated_tables_carry_no_plaintext_pii(sample_landing, tmp_path):
    run = run_graph(sample_landing, tmp_path / "lake")
    emails = set(run.table("customer_landing")["email"])
    for name in ("customer_curated", "machine_learning_curated"):
        table = run.table(name)
        assert not PII & set(table.columns), name
        for column in table.select(pl.col(pl.String)).columns:
            assert not emails & set(table[column]), (name, column)
    keys = set(run.table("customer_curated")["customerKey"])
    expected = {customer_key(e, LOCAL_PSEUDONYM_SECRET)
                for e in run.table("accelerometer_trusted")["user"]}
    assert keys == expected
    assert set(run.table("machine_learning_curated")["customerKey"]) <= keys


@pytest.mark.slow
def test_withdrawn_consent_disappears_on_the_next_materialization(sample_landing, tmp_path):
    landing = tmp_path / "landing"
    shutil.copytree(sample_landing, landing)
    first = run_graph(landing, tmp_path / "lake")
    trusted = first.table("customer_trusted")
    readings = first.table("accelerometer_trusted")["user"].value_counts()
    email = readings.sort("count", descending=True)["user"][0]  # a customer with many readings
    record = trusted.filter(pl.col("email") == email).to_dicts()[0]
    key = customer_key(email, LOCAL_PSEUDONYM_SECRET)
    assert key in set(first.table("machine_learning_curated")["customerKey"])

    withdrawn = {**record, "lastUpdateDate": record["lastUpdateDate"] + 1,
                 "shareWithResearchAsOfDate": None}
    (landing / "customer" / "customer-withdrawal.json").write_text(json.dumps(withdrawn) + "\n")
    second = run_graph(landing, tmp_path / "lake")
    assert second.result.success
    assert email not in set(second.table("customer_trusted")["email"])
    assert email not in set(second.table("accelerometer_trusted")["user"])
    assert key not in set(second.table("customer_curated")["customerKey"])
    assert key not in set(second.table("machine_learning_curated")["customerKey"])
    assert record["serialNumber"] not in set(second.table("step_trainer_trusted")["serialNumber"])
    assert all(e.passed for e in second.checks().values())


def test_consent_as_of_date_on_the_real_2023_data(real_2023, tmp_path):
    run = run_graph(real_2023, tmp_path / "lake", privacy=PrivacySettings(
        pseudonym_secret=LOCAL_PSEUDONYM_SECRET, consent_as_of_date=True))
    counts = {name: run.table(name).height for name in (
        "accelerometer_trusted", "customer_curated", "step_trainer_trusted",
        "machine_learning_curated")}
    assert counts == {"accelerometer_trusted": 32_025, "customer_curated": 464,
                      "step_trainer_trusted": 13_920, "machine_learning_curated": 34_437}
    assert all(e.passed for e in run.checks().values())
    assert run.metadata("accelerometer_trusted")["consent_as_of_date"].value is True


def test_consent_check_catches_readings_before_consent(real_2023, tmp_path):
    """With consent as of date on, a transform that ignores the date is stopped."""
    class IgnoresTheDate(PolarsEngine):
        @property
        def ops(self):
            from types import SimpleNamespace
            ops = SimpleNamespace(**{n: getattr(pe, n) for n in dir(pe) if not n.startswith("_")})
            ops.accelerometer_trusted = lambda a, c, **kw: pe.accelerometer_trusted(
                a, c, deduplicate=kw.get("deduplicate", True))
            return ops

    run = run_graph(real_2023, tmp_path / "lake", raise_on_error=False, engine=IgnoresTheDate(),
                    privacy=PrivacySettings(pseudonym_secret=LOCAL_PSEUDONYM_SECRET,
                                            consent_as_of_date=True))
    consent = run.checks()[("accelerometer_trusted", "consent")]
    assert not consent.passed
    assert consent.metadata["violations"].value == 40_981 - 32_025
    assert "customer_curated" not in run.materialized()


# ---------------------------------------------------------------------------------------------
# Properties over generated landing data (the Polars engine; test_spark_parity runs both)
# ---------------------------------------------------------------------------------------------

EMAILS = [f"c{i}@x.com" for i in range(6)]
SERIALS = [f"s{i}" for i in range(6)]

customer_records = st.lists(st.fixed_dictionaries({
    "email": st.sampled_from(EMAILS),
    "serialNumber": st.sampled_from(SERIALS),
    "lastUpdateDate": st.one_of(st.none(), st.integers(0, 5)),
    "shareWithResearchAsOfDate": st.one_of(st.none(), st.integers(0, 30)),
}), max_size=12)
readings = st.lists(st.tuples(st.sampled_from([*EMAILS, "stranger@x.com"]), st.integers(0, 40)),
                    max_size=40)
steps = st.lists(st.tuples(st.sampled_from([*SERIALS, "unknown"]), st.integers(0, 40)),
                 max_size=30)
noise = st.lists(st.sampled_from(["", "{oops", "[1]", '{"user": null}', '{"email": 5.5}']),
                 max_size=4)


def landing_lines(records, accel, step, junk) -> dict[str, list[str]]:
    return {
        "customer": [json.dumps({k: v for k, v in r.items() if v is not None or k == "email"})
                     for r in records] + junk,
        "accelerometer": [json.dumps({"user": u, "timestamp": t, "x": 0.0, "y": 1.0, "z": 0.0})
                          for u, t in accel] + junk,
        "step_trainer": [json.dumps({"sensorReadingTime": t, "serialNumber": s,
                                     "distanceFromObject": 200}) for s, t in step] + junk,
    }


def latest_consent(records) -> dict[str, int | None]:
    """The reference rule, written independently: greatest lastUpdateDate; on a tie, no
    consent wins; between consenting records the greatest consent date."""
    def rank(r):
        updated = -1 if r["lastUpdateDate"] is None else r["lastUpdateDate"]
        consent = r["shareWithResearchAsOfDate"]
        return (updated, consent is None, -1 if consent is None else consent)

    latest: dict[str, dict] = {}
    for r in records:
        if r["email"] not in latest or rank(r) > rank(latest[r["email"]]):
            latest[r["email"]] = r
    return {e: r["shareWithResearchAsOfDate"] for e, r in latest.items()}


def run_chain(lines: dict[str, list[str]], as_of: bool, ops=pe):
    tables = {}
    for table in schemas.LANDING_TABLES:
        frame = pl.DataFrame({"file": "f", "line_number": range(1, len(lines[table.source]) + 1),
                              "line": lines[table.source]},
                             schema={"file": pl.String, "line_number": pl.Int64,
                                     "line": pl.String})
        rows, rejects, _ = ops.parse_landing(frame, table)
        assert rows.height + rejects.height == frame.height  # every line accounted for
        tables[table.name] = rows.lazy()
    ct = ops.customer_trusted(tables["customer_landing"])
    at = ops.accelerometer_trusted(tables["accelerometer_landing"], ct, consent_as_of_date=as_of)
    cc = ops.customer_curated(ct, at, secret="prop")
    stt = ops.step_trainer_trusted(tables["step_trainer_landing"], cc)
    ml = ops.machine_learning_curated(stt, at, secret="prop")
    return {n: f.collect() for n, f in (("customer_trusted", ct), ("accelerometer_trusted", at),
                                        ("customer_curated", cc), ("step_trainer_trusted", stt),
                                        ("machine_learning_curated", ml))}


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(customer_records, readings, steps, noise, st.booleans())
def test_no_row_of_a_non_consenting_customer_reaches_trusted_or_curated(
        records, accel, step, junk, as_of):
    out = run_chain(landing_lines(records, accel, step, junk), as_of)
    consent = {e: c for e, c in latest_consent(records).items() if c is not None}
    keys = {customer_key(e, "prop") for e in consent}
    serials = {r["serialNumber"] for r in records if r["email"] in consent}
    assert set(out["customer_trusted"]["email"]) <= set(consent)
    assert set(out["accelerometer_trusted"]["user"]) <= set(consent)
    if as_of:
        for user, ts in out["accelerometer_trusted"].select("user", "timestamp").iter_rows():
            assert ts >= consent[user]
    assert set(out["customer_curated"]["customerKey"]) <= keys
    assert set(out["step_trainer_trusted"]["serialNumber"]) <= serials
    assert set(out["machine_learning_curated"]["customerKey"]) <= keys
    assert out["accelerometer_trusted"].is_duplicated().sum() == 0
