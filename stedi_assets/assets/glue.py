"""The graph on AWS Glue: every step of the local graph as a multi-asset that runs its Glue job.

Same asset keys, groups, deps, descriptions, automation and check specs as the local assets
(taken from their definitions), kinds spark/glue. The job computes the tables and the checks
and reports them through Dagster Pipes; here they are only launched, and the tables are
registered in the catalog (a no-op without a Glue database), as the s3 environment does.
"""

from collections.abc import Sequence

from dagster import (
    AssetChecksDefinition,
    AssetExecutionContext,
    AssetsDefinition,
    Failure,
    MaterializeResult,
    multi_asset,
)

from stedi_assets import schemas
from stedi_assets.assets.common import OWNERS
from stedi_assets.automation import LANDING_FINGERPRINT
from stedi_assets.aws.glue_launch import GlueJobs
from stedi_assets.aws.glue_steps import STEP_OUTPUTS
from stedi_assets.io.catalog import CatalogError, TableCatalog
from stedi_assets.io.landing_reader import LandingError
from stedi_assets.resources import LandingSource

KINDS = {"spark", "glue", "iceberg"}


def _register(catalog: TableCatalog, landing: LandingSource,
              result: MaterializeResult) -> MaterializeResult:
    """Register a reported landing table's raw JSON in the catalog (the Iceberg tables were
    registered by the job's commits)."""
    name = result.asset_key.path[-1]
    table = schemas.TABLES[name]
    metadata = dict(result.metadata or {})
    if not table.source:
        return result
    try:
        registered = catalog.register_json_table(name, landing.folder(table.source))
    except CatalogError as exc:
        raise Failure(description=str(exc)) from None
    if not registered:
        return result
    return MaterializeResult(asset_key=result.asset_key, data_version=result.data_version,
                             metadata={**metadata, "catalog_table": registered})


def _fingerprints(landing: LandingSource, step: str) -> dict[str, str]:
    """{landing table: its source's fingerprint} for the landing tables the step computes."""
    tables = [schemas.TABLES[name] for name in STEP_OUTPUTS[step]]
    try:
        return {t.name: landing.fingerprint(t.source) for t in tables if t.source}
    except LandingError as exc:
        raise Failure(description=str(exc)) from None


def _with_fingerprint(result: MaterializeResult,
                      fingerprints: dict[str, str]) -> MaterializeResult:
    name = result.asset_key.path[-1]
    if name not in fingerprints:
        return result
    return MaterializeResult(asset_key=result.asset_key, data_version=result.data_version,
                             metadata={**(result.metadata or {}),
                                       LANDING_FINGERPRINT: fingerprints[name]})


def glue_step_asset(local: AssetsDefinition,
                    local_checks: Sequence[AssetChecksDefinition]) -> AssetsDefinition:
    """The Glue twin of one local (multi-)asset."""
    step = local.node_def.name
    if set(STEP_OUTPUTS.get(step, ())) != {k.path[-1] for k in local.keys}:
        raise ValueError(f"no Glue step computes {sorted(k.path[-1] for k in local.keys)} "
                         f"(step {step!r}); add it to aws/glue_steps.py")
    specs = [spec.replace_attributes(kinds=KINDS, owners=OWNERS) for spec in local.specs]
    check_specs = [*local.check_specs,
                   *(spec for checks in local_checks for spec in checks.check_specs
                     if spec.asset_key in local.keys)]

    @multi_asset(name=step, specs=specs, check_specs=check_specs,
                 description=f"Runs the Glue job of step {step}")
    def _glue_step(context: AssetExecutionContext, glue: GlueJobs, catalog: TableCatalog,
                   landing: LandingSource):
        # a landing step records its source's fingerprint, as the local landing assets do
        fingerprints = _fingerprints(landing, step)
        for result in glue.run(context, step):
            if isinstance(result, MaterializeResult):
                result = _register(catalog, landing, _with_fingerprint(result, fingerprints))
            yield result

    return _glue_step


def glue_assets(local_assets: Sequence[AssetsDefinition],
                local_checks: Sequence[AssetChecksDefinition]) -> list[AssetsDefinition]:
    return [glue_step_asset(a, local_checks) for a in local_assets]
