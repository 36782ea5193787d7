"""Landing zone: every JSON-lines file of each source, typed to one schema per source."""


from dagster import (
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetsDefinition,
    Failure,
    MetadataValue,
    asset,
    asset_check,
)

from stedi_assets import schemas
from stedi_assets.assets.common import asset_kwargs
from stedi_assets.aws.catalog import CatalogError, TableCatalog
from stedi_assets.io.landing_reader import LandingError
from stedi_assets.resources import Engine, LandingSource

MAX_REPORTED_REJECTS = 5


def _landing_asset(table: schemas.Table) -> AssetsDefinition:
    @asset(**asset_kwargs(table.name))
    def _landing(context: AssetExecutionContext, engine: Engine, landing: LandingSource,
                 catalog: TableCatalog):
        try:
            batch = engine.read_landing(landing.files(table.source), table, landing.store)
        except LandingError as exc:
            raise Failure(description=str(exc)) from None
        if batch.rejected:
            # Never drop a line silently: a line that cannot become a row stops the asset.
            examples = [
                f"{r['file']}:{r['line_number']}: {r['reason']}"
                for r in batch.rejects.head(MAX_REPORTED_REJECTS).to_dicts()
            ]
            raise Failure(
                description=(
                    f"{batch.rejected} line(s) of {table.source} landing data cannot become "
                    f"{table.name} rows:\n" + "\n".join(examples)
                ),
                metadata={"rejected_lines": batch.rejected, "examples": examples},
            )
        try:
            catalog_table = catalog.register_json_table(table.name, landing.folder(table.source))
        except CatalogError as exc:
            raise Failure(description=str(exc)) from None
        if catalog_table:
            context.add_output_metadata({"catalog_table": catalog_table})
        context.add_output_metadata(
            {
                "files": len(batch.files),
                "lines_read": batch.lines_read,
                "blank_lines": batch.blank_lines,
                "landing_folder": MetadataValue.path(landing.folder(table.source)),
            }
        )
        return batch.rows

    return _landing


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


landing_assets = [_landing_asset(t) for t in schemas.LANDING_TABLES]
landing_checks = [_schema_check(t) for t in schemas.LANDING_TABLES]
