"""`handoff bench --crm salesforce`: the Salesforce sandbox as the bench's CRM.

The sandbox runs as its own process over HTTPS, with a local CA (trustme) in the work
dir, exactly as `handoff dev --crm salesforce` serves it; the worker logs in through the
sandbox's connected app (client credentials). Deals are Opportunities created through
the REST API (sObject Collections, 200 per call), under a seeded Account so an Order
can be created for them. The change feed is off: the bench starts every handoff itself,
and the feed's polling would add calls that no handoff made.

Counting follows Salesforce's own accounting (``/_sandbox/stats/calls``): a composite
request is one API call whatever it holds; its subrequests are counted apart, by route.
The daily ceiling is the org's 24-hour allocation divided by the calls per handoff.
"""

from __future__ import annotations

import math
import ssl
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
from simple_salesforce.format import format_soql
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter

from connectors.base import WriteBack
from sandbox.common import FaultSettings

SANDBOX_TOKEN = "handoff-sandbox"  # noqa: S105 - the documented sandbox token
API = "/services/data/v59.0"
KEY_FIELD = "Handoff_Key__c"
#: The allocation the sandbox is given for the run: high enough that the connector never
#: slows down for it (it paces itself from 90% of the allocation).
BENCH_ALLOCATION = 1_000_000_000
COLLECTION = 200  # records per sObject Collections call
COMPOSITE_SUBREQUESTS = 25  # per composite request (connectors.salesforce_writes)
OWNER, ACCOUNT = "sam.rep@example.com", "Acme Corp"
WRITE_BACK = "crm.write_back"
#: Per worker: every active User listed once (task owners' OwnerId), and the deal owner's
#: manager once per owner (`User.ManagerId`); all the bench's deals have one owner.
DIRECTORY_READS_PER_WORKER = 2
#: Salesforce Enterprise (and Professional with API access): 100,000 API calls per
#: rolling 24 h plus 1,000 per Salesforce user licence (the daily allocation).
ENTERPRISE_BASE, PER_LICENCE = 100_000, 1_000


def worker_env(sandbox_url: str, ca_pem: Path) -> dict[str, str]:
    """What `handoff worker` needs to use the sandbox as its org (as `handoff dev` sets
    it), with the change feed off."""
    return {
        "HANDOFF_CRM": "salesforce",
        "HANDOFF_SALESFORCE_LOGIN_HOST": sandbox_url.removeprefix("https://"),
        "HANDOFF_SALESFORCE_CA_FILE": str(ca_pem),
        "HANDOFF_SALESFORCE_DOMAIN": "handoff-sandbox.my",
        "HANDOFF_SALESFORCE_CONSUMER_KEY": "handoff-sandbox-consumer",
        "HANDOFF_SALESFORCE_CONSUMER_SECRET": "handoff-sandbox-secret",
        "HANDOFF_CHANGE_FEED": "false",
    }


class SalesforceSandbox:
    """The Salesforce sandbox's REST API and control endpoints, over HTTPS."""

    crm = "salesforce"

    def __init__(self, base: str, ca_pem: Path) -> None:
        self.base = base
        self.http = httpx.Client(
            base_url=base,
            timeout=60,
            verify=ssl.create_default_context(cafile=str(ca_pem)),
            trust_env=False,  # REQUESTS_CA_BUNDLE and friends must not override the CA
            headers={"Authorization": f"Bearer {SANDBOX_TOKEN}"},
        )
        self._owner_id: str | None = None
        self._account_id: str | None = None

    def close(self) -> None:
        self.http.close()

    def _control(self, method: str, path: str, body: Any = None) -> Any:
        response = self.http.request(method, f"/_sandbox/{path}", json=body)
        response.raise_for_status()
        return response.json() if response.content else None

    def set_limits(self) -> None:
        self._control("POST", "limits", {"allocation": BENCH_ALLOCATION, "used": 0})

    def faults(self, **settings: Any) -> None:
        self._control("POST", "faults", FaultSettings(**settings).model_dump())

    def lose_responses(self, count: int) -> None:
        self._control("POST", "lost-responses", {"count": count})

    def stats(self) -> dict[str, int]:
        """Requests by route (a composite once; logins included) and ``total``: API calls
        as the daily allocation counts them (logins are not API calls)."""
        routes: dict[str, int] = self._control("GET", "stats")
        return {**routes, "total": int(self._control("GET", "stats/calls")["total"])}

    def subrequests(self) -> dict[str, int]:
        """Composite subrequests by route, the sObject named."""
        result: dict[str, int] = self._control("GET", "stats/calls")["subrequests"]
        return result

    def reset_stats(self) -> None:
        self._control("POST", "stats/reset")

    def duplicates(self, deal_id: str) -> int:
        """Rows beyond the first per ``Handoff_Key__c`` among the Opportunity's Tasks
        (timeline entries included) and Orders."""
        activity = self._control("GET", f"opportunities/{deal_id}/activity")
        rows = [*activity["tasks"], *activity["notes"], *activity["orders"]]
        keys = Counter(r.get(KEY_FIELD) for r in rows if r.get(KEY_FIELD))
        return sum(n - 1 for n in keys.values() if n > 1)

    def _query(self, soql: str) -> list[dict[str, Any]]:
        response = self.http.get(f"{API}/query/", params={"q": soql})
        response.raise_for_status()
        records: list[dict[str, Any]] = response.json()["records"]
        return records

    def create_deals(self, count: int, *, qualified: bool = False, discount: int = 30) -> list[str]:
        """Create `count` Opportunities ready for every handoff contract, 200 per call;
        `qualified` ticks the qualify evidence fields (the deal goes to the desk)."""
        if self._owner_id is None:
            user = format_soql("SELECT Id FROM User WHERE Email = {}", OWNER)
            account = format_soql("SELECT Id FROM Account WHERE Name = {}", ACCOUNT)
            self._owner_id = self._query(user)[0]["Id"]
            self._account_id = self._query(account)[0]["Id"]
        ids: list[str] = []
        while len(ids) < count:
            n = min(COLLECTION, count - len(ids))
            records = [
                {
                    "attributes": {"type": "Opportunity"},
                    **opportunity_fields(len(ids) + i, qualified, discount),
                    "OwnerId": self._owner_id,
                    "AccountId": self._account_id,
                }
                for i in range(n)
            ]
            response = self.http.post(
                f"{API}/composite/sobjects", json={"allOrNone": True, "records": records}
            )
            response.raise_for_status()
            results = response.json()
            if not all(r.get("success") for r in results):
                raise RuntimeError(f"the sandbox refused bench deals: {results[:2]}")
            ids += [str(r["id"]) for r in results]
        return ids


