"""Engine-neutral arithmetic of the check figures (plain Python, no frames)."""

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class EarlierCustomers:
    """What an incremental consent check knows of the customers since its last pass: the
    customer landing tables as that pass read them, the identities (column `_match`) of the
    customer records added or removed since, and the consenting rows of those customers now
    (`consenting_customers` of their records). Every other customer's consent is what it was,
    so an engine keeping the consenting set of that pass updates it instead of computing
    every customer again. Frames of the engine."""

    customer_landing: Any
    customer_landing_rejects: Any
    changed: Any
    consenting_changed: Any


def join_coverage_figures(step_readings: int, matched: int, joined_rows: int,
                          foreign: int) -> dict[str, float | int]:
    """The join-coverage figures from the four counts every engine computes."""
    return {
        "step_readings": step_readings,
        "matched_step_readings": matched,
        "coverage": matched / step_readings if step_readings else 0.0,
        "joined_rows": joined_rows,
        "rows_per_matched_reading": joined_rows / matched if matched else 0.0,
        "foreign_pairs": foreign,
        "foreign_share": foreign / joined_rows if joined_rows else 0.0,
    }
