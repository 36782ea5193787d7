"""A deliberately broken engine: its customer_trusted lets non-consenting customers through.

Used to prove that the blocking consent check stops the graph — in-process and, through
`leaky_location.py`, in a real `dagster dev`.
"""

from types import SimpleNamespace

from stedi_assets.resources import PolarsEngine
from stedi_assets.transforms import polars_engine


class LeakyEngine(PolarsEngine):
    @property
    def ops(self):
        ops = SimpleNamespace(**{n: getattr(polars_engine, n) for n in dir(polars_engine)
                                 if not n.startswith("_")})
        ops.customer_trusted = lambda customer_landing: customer_landing  # leaks everyone
        return ops


def leaky_engine() -> PolarsEngine:
    return LeakyEngine()