def opportunity_fields(n: int, qualified: bool, discount: int) -> dict[str, Any]:
    """As the HubSpot bench's deals: 50,000 at `discount`% with every contract field."""
    evidence = ("Need_Confirmed__c", "Budget_Confirmed__c", "Decision_Maker_Identified__c")
    return {
        "Name": f"Bench deal {n}",
        "StageName": "Prospecting",
        "CloseDate": "2026-12-31",
        "Amount": 50000.0,
        "Discount_Percent__c": float(discount),
        "Scope__c": "Two sites",
        "Start_Date__c": "2026-12-01",
        "Site_Notes__c": "Gate B",
        "Primary_Contact__c": "bob@example.com",
        "Promised__c": "Training included",
        "Billing_Contact__c": "ap@example.com",
        "PO_Number__c": f"PO-{n}",
        **({f: True for f in (*evidence, "Timeline_Confirmed__c")} if qualified else {}),
    }


def _of(history: WorkflowHistory, kind: int) -> list[Any]:
    return [e for e in history.events if e.event_type == kind]


def expected_calls(histories: Iterable[WorkflowHistory]) -> tuple[int, int]:
    """(write-backs, the Salesforce API calls they need at the minimum) from activity
    inputs, as `connectors.salesforce_writes` sends them.

    A write-back that carries the deal's known LastModifiedDate (`WriteBack.modified_at`,
    from the previous write's receipt), moves no task and knows the id of every task it
    completes is conditional and reads nothing: one composite per 25 subrequests (the
    Opportunity PATCH and the GET of its LastModifiedDate after it, an upsert per note
    and task, a PATCH per task completed). Any other write-back is one composite read
    first when it compares fields or settles earlier tasks (both in one composite), then
    the same writes with a PATCH per earlier task it completes or moves (the bench never
    closes Handoff's tasks itself, so each one asked is still open). A 412 (a person's
    edit, or Handoff's own write in the known second) is not in the minimum. Reading the
    deal is one GET, its quote one SOQL query; an Order is a GET of the AccountId and an
    upsert. (Plus `DIRECTORY_READS_PER_WORKER` per worker.)
    """
    converter = pydantic_data_converter.payload_converter
    writes = calls = 0
    for history in histories:
        for e in _of(history, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED):
            attrs = e.activity_task_scheduled_event_attributes
            name = attrs.activity_type.name
            if name == WRITE_BACK:
                batch = converter.from_payloads(list(attrs.input.payloads), [WriteBack])[0]
                assert isinstance(batch, WriteBack)
                writes += 1
                settle = set(batch.complete_tasks) | set(batch.reassign_tasks)
                unread = (
                    batch.modified_at is not None
                    and not batch.reassign_tasks
                    and set(batch.complete_tasks) <= set(batch.open_task_ids)
                )
                read = set(batch.expected) & set(batch.fields) or settle
                calls += 1 if read and not unread else 0
                subs = (2 if batch.fields else 0) + len(batch.notes) + len(batch.tasks)
                calls += math.ceil((subs + len(settle)) / COMPOSITE_SUBREQUESTS)
            elif name in ("crm.get_deal", "crm.get_line_items"):
                calls += 1
            elif name in ("crm.open_deal", "crm.create_billing_document"):
                calls += 2  # the deal's GET and its quote's query; a GET and an upsert
    return writes, calls


def licences_allocation(licences: int) -> int:
    """An Enterprise org's daily API allocation with `licences` Salesforce licences."""
    return ENTERPRISE_BASE + PER_LICENCE * licences


def ceiling(calls_per_handoff: float, licences: int) -> dict[str, Any]:
    """Completed handoffs per 24 h (and on average per minute) that fit in the org's
    daily allocation, if Handoff had all of it."""
    allocation = licences_allocation(licences)
    per_day = allocation / calls_per_handoff if calls_per_handoff else 0.0
    return {
        "crm": "salesforce",
        "handoffs_per_day": round(per_day),
        "handoffs_per_min": round(per_day / 1440, 1),
        "limit": f"{allocation:,} API calls per rolling 24 h",
        "assumption": f"Enterprise Edition: 100,000 + 1,000 per Salesforce licence x "
        f"{licences} licences (--sf-licenses); every call of the org counts against it, "
        "other integrations' too",
    }
