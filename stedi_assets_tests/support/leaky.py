"""A deliberately broken engine: its customer_trusted lets non-consenting customers through.

Used to prove that the blocking consent check stops the graph — in-process and, through
`leaky_location.py`, in a real `dagster dev`.
"""

from types import SimpleNamespace

import polars as pl

from stedi_assets.engines.polars_engine import PolarsEngine
from stedi_assets.transforms import polars as polars_ops


class LeakyEngine(PolarsEngine):
    @property
    def ops(self):
        ops = SimpleNamespace(**{n: getattr(polars_ops, n) for n in dir(polars_ops)
                                 if not n.startswith("_")})
        ops.customer_trusted = lambda customer_landing, *_: customer_landing  # leaks everyone
        return ops


def leaky_engine() -> PolarsEngine:
    return LeakyEngine()


class LossyEngine(PolarsEngine):
    """Loses the first accelerometer row while landing (neither landed nor quarantined)."""

    def stream_landing(self, files, table, store=None):
        batch = super().stream_landing(files, table, store)
        if table.name == "accelerometer_landing":
            batch.rows = batch.row_frame().filter(pl.int_range(pl.len()) > 0)
        return batch
