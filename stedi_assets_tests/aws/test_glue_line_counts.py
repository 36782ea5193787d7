"""Issue 15: the Glue job counts the lines of S3 landing objects on Spark's executors (one
task per object, boto3 on each), not by downloading every object through the driver. Against
moto's S3 server and local Spark: the same counts as the local engines' counter."""

import gzip
import os

import pytest

from stedi_assets.io import landing_files
from stedi_assets.io.landing_reader import LandingError
from stedi_assets.io.s3 import S3Store
from stedi_assets.io.spark_landing_reader import count_landing_lines
from stedi_assets_tests.support.s3_helpers import REGION

pytest_plugins = ["stedi_assets_tests.support.s3_server",
                  "stedi_assets_tests.support.spark_session"]

#: what the job role gives Glue's executors; here moto's fake credentials
CREDENTIALS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_CONFIG_FILE",
               "AWS_SHARED_CREDENTIALS_FILE", "AWS_EC2_METADATA_DISABLED")


def test_executors_count_s3_objects_as_the_driver_would(spark, s3_endpoint, s3_client, bucket,
                                                          monkeypatch):
    for name in CREDENTIALS:  # Python workers take their environment from the SparkContext
        monkeypatch.setitem(spark.sparkContext.environment, name, os.environ[name])
    objects = {"landing/accelerometer/a.json": b'{"n": 1}\n\n{"n": 2}',
               "landing/accelerometer/b.json.gz": gzip.compress(b'{"n": 1}\n' * 3000),
               "landing/accelerometer/empty.json": b""}
    for key, body in objects.items():
        s3_client.put_object(Bucket=bucket, Key=key, Body=body)
    store = S3Store(REGION, s3_endpoint)
    files = [f"s3://{bucket}/{key}" for key in objects]
    counted = count_landing_lines(spark, files, store)
    assert counted == {f: landing_files.count_lines(f, store) for f in files}
    assert list(counted.values()) == [3, 3000, 0]
    with pytest.raises(LandingError, match="absent.json"):
        count_landing_lines(spark, [*files, f"s3://{bucket}/landing/absent.json"], store)
