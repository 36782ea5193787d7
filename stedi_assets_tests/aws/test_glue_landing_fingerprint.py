"""STEDI_ENV=glue: a landing step run as a Glue job records its source's fingerprint too, so a
new `dagster dev` does not launch (billed) Glue jobs for landing data that did not change.
Against moto's S3 server: the Glue assets' fingerprinting of an S3 landing source, and the
sensor's first tick on an instance holding such a materialization."""

from dagster import (
    AssetKey,
    AssetMaterialization,
    DagsterInstance,
    MaterializeResult,
    RunRequest,
    build_sensor_context,
)

from stedi_assets.assets import glue
from stedi_assets.automation import LANDING_FINGERPRINT, automation_sensors
from stedi_assets.resources import S3LandingSource
from stedi_assets_tests.support.s3_helpers import REGION, upload_landing
from stedi_assets_tests.support.tiny_landing import write_tiny_landing

pytest_plugins = ["stedi_assets_tests.support.s3_server"]


def test_glue_landing_step_records_the_fingerprint_the_sensor_starts_from(
        s3_endpoint, s3_client, bucket, tmp_path):
    upload_landing(s3_client, write_tiny_landing(tmp_path / "landing"), bucket, "landing")
    landing = S3LandingSource(root=f"s3://{bucket}/landing/", region=REGION,
                              endpoint_url=s3_endpoint)
    fingerprints = glue._fingerprints(landing, "land_customer")
    assert fingerprints == {"customer_landing": landing.fingerprint("customer")}
    assert glue._fingerprints(landing, "customer_trusted") == {}

    # what the Glue job reported, as the asset passes it on to Dagster
    reported = MaterializeResult(asset_key="customer_landing", metadata={"rows": 4})
    stored = glue._with_fingerprint(reported, fingerprints)
    assert stored.metadata == {"rows": 4, LANDING_FINGERPRINT: fingerprints["customer_landing"]}
    rejects = MaterializeResult(asset_key="customer_landing_rejects", metadata={})
    assert glue._with_fingerprint(rejects, fingerprints) is rejects

    with DagsterInstance.ephemeral() as instance:
        instance.report_runless_asset_event(AssetMaterialization(
            asset_key=AssetKey("customer_landing"), metadata=stored.metadata))
        sensor = next(s for s in automation_sensors(True) if s.name == "landing_files")
        request = sensor(build_sensor_context(instance=instance,
                                              resources={"landing": landing}))
        # a first tick: customer was landed as it is now; the other sources never were
        assert isinstance(request, RunRequest)
        assert sorted(k.path[-1] for k in request.asset_selection) == [
            "accelerometer_landing", "accelerometer_landing_rejects",
            "step_trainer_landing", "step_trainer_landing_rejects"]
