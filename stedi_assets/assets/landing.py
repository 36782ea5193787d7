"""Landing zone: every JSON-lines file of each source, typed to one schema per source, and a
quarantine table for every line that could not become a row.

The landing checks (schema, conservation, quarantine rate) run inside the landing step, on the
batch the step just stored: a separate step per check would cost Dagster more than the checks.
"""

import re

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    Failure,
    MetadataValue,
    Output,
    ResourceParam,
    multi_asset,
)

from stedi_assets import schemas
from stedi_assets.assets.checks import check_result, check_spec, record_blocking_outcome
from stedi_assets.assets.common import asset_out
from stedi_assets.assets.incremental import writes_of_step
from stedi_assets.automation import LANDING_FINGERPRINT
from stedi_assets.check_rules import (
    conservation_outcome,
    quarantine_rate_outcome,
    rules_of,
    schema_outcome,
)
from stedi_assets.engines.base import Engine, LandingBatch
from stedi_assets.figures import plain
from stedi_assets.io.catalog import CatalogError, TableCatalog
from stedi_assets.io.iceberg_io import IcebergIOManager
from stedi_assets.io.landing_files import count_lines
from stedi_assets.io.landing_reader import LandingError
from stedi_assets.io.local_paths import OutsideRootError
from stedi_assets.resources import CheckSettings, LandingSource

MAX_REPORTED_REJECTS = 5
# "<column>: <the value as landed> is not a valid <type>": the value may be an email or a name
_BAD_VALUE = re.compile(r"(\w+): .*? is not a valid (\w+)(?=; |$)", re.DOTALL)


def loggable_reason(reason: str | None) -> str:
    """A reject reason without the landed values it quotes: the log (and so the event log,
    compute logs and alerts) gets the column and the problem; the value stays in the
    quarantine table."""
    return _BAD_VALUE.sub(r"\1: value is not a valid \2", reason or "")


def _landing_asset(table: schemas.Table) -> AssetsDefinition:
    rejects = schemas.rejects_table(table)

    @multi_asset(name=f"land_{table.source}",
                 outs={table.name: asset_out(table.name), rejects.name: asset_out(rejects.name)},
                 check_specs=[check_spec(r) for r in rules_of(table.name)])
    def _landing(context: AssetExecutionContext, engine: Engine, landing: LandingSource,
                 catalog: TableCatalog, checks: CheckSettings,
                 io_manager: ResourceParam[IcebergIOManager]):
        try:
            # taken before the files are read: a file added meanwhile changes it, so the
            # sensor lands it next time (it compares the source's fingerprint with this one)
            fingerprint = landing.fingerprint(table.source)
            batch = engine.land(landing, table)
        except (LandingError, OutsideRootError) as exc:
            raise Failure(description=str(exc)) from None
        try:
            try:
                catalog_table = catalog.register_json_table(table.name,
                                                            landing.folder(table.source))
            except CatalogError as exc:
                raise Failure(description=str(exc)) from None
            context.add_output_metadata({LANDING_FINGERPRINT: fingerprint},
                                        output_name=table.name)
            yield from _outputs(context, engine, landing, table, batch, catalog_table)
            # the outputs are stored by now; the checks look at what was stored
            stored = writes_of_step(context)
            for outcome in _check_outcomes(engine, landing, checks, table, batch):
                record_blocking_outcome(context, io_manager, outcome, stored.get(table.name))
                yield check_result(outcome)
        finally:
            batch.close()  # the rows are stored (or the step failed): free the spilled parts

    return _landing


def _outputs(context: AssetExecutionContext, engine: Engine, landing: LandingSource,
             table: schemas.Table, batch: LandingBatch, catalog_table):
    rejects = schemas.rejects_table(table)
    rejected = plain(engine.ops.row_count(batch.rejects))
    if batch.skipped:  # paths and reasons only: never a byte of what a link points to
        context.log.warning(f"{len(batch.skipped)} landing entry(ies) of {table.source} "
                            "skipped (not read):\n" + "\n".join(batch.skipped))
    if rejected:
        examples = [f"{r['file']}:{r['line_number']}: {loggable_reason(r['reason'])}"
                    for r in engine.ops.head_rows(batch.rejects, MAX_REPORTED_REJECTS)]
        context.log.warning(f"{rejected} line(s) of {table.source} quarantined in "
                            f"{rejects.name}, e.g.\n" + "\n".join(examples))
    metadata = plain({
        "files": len(batch.files),
        "files_parsed": len(batch.files) - batch.files_reused,
        "files_skipped": len(batch.skipped),
        "lines_read": batch.lines_read,
        "lines_rejected": rejected,
        "unknown_keys": batch.unknown_keys or {},
        "landing_folder": MetadataValue.path(landing.folder(table.source)),
    })
    if catalog_table:
        metadata["catalog_table"] = catalog_table
    yield Output(batch.rows, output_name=table.name, metadata=metadata)
    yield Output(batch.rejects, output_name=rejects.name,
                 metadata={"lines_rejected": rejected})


def _line_accounting(engine: Engine, landing: LandingSource,
                     batch: LandingBatch) -> dict[str, int]:
    """Lines counted from the raw bytes of the files (a file reused from the landing cache
    was counted when it was parsed); rows and rejects from the stored batch."""
    try:
        lines = sum(batch.line_counts[f] if f in batch.line_counts
                    else count_lines(f, landing.store) for f in batch.files)
    except LandingError as exc:
        raise Failure(description=str(exc)) from None
    return plain({"lines_in_files": lines,
                  "rows_landed": engine.ops.row_count(batch.row_frame()),
                  "lines_rejected": engine.ops.row_count(batch.rejects)})


def _check_outcomes(engine: Engine, landing: LandingSource, checks: CheckSettings,
                    table: schemas.Table, batch: LandingBatch):
    yield schema_outcome(table, engine.ops.frame_logical_schema(batch.row_frame()))
    figures = _line_accounting(engine, landing, batch)
    yield conservation_outcome(table, **figures)
    yield quarantine_rate_outcome(table, figures["rows_landed"], figures["lines_rejected"],
                                  checks.max_reject_share)


landing_assets = [_landing_asset(t) for t in schemas.LANDING_TABLES]
#: The landing checks are part of the landing assets (check_specs); nothing separate.
landing_checks: list = []
