"""Landing zone: every JSON-lines file of each source, typed to one schema per source, and a
quarantine table for every line that could not become a row."""

from dagster import (
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetIn,
    AssetsDefinition,
    Failure,
    MetadataValue,
    Output,
    asset_check,
    multi_asset,
)

from stedi_assets import schemas
from stedi_assets.assets.common import asset_out
from stedi_assets.aws.catalog import CatalogError, TableCatalog
from stedi_assets.io.landing_reader import LandingError, count_lines
from stedi_assets.resources import CheckSettings, Engine, LandingBatch, LandingSource

MAX_REPORTED_REJECTS = 5


def _landing_asset(table: schemas.Table) -> AssetsDefinition:
    rejects = schemas.rejects_table(table)

    @multi_asset(name=f"land_{table.source}",
                 outs={table.name: asset_out(table.name), rejects.name: asset_out(rejects.name)})
    def _landing(context: AssetExecutionContext, engine: Engine, landing: LandingSource,
                 catalog: TableCatalog):
        try:
            batch = engine.stream_landing(landing.files(table.source), table, landing.store)
        except LandingError as exc:
            raise Failure(description=str(exc)) from None
        try:
            try:
                catalog_table = catalog.register_json_table(table.name,
                                                            landing.folder(table.source))
            except CatalogError as exc:
                raise Failure(description=str(exc)) from None
            yield from _outputs(context, engine, landing, table, batch, catalog_table)
        finally:
            batch.close()  # the rows are stored (or the step failed): free the spilled parts

    return _landing


def _outputs(context: AssetExecutionContext, engine: Engine, landing: LandingSource,
             table: schemas.Table, batch: LandingBatch, catalog_table):
    rejects = schemas.rejects_table(table)
    rejected = engine.ops.row_count(batch.rejects)
    if rejected:
        examples = [f"{r['file']}:{r['line_number']}: {r['reason']}"
                    for r in engine.ops.head_rows(batch.rejects, MAX_REPORTED_REJECTS)]
        context.log.warning(f"{rejected} line(s) of {table.source} quarantined in "
                            f"{rejects.name}, e.g.\n" + "\n".join(examples))
    metadata = {
        "files": len(batch.files),
        "lines_read": batch.lines_read,
        "lines_rejected": rejected,
        "unknown_keys": batch.unknown_keys or {},
        "landing_folder": MetadataValue.path(landing.folder(table.source)),
    }
    if catalog_table:
        metadata["catalog_table"] = catalog_table
    yield Output(batch.rows, output_name=table.name, metadata=metadata)
    yield Output(batch.rejects, output_name=rejects.name,
                 metadata={"lines_rejected": rejected})


def _schema_check(table: schemas.Table) -> AssetChecksDefinition:
    @asset_check(
        asset=table.name, name="schema", blocking=True,
        description=f"{table.name} has the declared columns with the declared types.",
    )
    def _check(engine: Engine, landed) -> AssetCheckResult:
        problems = schemas.schema_problems(engine.ops.frame_logical_schema(landed), table)
        return AssetCheckResult(
            passed=not problems,
            severity=AssetCheckSeverity.ERROR,
            metadata={"problems": problems or ["none"]},
        )

    return _check


def _line_accounting(engine: Engine, landing: LandingSource, table: schemas.Table,
                     landed, rejects) -> dict[str, int]:
    """Lines counted from the raw bytes of the files; rows and rejects from the two tables."""
    try:
        lines = sum(count_lines(f, landing.store) for f in landing.files(table.source))
    except LandingError as exc:
        raise Failure(description=str(exc)) from None
    return {"lines_in_files": lines, "rows_landed": engine.ops.row_count(landed),
            "lines_rejected": engine.ops.row_count(rejects)}


def _conservation_check(table: schemas.Table) -> AssetChecksDefinition:
    rejects = schemas.rejects_table(table)

    @asset_check(
        asset=table.name, name="conservation", blocking=True,
        additional_ins={"rejects": AssetIn(rejects.name)},
        description=f"Every line of the {table.source} files is accounted for: lines counted "
                    f"in the raw files = rows in {table.name} + lines in {rejects.name}.",
    )
    def _check(engine: Engine, landing: LandingSource, landed, rejects) -> AssetCheckResult:
        figures = _line_accounting(engine, landing, table, landed, rejects)
        lost = figures["lines_in_files"] - figures["rows_landed"] - figures["lines_rejected"]
        return AssetCheckResult(
            passed=lost == 0, severity=AssetCheckSeverity.ERROR,
            description="every line accounted for" if lost == 0
            else f"{lost} line(s) neither landed nor quarantined",
            metadata={**figures, "unaccounted": lost},
        )

    return _check


def _quarantine_rate_check(table: schemas.Table) -> AssetChecksDefinition:
    rejects = schemas.rejects_table(table)

    @asset_check(
        asset=table.name, name="quarantine_rate",
        additional_ins={"rejects": AssetIn(rejects.name)},
        description=f"WARN when more than the configured share of the {table.source} lines "
                    "were quarantined (a broken upstream export).",
    )
    def _check(engine: Engine, checks: CheckSettings, landed, rejects) -> AssetCheckResult:
        rows, rejected = engine.ops.row_count(landed), engine.ops.row_count(rejects)
        share = rejected / (rows + rejected) if rows + rejected else 0.0
        return AssetCheckResult(
            passed=share <= checks.max_reject_share, severity=AssetCheckSeverity.WARN,
            description=f"{share:.2%} of lines quarantined (warn above "
                        f"{checks.max_reject_share:.2%})",
            metadata={"lines_rejected": rejected, "rows_landed": rows,
                      "reject_share": float(round(share, 6)),
                      "warn_above": checks.max_reject_share},
        )

    return _check


landing_assets = [_landing_asset(t) for t in schemas.LANDING_TABLES]
landing_checks = [check(t) for t in schemas.LANDING_TABLES
                  for check in (_schema_check, _conservation_check, _quarantine_rate_check)]
