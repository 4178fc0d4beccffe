"""Where usage comes from: the blog's v2 endpoints (default) or the partner billing metrics API.

Three names (the ``rafay`` connection extra ``api``): ``v2``, ``partner`` (partner usage, orgs and
their ids from the v2 listing) and ``partner_only`` (a console without the v2 listing: orgs are the
partner API's, keyed by their partner id). The last is only ever chosen explicitly: it changes every
org's id, so a 404 must not select it.

Why one small interface: the DAG and ``rafay-billing metrics`` choose a source by name (the ``rafay``
connection extra ``api``, or ``--api``) and then run the same pipeline: org listing, per-org
extraction into ``UsageRow``s, the usage CSV, the load and the rating. Nothing downstream knows
which source produced the rows.
"""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Protocol

from rafay_billing.source.client import PageHook, RafayClient
from rafay_billing.source.extract import (
    ListedProfiles,
    OrgExtraction,
    OrgRef,
    extract_org,
    list_orgs,
    list_profiles,
)
from rafay_billing.window import Window

API_V2 = "v2"
API_PARTNER = "partner"
API_PARTNER_ONLY = "partner_only"
APIS: tuple[str, ...] = (API_V2, API_PARTNER, API_PARTNER_ONLY)


class UsageSource(Protocol):
    """Lists the orgs to bill and extracts one org's usage for a window."""

    @property
    def api(self) -> str: ...

    @property
    def lists_every_org(self) -> bool:
        """True when ``list_orgs`` lists every org whatever its usage; False when an org shows only
        on days with usage (then the orgs already known are billed on idle days too, with zero)."""
        ...

    def list_orgs(self, client: RafayClient, window: Window, *, on_page: PageHook | None = None) -> list[OrgRef]:
        ...

    def list_ahead(self, client: RafayClient, org: OrgRef) -> ListedProfiles | None:
        """What ``extract_org`` reads before the usage and a caller may ask for earlier (v2: the org's
        profiles), handed back as ``listed``; None when the source has nothing to list ahead."""
        ...

    def extract_org(
        self, client: RafayClient, org: OrgRef, window: Window, *, org_seq: int,
        on_page: PageHook | None = None, keep_rows: bool = True, concurrency: int | None = None,
        listed: ListedProfiles | None = None, pool: Executor | None = None,
    ) -> OrgExtraction:
        """One org's usage rows for ``window``. ``listed``: what :meth:`list_ahead` gave for it;
        ``pool``: an executor shared across orgs to read on (else the source makes its own)."""
        ...


@dataclass(frozen=True)
class V2Source:
    """``/v2/organizations``, each org's ``ncp/profiles``, and each profile's ``usage``."""

    api: str = API_V2
    lists_every_org: bool = True

    def list_orgs(self, client: RafayClient, window: Window, *, on_page: PageHook | None = None) -> list[OrgRef]:
        return list_orgs(client, on_page=on_page)

    def list_ahead(self, client: RafayClient, org: OrgRef) -> ListedProfiles | None:
        return list_profiles(client, org.org_id)

    def extract_org(
        self, client: RafayClient, org: OrgRef, window: Window, *, org_seq: int,
        on_page: PageHook | None = None, keep_rows: bool = True, concurrency: int | None = None,
        listed: ListedProfiles | None = None, pool: Executor | None = None,
    ) -> OrgExtraction:
        return extract_org(client, org.org_id, org.name, window, org_seq=org_seq, concurrency=concurrency,
                           on_page=on_page, keep_rows=keep_rows, listed=listed, pool=pool)


@dataclass(frozen=True)
class PartnerSource:
    """``/apis/billing.envmgmt.io/v1/metrics/partner/instance/kind/{compute|service}/usage``."""

    api: str = API_PARTNER
    lists_every_org: bool = True

    def list_orgs(self, client: RafayClient, window: Window, *, on_page: PageHook | None = None) -> list[OrgRef]:
        from rafay_billing.source.partner import partner_orgs  # only the partner source needs it

        return partner_orgs(client, window, on_page=on_page)

    def list_ahead(self, client: RafayClient, org: OrgRef) -> ListedProfiles | None:
        return None  # one listing per org: nothing to ask for ahead

    def extract_org(
        self, client: RafayClient, org: OrgRef, window: Window, *, org_seq: int,
        on_page: PageHook | None = None, keep_rows: bool = True, concurrency: int | None = None,
        listed: ListedProfiles | None = None, pool: Executor | None = None,
    ) -> OrgExtraction:
        from rafay_billing.source.partner import extract_partner_org

        return extract_partner_org(client, org, window, org_seq=org_seq, on_page=on_page, keep_rows=keep_rows)


@dataclass(frozen=True)
class PartnerOnlySource(PartnerSource):
    """The partner API on a console without ``/v2/organizations``: orgs keyed by their partner id."""

    api: str = API_PARTNER_ONLY
    lists_every_org: bool = False

    def list_orgs(self, client: RafayClient, window: Window, *, on_page: PageHook | None = None) -> list[OrgRef]:
        from rafay_billing.source.partner import partner_only_orgs

        return partner_only_orgs(client, window, on_page=on_page)


def usage_source(api: str | None) -> UsageSource:
    """The source named ``api`` (``v2`` when unset); an unknown name says which ones exist."""
    name = (api or API_V2).strip().lower()
    if name == API_V2:
        return V2Source()
    if name == API_PARTNER:
        return PartnerSource()
    if name == API_PARTNER_ONLY:
        return PartnerOnlySource()
    raise ValueError(f"unknown Rafay usage API {api!r}: use one of {', '.join(APIS)}")
