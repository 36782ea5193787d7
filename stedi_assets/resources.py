"""Resources the assets use besides the engine (engines/): the landing source and the check
and privacy settings.

Which flavour of each is used is decided in `deployments` only.
"""

from __future__ import annotations

from dagster import ConfigurableResource, InitResourceContext
from pydantic import PrivateAttr

from stedi_assets.io.landing_files import (
    LandingListing,
    file_stamps,
    landing_fingerprint,
    list_s3_landing_files,
    s3_file_stamps,
    s3_landing_fingerprint,
    scan_landing_folder,
)
from stedi_assets.io.s3 import S3Store
from stedi_assets.settings import LOCAL_PSEUDONYM_SECRET
from stedi_assets.variables import default


class LandingSource(ConfigurableResource):
    """Where the raw JSON-lines sources live: <root>/{customer,accelerometer,step_trainer}/
    on the local disk. `folders` renames a source's folder (e.g. {"customer": "customers"})."""

    root: str
    folders: dict[str, str] = {}

    def folder_name(self, source: str) -> str:
        return self.folders.get(source, source).strip("/")

    def folder(self, source: str) -> str:
        """Where the source's files are: a local path or an s3:// prefix."""
        return f"{self.root.rstrip('/')}/{self.folder_name(source)}"

    @property
    def store(self) -> S3Store | None:
        """How to reach the files when they are on S3; None on the local disk."""
        return None

    def listing(self, source: str) -> LandingListing:
        """The source's files, and the entries skipped (symbolic links leading outside the
        landing root are never read)."""
        return scan_landing_folder(self.root, self.folder_name(source))

    def files(self, source: str) -> list[str]:
        return self.listing(source).files

    def fingerprint(self, source: str) -> str:
        """Changes whenever a file of the source is added, removed or rewritten."""
        return landing_fingerprint(self.root, self.folder_name(source))

    def file_stamps(self, source: str, files: list[str]) -> dict[str, str]:
        """A stamp per file that changes when the file is rewritten (size, mtime or ETag)."""
        return file_stamps(files)


class S3LandingSource(LandingSource):
    """Landing sources under an s3://bucket/prefix/ root, read with the standard AWS credential
    chain, or unsigned (`anonymous`) for a public bucket such as the seeds' cd0030bucket."""

    region: str
    endpoint_url: str | None = None
    anonymous: bool = False
    _store: S3Store | None = PrivateAttr(default=None)

    @property
    def store(self) -> S3Store:
        if self._store is None:
            self._store = S3Store(self.region, self.endpoint_url, self.anonymous)
        return self._store

    def listing(self, source: str) -> LandingListing:
        return LandingListing(list_s3_landing_files(self.root, self.folder_name(source),
                                                    self.store))

    def fingerprint(self, source: str) -> str:
        return s3_landing_fingerprint(self.root, self.folder_name(source), self.store)

    def file_stamps(self, source: str, files: list[str]) -> dict[str, str]:
        return s3_file_stamps(self.root, self.folder_name(source), self.store)



class CheckSettings(ConfigurableResource):
    """Thresholds of the WARN-level asset checks."""

    #: Join coverage WARNs when fewer step readings than this share find accelerometer readings.
    min_join_coverage: float = float(default("STEDI_MIN_JOIN_COVERAGE"))
    #: The quarantine-rate check WARNs when more landing lines than this share are rejected.
    max_reject_share: float = float(default("STEDI_MAX_REJECT_SHARE"))


class PrivacySettings(ConfigurableResource):
    """How far consent reaches and how curated tables name customers."""

    #: Key of the HMAC-SHA256 that turns an email into the pseudonymous customerKey.
    pseudonym_secret: str
    #: Drop accelerometer readings taken before the customer's shareWithResearchAsOfDate.
    consent_as_of_date: bool = False
    #: `include` keeps a device's readings once one owner consented; `exclude` drops the
    #: readings of devices that also belong to a customer without consent (STEDI_SHARED_DEVICES)
    shared_devices: str = default("STEDI_SHARED_DEVICES")

    @property
    def exclude_shared_devices(self) -> bool:
        return self.shared_devices == "exclude"

    def setup_for_execution(self, context: InitResourceContext) -> None:
        # every run that keys customers with the public development key says so
        if self.pseudonym_secret == LOCAL_PSEUDONYM_SECRET and context.log:
            context.log.warning(
                "customerKey is computed with the public development key (STEDI_PSEUDONYM_SECRET "
                "is not set): anyone can reverse these keys; use it on local test data only")
