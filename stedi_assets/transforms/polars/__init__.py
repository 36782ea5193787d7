"""The STEDI transforms on Polars: pure functions, frames in -> frames out (the reference
semantics). This package is the Polars engine's ops (engines/protocol.py: EngineOps): one
function per table (the same names as transforms/spark), plus the check figures.

    columns.py  Polars types of the tables, empty frames
    landing.py  JSON lines -> typed rows + rejects
    tables.py   trusted and curated zone tables, privacy rules (identity, consent, keys)
    increments.py  the slices of a reading table an incremental run recomputes
    figures.py  figures of the asset checks and metadata

No Dagster, no paths, no environment variables here.
"""

from stedi_assets.transforms.polars.columns import (
    POLARS_TYPES,
    REJECT_COLUMNS,
    empty_rejects,
    empty_rows,
    logical_schema,
    polars_schema,
    typed_columns,
)
from stedi_assets.transforms.polars.figures import (
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
)
from stedi_assets.transforms.polars.increments import (
    accelerometer_trusted_affected,
    concat_frames,
    consented_devices,
    customer_curated_update,
    inside,
    machine_learning_curated_affected,
    step_trainer_trusted_affected,
)
from stedi_assets.transforms.polars.landing import parse_landing
from stedi_assets.transforms.polars.tables import (
    accelerometer_trusted,
    customer_curated,
    customer_trusted,
    latest_customer_records,
    machine_learning_curated,
    non_consenting_devices,
    quarantined_withdrawals,
    step_trainer_trusted,
    without_exact_duplicates,
)

__all__ = [
    "POLARS_TYPES", "REJECT_COLUMNS", "accelerometer_trusted",
    "accelerometer_trusted_affected", "changed_consent", "concat_frames", "consent_violations",
    "consented_devices", "consenting_customers", "customer_curated",
    "customer_curated_update", "customer_identities",
    "customer_trusted", "empty_rejects", "empty_rows", "exact_duplicates",
    "frame_logical_schema", "head_rows", "inside", "join_coverage", "latest_customer_records",
    "logical_schema", "machine_learning_curated", "machine_learning_curated_affected",
    "non_consenting_devices", "parse_landing", "polars_schema", "quarantined_withdrawals",
    "restrict_customers", "row_count", "rows_to_verify", "same_owners", "shared_device_rows",
    "step_trainer_trusted", "step_trainer_trusted_affected", "typed_columns",
    "without_exact_duplicates",
]
