"""Engine-neutral arithmetic of the check figures (plain Python, no frames)."""


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
