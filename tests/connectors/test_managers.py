"""Who manages a deal owner, read through the real clients from both sandboxes:
Salesforce `User.ManagerId` (SOQL, `Manager.Email`), HubSpot owners' primary team
(`/crm/v3/owners`, `teams`), each cached per connector, and the `crm.owner_manager`
activity on top of them."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from simple_salesforce.format import format_soql
from support.handoffs import make_deal
from support.hubspot import OWNERS, HubSpotSandbox
from support.hubspot import running_sandbox as running_hubspot
from support.salesforce import API, Sandbox, auth_for, connector_for, running_sandbox
from temporalio.testing import ActivityEnvironment

from activities.crm import MANAGER_LOOKUP_TRIES, CrmActivities, DealRef
from connectors.errors import NotFound, Unavailable
from connectors.lines import QuoteLine
from connectors.managers import ManagerReader, OwnerManager, OwnerRef
from connectors.memory import MemoryConnector

SAM, RITA, MAYA = "sam.rep@example.com", "rita.rep@example.com", "maya.manager@example.com"
VICTOR, CARLA = "victor.vp@example.com", "carla.cfo@example.com"


@pytest.fixture(scope="module")
def salesforce(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with running_sandbox(tmp_path_factory.mktemp("sf-managers")) as sandbox:
        yield sandbox


@pytest.fixture
def hubspot() -> Iterator[HubSpotSandbox]:
    with running_hubspot() as sandbox:
        yield sandbox


# -- Salesforce ---------------------------------------------------------------------------
def test_salesforce_user_manager_id_is_queryable_through_the_manager_relationship(
    salesforce: Sandbox,
) -> None:
    """The sandbox org has an org chart: `ManagerId` and `Manager.Email` over SOQL."""
    q = format_soql("SELECT Id, ManagerId, Manager.Email FROM User WHERE Email = {}", SAM)
    rows = salesforce.rest("GET", f"{API}/query/", params={"q": q}).json()["records"]
    assert rows[0]["ManagerId"].startswith("005")
    assert rows[0]["Manager"]["Email"] == MAYA


@pytest.mark.parametrize(
    ("owner", "manager"),
    [(SAM, MAYA), ("Maya.Manager@Example.com", VICTOR), (VICTOR, CARLA), (CARLA, None),
     ("nobody@example.com", None)],
)  # fmt: skip
def test_salesforce_manager_of_reads_the_users_manager(
    salesforce: Sandbox, owner: str, manager: str | None
) -> None:
    """Each user's manager by email; none for the top of the chart or a stranger."""
    connector = connector_for(salesforce, auth_for(salesforce, "client_credentials"))
    assert isinstance(connector, ManagerReader)
    assert connector.manager_of(owner) == manager
    assert connector.team_of(owner) is None


def test_salesforce_manager_of_is_cached_and_an_outage_is_unavailable(
    salesforce: Sandbox,
) -> None:
    """A known answer is not asked again, even while the org is down; a new one is
    Unavailable then (the workflow falls back to the policy)."""
    connector = connector_for(salesforce, auth_for(salesforce, "client_credentials"), max_retries=1)
    assert connector.manager_of(SAM) == MAYA
    salesforce.faults(down=True)
    try:
        assert connector.manager_of(SAM) == MAYA  # from the cache: no request made
        with pytest.raises(Unavailable):
            connector.manager_of(VICTOR)
    finally:
        salesforce.reset()


def test_the_owner_manager_activity_reads_salesforce(salesforce: Sandbox) -> None:
    """`crm.owner_manager` answers the manager's email; no team is asked for."""
    crm = CrmActivities(connector_for(salesforce, auth_for(salesforce, "client_credentials")))
    got = crm.owner_manager(OwnerRef(owner_email=" Sam.Rep@example.com "))
    assert got == OwnerManager(owner_email=SAM, manager=MAYA, team=None)


# -- HubSpot ------------------------------------------------------------------------------
def test_hubspot_owners_list_their_teams_with_the_primary_flagged(
    hubspot: HubSpotSandbox,
) -> None:
    """The owners API shape: `teams` of `id`, `name`, `primary` on every owner."""
    owners = hubspot.api("GET", "/crm/v3/owners/", params={"email": RITA}).json()["results"]
    assert [(t["name"], t["primary"]) for t in owners[0]["teams"]] == [
        ("Sales West", True),
        ("Sales East", False),
    ]
    assert all(isinstance(t["id"], str) for t in owners[0]["teams"])
    victor = hubspot.api("GET", "/crm/v3/owners/", params={"email": VICTOR}).json()["results"]
    assert victor[0]["teams"] == []


