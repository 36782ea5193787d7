"""Figures for Dagster metadata as plain Python values.

Over Spark Connect (and from some pandas/NumPy paths) counts come back as numpy.int64, shares as
numpy.float64 and comparisons as numpy.bool_; Dagster's metadata and check results accept only
Python's own int/float/bool/str. Every metadata builder (landing, checks, trusted, curated, the
Glue job's report) passes its figures through `plain`. No NumPy import: numpy scalars are
recognised by their `item()` method, so this also runs where NumPy is absent.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

_PLAIN = (bool, int, float, str)


def plain(value: Any) -> Any:
    """`value` with every numpy/numeric scalar inside (dicts, lists, tuples) as a Python one;
    other objects (e.g. MetadataValue) unchanged."""
    if value is None or type(value) in _PLAIN:
        return value
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if type(value) in (list, tuple):  # exactly: Dagster's MetadataValues are tuples too
        return [plain(item) for item in value]
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        return plain(value.item())  # numpy scalar -> int/float/bool/str
    if isinstance(value, bool | numbers.Integral):
        return bool(value) if isinstance(value, bool) else int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return value
