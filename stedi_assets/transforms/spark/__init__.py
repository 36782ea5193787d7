"""The STEDI transforms on Spark: pure functions, DataFrames in -> DataFrames out. This
package is the Spark engine's ops (engines/protocol.py: EngineOps): the same function names,
columns, types, null handling and semi-join behaviour as transforms/polars (the reference
semantics); a test holds both to the protocol.

    columns.py  Spark types of the tables, empty frames
    landing.py  JSON lines -> typed rows + rejects
    tables.py   trusted and curated zone tables, privacy rules (identity, consent, keys)
    increments.py  the slices of a reading table an incremental run recomputes
    figures.py  figures of the asset checks and metadata

Imports PySpark: only loaded when STEDI_ENGINE=spark or on Glue. No Dagster, no paths, no
environment variables here.
"""

from stedi_assets.transforms.spark.columns import (
    REJECT_SCHEMA,
    SPARK_TYPES,
    empty_rejects,
    empty_rows,
    logical_schema,
    spark_schema,
)
from stedi_assets.transforms.spark.figures import (
    changed_consent,
    consent_violations,
    consenting_customers,
    customer_identities,
    exact_duplicates,
    frame_logical_schema,
    head_rows,
    join_coverage,
    restrict_customers,
    row_count,
    rows_to_verify,
    same_owners,
    shared_device_rows,
    without_exact_duplicates,
)
from stedi_assets.transforms.spark.increments import (
    accelerometer_trusted_affected,
    concat_frames,
    consented_devices,
    customer_curated_update,
    inside,
    machine_learning_curated_affected,
    step_trainer_trusted_affected,
)
from stedi_assets.transforms.spark.landing import parse_landing
from stedi_assets.transforms.spark.tables import (
    accelerometer_trusted,
    customer_curated,
    customer_trusted,
    latest_customer_records,
    machine_learning_curated,
    non_consenting_devices,
    quarantined_withdrawals,
    step_trainer_trusted,
)

__all__ = [
    "REJECT_SCHEMA", "SPARK_TYPES", "accelerometer_trusted", "accelerometer_trusted_affected",
    "changed_consent", "concat_frames", "consent_violations", "consented_devices",
    "consenting_customers",
    "customer_curated", "customer_curated_update", "customer_identities", "customer_trusted",
    "empty_rejects",
    "empty_rows", "exact_duplicates", "frame_logical_schema", "head_rows", "inside",
    "join_coverage", "latest_customer_records", "logical_schema", "machine_learning_curated",
    "machine_learning_curated_affected", "non_consenting_devices", "parse_landing",
    "quarantined_withdrawals", "restrict_customers", "row_count", "rows_to_verify",
    "same_owners", "shared_device_rows", "spark_schema", "step_trainer_trusted",
    "step_trainer_trusted_affected", "without_exact_duplicates",
]
