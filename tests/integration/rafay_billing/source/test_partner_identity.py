"""Partner-source org identity (issue 21, rule 14 a and b), against the simulator over real HTTP.

(a) An org of the v2 listing without an id field is matched to the partner API's orgs by display
name, case and spaces ignored; a name with several candidates, or none while some partner usage
maps to no listed org (a rename), fails that org naming them, never a silent zero or another org's
usage. (b) A partner-only console is the explicit source ``partner_only``: a 404 on the org listing
is an error that says so, never a switch to another org identity.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from rafay_billing.errors import RafayError, RafayResponseError
from rafay_billing.source.client import RafayClient
from rafay_billing.source.sources import API_PARTNER_ONLY, PartnerOnlySource, PartnerSource, usage_source
from rafay_billing.window import Window
from rafay_simulator import Dataset, Instance, Org, Profile, RafaySimulator

WINDOW = Window(datetime(2026, 11, 10, tzinfo=UTC), datetime(2026, 11, 11, tzinfo=UTC))


def org(org_id: str, name: str, uid: str, *, partner_name: str = "", idle: bool = False) -> Org:
    """An org with one 24 h compute instance on WINDOW's day (none when ``idle``)."""
    start = datetime(2026, 11, 12 if idle else 1, tzinfo=UTC)
    return Org(org_id, name, [Profile("vm", "compute", None, [], [Instance(f"id-{org_id}", "vm-1", start)])],
               uid=uid, partner_name=partner_name)


def client_for(sim: RafaySimulator) -> RafayClient:
    return RafayClient(sim.url, sim.api_key)


def hours(client: RafayClient, ref) -> list[tuple[str, Decimal | None]]:
    rows = PartnerSource().extract_org(client, ref, WINDOW, org_seq=0).rows
    return [(r.org_id, r.usage_hours) for r in rows]


def test_a_display_name_differing_in_case_and_spaces_still_matches(rafay_sim_factory) -> None:
    """Before: the exact-name lookup found nothing, the org billed zero with coverage ``billed``."""
    dataset = Dataset([org("coke", "Coke  Inc", "c1", partner_name=" coke inc"), org("pepsi", "Pepsi", "p1")])
    client = client_for(rafay_sim_factory(dataset=dataset))
    orgs = {o.org_id: o for o in PartnerSource().list_orgs(client, WINDOW)}
    assert (orgs["coke"].partner_id, orgs["coke"].partner_problem) == ("c1", None)
    assert hours(client, orgs["coke"]) == [("coke", Decimal(24))]


def test_a_renamed_org_fails_naming_the_partner_org_that_maps_to_nobody(rafay_sim_factory) -> None:
    dataset = Dataset([org("coke", "Coke", "c1", partner_name="Coca-Cola"), org("pepsi", "Pepsi", "p1")])
    client = client_for(rafay_sim_factory(dataset=dataset))
    orgs = {o.org_id: o for o in PartnerSource().list_orgs(client, WINDOW)}
    with pytest.raises(RafayResponseError, match=r"org coke \(Coke\).*'Coca-Cola' \(partner id c1\)"):
        hours(client, orgs["coke"])  # never a zero bill
    assert hours(client, orgs["pepsi"]) == [("pepsi", Decimal(24))]


def test_names_that_collide_once_normalised_are_refused_naming_both_candidates(rafay_sim_factory) -> None:
    """``cola`` is reported by the partner API as ``COKE `` (a rename): before, ``coke`` took the
    exact match and ``cola`` billed zero; now neither can be told apart and both fail, naming why."""
    dataset = Dataset([org("coke", "Coke", "c1"), org("cola", "Cola", "c2", partner_name="COKE ")])
    client = client_for(rafay_sim_factory(dataset=dataset))
    orgs = {o.org_id: o for o in PartnerSource().list_orgs(client, WINDOW)}
    assert orgs["coke"].partner_id is None and orgs["cola"].partner_id is None
    with pytest.raises(RafayResponseError, match=r"'Coke' \(partner id c1\) and 'COKE ' \(partner id c2\)"):
        hours(client, orgs["coke"])
    with pytest.raises(RafayResponseError, match=r"org cola \(Cola\).*maps to no listed org"):
        hours(client, orgs["cola"])


def test_an_idle_org_whose_partner_usage_all_matches_bills_zero(rafay_sim_factory) -> None:
    dataset = Dataset([org("coke", "Coke", "c1"), org("pepsi", "Pepsi", "p1", idle=True)])
    client = client_for(rafay_sim_factory(dataset=dataset))
    orgs = {o.org_id: o for o in PartnerSource().list_orgs(client, WINDOW)}
    assert (orgs["pepsi"].partner_id, orgs["pepsi"].partner_problem) == (None, None)
    assert hours(client, orgs["pepsi"]) == []  # no usage in the window: nothing to read, not an error


def test_ids_in_the_listing_win_over_names(rafay_sim_factory) -> None:
    """With ids (``metadata.id``) the names do not matter, even when they collide."""
    dataset = Dataset([org("coke", "Coke", "c1"), org("cola", "Cola", "c2", partner_name="coke")])
    client = client_for(rafay_sim_factory(dataset=dataset, org_listing_ids=True))
    orgs = {o.org_id: o for o in PartnerSource().list_orgs(client, WINDOW)}
    assert (orgs["coke"].partner_id, orgs["cola"].partner_id) == ("c1", "c2")
    assert hours(client, orgs["cola"]) == [("cola", Decimal(24))]


def test_a_404_org_listing_is_an_error_that_names_partner_only(rafay_sim_factory) -> None:
    """Before: a 404 switched the run to partner-only mode, re-keying every org by its partner id."""
    dataset = Dataset([org("coke", "Coke", "c1"), org("pepsi", "Pepsi", "p1")])
    client = client_for(rafay_sim_factory(dataset=dataset, apis=("partner",)))
    with pytest.raises(RafayError, match=r"404.*set the rafay connection's extra api to partner_only"):
        PartnerSource().list_orgs(client, WINDOW)
    source = usage_source("partner_only")
    assert isinstance(source, PartnerOnlySource) and source.api == API_PARTNER_ONLY
    orgs = source.list_orgs(client, WINDOW)
    assert [(o.org_id, o.name, o.partner_id) for o in orgs] == [("c1", "Coke", "c1"), ("p1", "Pepsi", "p1")]
    assert not source.lists_every_org  # an org shows only on days with usage
