"""Both engines' transform packages satisfy EngineOps (engines/protocol.py): every member of
the protocol exists in transforms/polars and transforms/spark with the same parameters (names,
kinds, defaults), so `engine.ops.<name>(...)` means the same call in either engine."""

from __future__ import annotations

import inspect

import pytest

from stedi_assets import schemas
from stedi_assets.engines.protocol import EngineOps
from stedi_assets.transforms import polars as polars_ops

#: The protocol's members, read from the class (its methods, not what typing adds).
MEMBERS = {name: fn for name, fn in vars(EngineOps).items()
           if inspect.isfunction(fn) and not name.startswith("_")}


def spark_ops():
    pytest.importorskip("pyspark")
    from stedi_assets.transforms import spark

    return spark


def parameters(fn, drop_self: bool = False) -> list[tuple[str, object, bool]]:
    """(name, kind, has a default) of each parameter; the protocol's `self` left out."""
    params = list(inspect.signature(fn).parameters.values())
    if drop_self:
        params = params[1:]
    return [(p.name, p.kind, p.default is not inspect.Parameter.empty) for p in params]


def test_the_protocol_lists_every_table_function():
    derived = {t.name for t in schemas.TABLES.values() if t.zone != "landing"}
    assert derived <= set(MEMBERS)
    assert {"parse_landing", "row_count", "head_rows", "frame_logical_schema",
            "consent_violations", "join_coverage", "shared_device_rows"} <= set(MEMBERS)


@pytest.mark.parametrize("engine", ["polars", "spark"])
def test_engine_ops_satisfy_the_protocol(engine):
    ops = polars_ops if engine == "polars" else spark_ops()
    assert isinstance(ops, EngineOps)  # runtime_checkable: every member is there
    for name, member in MEMBERS.items():
        fn = getattr(ops, name, None)
        assert callable(fn), f"transforms/{engine} lacks {name}"
        assert parameters(fn) == parameters(member, drop_self=True), (
            f"transforms/{engine}.{name}{inspect.signature(fn)} does not match "
            f"EngineOps.{name}{inspect.signature(member)}")


def test_engines_hand_out_their_transform_package():
    from stedi_assets.engines.polars_engine import PolarsEngine

    assert PolarsEngine().ops is polars_ops
    assert isinstance(PolarsEngine().ops, EngineOps)