def test_hubspot_team_of_is_the_primary_team_read_once(hubspot: HubSpotSandbox) -> None:
    """The primary team by email (none for an owner without teams or a stranger), from
    one owners page; HubSpot owners carry no manager."""
    hs = hubspot.connector()
    assert isinstance(hs, ManagerReader)
    assert hs.team_of(SAM) == "Sales East"
    assert hs.team_of("Rita.Rep@example.com") == "Sales West"
    assert hs.team_of(VICTOR) is None
    assert hs.team_of("nobody@example.com") is None
    assert hs.manager_of(SAM) is None
    assert hubspot.stats()[OWNERS] == 1  # the first page held every owner: cached


def test_hubspot_team_of_an_unreachable_crm_raises(hubspot: HubSpotSandbox) -> None:
    """A CRM answering 503 is Unavailable (the activity retries, then the policy decides)."""
    hs = hubspot.connector(max_retries=1, backoff_s=0.01)
    hubspot.faults(down=True)
    with pytest.raises(Unavailable):
        hs.team_of(SAM)


def test_the_owner_manager_activity_reads_hubspot_teams(hubspot: HubSpotSandbox) -> None:
    """`crm.owner_manager` answers HubSpot's primary team and no manager."""
    crm = CrmActivities(hubspot.connector())
    got = crm.owner_manager(OwnerRef(owner_email=RITA))
    assert got == OwnerManager(owner_email=RITA, manager=None, team="Sales West")


# -- every connector ----------------------------------------------------------------------
def test_the_owner_manager_activity_refuses_what_is_not_an_email() -> None:
    """An owner that is not an email is not asked about (nothing reaches the CRM)."""
    memory = MemoryConnector()
    memory.managers = {SAM: MAYA}
    crm = CrmActivities(memory)
    assert crm.owner_manager(OwnerRef(owner_email="not an email")).manager is None
    assert crm.owner_manager(OwnerRef(owner_email="")).manager is None
    assert memory.calls["manager_of"] == 0
    assert crm.owner_manager(OwnerRef(owner_email=SAM)).manager == MAYA
    with pytest.raises(ValueError, match="254"):
        OwnerRef(owner_email="a" * 300 + "@example.com")


def test_the_opening_read_retries_a_manager_outage_then_answers_without_one() -> None:
    """`crm.open_deal` reads the deal, its lines and its owner's manager at once. A
    manager look-up that fails is retried with the whole read (reads are idempotent)
    until the last of its tries, which answers the deal and lines, no manager, and why;
    a permanent refusal answers at once. The deal's own read is never given up."""
    memory = MemoryConnector([make_deal("D-open")])  # owned by SAM
    memory.set_line_items("D-open", [QuoteLine(id="l1", name="Seat", quantity=2, unit_price=10)])
    memory.managers = {SAM: MAYA}
    crm, env = CrmActivities(memory), ActivityEnvironment()
    got = env.run(crm.open_deal, DealRef(deal_id="D-open"))
    assert (got.deal.id, len(got.lines.lines), got.manager) == (
        "D-open",
        1,
        OwnerManager(owner_email=SAM, manager=MAYA),
    )
    memory.manager_error = Unavailable("down", crm="memory")
    for attempt in range(1, MANAGER_LOOKUP_TRIES):
        env.info = dataclasses.replace(env.info, attempt=attempt)
        with pytest.raises(Unavailable):
            env.run(crm.open_deal, DealRef(deal_id="D-open"))
    env.info = dataclasses.replace(env.info, attempt=MANAGER_LOOKUP_TRIES)
    got = env.run(crm.open_deal, DealRef(deal_id="D-open"))
    assert got.deal.id == "D-open" and got.manager is None and got.manager_problem == "memory: down"
    memory.manager_error = NotFound("no such user", crm="memory")
    env.info = dataclasses.replace(env.info, attempt=1)
    got = env.run(crm.open_deal, DealRef(deal_id="D-open"))
    assert got.manager is None and "failed permanently" in (got.manager_problem or "")
