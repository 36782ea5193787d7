"""What an engine offers the assets and the Glue steps: `EngineOps`.

Both engines' transform packages (transforms/polars, transforms/spark) satisfy it as modules:
`Engine.ops` returns one, so a type checker follows `engine.ops.customer_trusted(...)`. Frames
are `Any`: a Polars LazyFrame/DataFrame in one engine, a Spark DataFrame in the other.
A test (test_engine_protocol.py) holds both packages to these names and signatures.
No Dagster and no PySpark here: the Glue steps import it.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from stedi_assets.schemas import Table

Frame = Any


@runtime_checkable
class EngineOps(Protocol):
    # --- landing: JSON lines -> typed rows + rejects ---------------------------------------
    def parse_landing(self, lines: Frame, table: Table) -> tuple[Frame, Frame, dict[str, int]]:
        ...

    def empty_rows(self, table: Table) -> Frame: ...

    def empty_rejects(self) -> Frame: ...

    def logical_schema(self, schema: Any) -> dict[str, str]: ...

    # --- trusted and curated zone tables, and the privacy rules they apply ------------------
    def quarantined_withdrawals(self, customer_landing_rejects: Frame | None) -> Frame: ...

    def latest_customer_records(self, customer_landing: Frame,
                                customer_landing_rejects: Frame | None = None) -> Frame: ...

    def non_consenting_devices(self, customer_landing: Frame,
                               customer_landing_rejects: Frame | None = None) -> Frame: ...

    def customer_trusted(self, customer_landing: Frame,
                         customer_landing_rejects: Frame | None = None) -> Frame: ...

    def accelerometer_trusted(self, accelerometer_landing: Frame, customer_trusted: Frame, *,
                              consent_as_of_date: bool = False,
                              deduplicate: bool = True) -> Frame: ...

    def customer_curated(self, customer_trusted: Frame, accelerometer_trusted: Frame, *,
                         secret: str) -> Frame: ...

    def step_trainer_trusted(self, step_trainer_landing: Frame, customer_curated: Frame, *,
                             deduplicate: bool = True,
                             excluded_devices: Frame | None = None) -> Frame: ...

    def machine_learning_curated(self, step_trainer_trusted: Frame,
                                 accelerometer_trusted: Frame, *, secret: str) -> Frame: ...

    def without_exact_duplicates(self, frame: Frame) -> tuple[Frame, int]: ...

    # --- incremental runs (stedi_assets/increments.py) ---------------------------------------
    def accelerometer_trusted_affected(self, landing_added: Frame | None,
                                       customers_before: Frame, customer_trusted: Frame, *,
                                       consent_as_of_date: bool = False) -> Any: ...

    def step_trainer_trusted_affected(self, landing_added: Frame | None,
                                      devices_before: Frame, devices: Frame) -> Any: ...

    def machine_learning_curated_affected(self, step_removed: Frame | None,
                                          step_added: Frame | None,
                                          accelerometer_removed: Frame | None,
                                          accelerometer_added: Frame | None) -> Any: ...

    def customer_curated_update(self, curated: Frame, customer_trusted: Frame,
                                accelerometer_removed: Frame | None,
                                accelerometer_added: Frame | None, *, secret: str,
                                customers_before: Frame | None = None,
                                readings_follow_customers_before: bool = True
                                ) -> Frame | None: ...

    def consented_devices(self, customer_curated: Frame,
                          excluded_devices: Frame | None) -> Frame: ...

    def inside(self, frame: Frame, affected: Any, group_column: str | None = None,
               time_column: str | None = None) -> Frame: ...

    def concat_frames(self, frames: list[Frame]) -> Frame: ...

    # --- figures of the asset checks and metadata -------------------------------------------
    def consenting_customers(self, customer_landing: Frame, secret: str,
                             customer_landing_rejects: Frame | None = None,
                             kept: Any = None, earlier: Any = None) -> Frame: ...

    def consent_violations(self, table: Frame, consenting: Frame, key: str,
                           consenting_key: str, time_column: str | None = None,
                           excluded: Frame | None = None) -> dict[str, Any]: ...

    def changed_consent(self, before: Frame, now: Frame, consenting_key: str, *,
                        with_date: bool = False, excluded_before: Frame | None = None,
                        excluded_now: Frame | None = None) -> Frame: ...

    def customer_identities(self, customer_landing: Frame,
                            customer_landing_rejects: Frame) -> Frame: ...

    def restrict_customers(self, customer_landing: Frame, identities: Frame) -> Frame: ...

    def rows_to_verify(self, added: Frame, kept: Frame, changed: Frame, key: str,
                       consenting_key: str) -> Frame: ...

    def exact_duplicates(self, frame: Frame) -> int: ...

    def join_coverage(self, step_trainer_trusted: Frame, accelerometer_trusted: Frame,
                      customer_landing: Frame) -> dict[str, Any]: ...

    def same_owners(self, before: Frame, now: Frame) -> bool: ...

    def shared_device_rows(self, step_trainer_trusted: Frame, customer_landing: Frame,
                           customer_landing_rejects: Frame | None = None,
                           kept: Any = None) -> dict[str, int]: ...

    def row_count(self, frame: Frame) -> int: ...

    def frame_logical_schema(self, frame: Frame) -> dict[str, str]: ...

    def head_rows(self, frame: Frame, n: int) -> list[dict[str, Any]]: ...
