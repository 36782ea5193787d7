"""The landing_files sensor on an S3 landing root (real HTTP to moto's server)."""

from dagster import RunRequest, SkipReason, build_sensor_context

from stedi_assets.automation import automation_sensors
from stedi_assets.deployments import build_storage
from stedi_assets_tests.support.s3_helpers import new_bucket, s3_settings, upload_landing

pytest_plugins = ["stedi_assets_tests.support.s3_server"]


def test_new_s3_object_triggers_only_its_landing_table(s3_endpoint, s3_client, aws_env,
                                                       sample_landing):
    bucket = new_bucket(s3_client)
    upload_landing(s3_client, sample_landing, bucket, "landing")
    settings = s3_settings(s3_endpoint, f"s3://{bucket}/landing/", f"s3://{bucket}/lake/")
    landing, _, _ = build_storage(settings)
    sensor = next(s for s in automation_sensors(True) if s.name == "landing_files")

    def tick(cursor=None):
        context = build_sensor_context(cursor=cursor, resources={"landing": landing})
        result = sensor(context)
        return context.cursor, result

    cursor, first = tick()
    assert isinstance(first, RunRequest) and len(first.asset_selection) == 6
    cursor, idle = tick(cursor)
    assert isinstance(idle, SkipReason)
    s3_client.put_object(Bucket=bucket, Key="landing/step_trainer/new.json",
                         Body=b'{"sensorReadingTime":1,"serialNumber":"s","distanceFromObject":2}\n')
    cursor, changed = tick(cursor)
    assert [k.path[-1] for k in changed.asset_selection] == [
        "step_trainer_landing", "step_trainer_landing_rejects"]
    s3_client.put_object(Bucket=bucket, Key="landing/step_trainer/_SUCCESS", Body=b"")
    _, hidden = tick(cursor)
    assert isinstance(hidden, SkipReason)  # marker files are not data
