"""The stall analytics over HTTP: figures, scopes, bounded filters, CSV and escaping."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from support.api import TOKENS, api_client, bearer, make_settings
from support.handoffs import OWNER, SALES_OPS
from support.stall_events import EVENTS, EVIL, MAYA, VICTOR, ev
from temporalio.testing import WorkflowEnvironment

from worker.http.stalls import app_store
from worker.stalls.store import open_store

#: the seed's period, closed at the end of 2026-11-10: as of hour 216 after T0
PERIOD = {"type": "lead-to-cash", "until": "2026-11-10"}
#: sales ops: the default policy's ops role, who may read every handoff
OPS_TOKEN = "tok-salesops-77c1d0e2"
OPS = {"Authorization": f"Bearer {OPS_TOKEN}"}


@pytest.fixture
async def http(dev_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    tokens = {email: SecretStr(t) for email, t in {**TOKENS, SALES_OPS: OPS_TOKEN}.items()}
    settings = make_settings(tmp_path, api_tokens=tokens)
    store = open_store(settings)
    for e in EVENTS:
        store.record(e)
    store.close()
    async with api_client(settings, dev_env.client) as client:
        yield client


async def test_ops_read_every_figure(http: httpx.AsyncClient) -> None:
    """Someone in an ops role gets the figures of every handoff (hand-computed at hour 216:
    B has waited 216 - 6 = 210 h at the deal desk, D 216 - 178 = 38 h)."""
    r = await http.get("/api/stalls", params=PERIOD, headers=OPS)
    assert r.status_code == 200, r.text
    fig = r.json()
    assert (fig["handoffs"], fig["open"]) == (4, 2)
    [aging] = fig["aging"]
    assert (aging["stage"], aging["open"], aging["p50_s"], aging["max_s"]) == (
        "deal_desk",
        2,
        38 * 3600,
        210 * 3600,
    )
    whole = [t for t in fig["time_in_stage"] if t["week"] is None and t["stage"] == "qualify"]
    assert [(t["count"], t["p50_s"], t["p90_s"]) for t in whole] == [(4, 8 * 3600, 20 * 3600)]


async def test_a_person_sees_only_the_handoffs_that_name_them(http: httpx.AsyncClient) -> None:
    """Victor is named by B (an escalation) and D: two handoffs, both open."""
    r = await http.get("/api/stalls", params=PERIOD, headers=bearer(VICTOR))
    assert r.status_code == 200, r.text
    assert (r.json()["handoffs"], r.json()["open"]) == (2, 2)
    assert r.json()["filters"]["owner"] == VICTOR


async def test_another_owners_figures_are_refused(http: httpx.AsyncClient) -> None:
    """A rep asking for their manager's figures gets 403 out_of_scope, on JSON and CSV."""
    for path in ("/api/stalls", "/api/stalls.csv"):
        r = await http.get(path, params={"owner": MAYA}, headers=bearer(OWNER))
        assert r.status_code == 403
        assert r.json()["error"] == "out_of_scope"
    http.cookies.set("handoff_session", TOKENS[OWNER])
    page = await http.get("/stalls", params={"owner": MAYA})
    assert page.status_code == 403
    assert MAYA not in page.text.replace(f"owner={MAYA}", "")


@pytest.mark.parametrize(
    ("params", "bounded"),
    [
        ({"owner": "x" * 300}, True),
        ({"owner": 'a"b@example.com'}, False),
        ({"team": "hackers"}, False),
        ({"type": "lead'to'cash"}, False),
        ({"type": "x" * 80}, True),
        ({"since": "yesterday"}, False),
    ],
)
async def test_bad_filters_are_refused(
    http: httpx.AsyncClient, params: dict[str, str], bounded: bool
) -> None:
    """Oversized or hostile filter values are a 422, never a query."""
    r = await http.get("/api/stalls", params=params, headers=OPS)
    assert r.status_code == 422, r.text
    if bounded:  # over the length bound: refused by the query's declared max_length
        assert r.json()["detail"][0]["type"] == "string_too_long"
    else:  # the right length, the wrong form: the typed code, naming the filter
        assert r.json()["code"] == "invalid"
        assert r.json()["reason"].split(":")[0] == next(iter(params))


async def test_no_credentials_no_figures(http: httpx.AsyncClient) -> None:
    """No token: 401 from the API, and the page sends you to sign in."""
    r = await http.get("/api/stalls")
    assert r.status_code == 401
    page = await http.get("/stalls")
    assert page.status_code == 303 and page.headers["location"].startswith("/login")


async def test_csv_export(http: httpx.AsyncClient) -> None:
    """The CSV is an attachment with every figure, filtered like the JSON."""
    r = await http.get("/api/stalls.csv", params=PERIOD, headers=OPS)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    lines = r.text.splitlines()
    assert "aging,,deal_desk,,,2,38.00,,210.00,,,,," in lines
    assert "cycle_time,all,,,,1,40.00,40.00,,,,,," in lines
    assert "conversion,,deal_desk,,,4,,,,,,1,1,0.2500" in lines


async def test_the_page_escapes_owner_names(http: httpx.AsyncClient) -> None:
    """An owner named like a script is text on the page and in its SVG charts."""
    http.cookies.set("handoff_session", OPS_TOKEN)
    r = await http.get("/stalls", params=PERIOD)
    assert r.status_code == 200, r.text
    assert EVIL not in r.text
    assert "&lt;script&gt;" in r.text
    assert r.text.count('<svg class="chart') == 7
    # no chart or script comes from another origin: no script, no absolute URL at all
    assert "<script" not in r.text and "http://" not in r.text and "https://" not in r.text
    # the owner chart's label and tooltip are escaped inside the SVG too
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;@evil.example: 1 open" in r.text


async def test_metrics_carry_the_stall_figures_by_type_and_stage(
    http: httpx.AsyncClient,
) -> None:
    """/metrics: open handoffs by stage, and over the last 28 days time in stage, nudges
    and conversion, labelled by type and stage (never by owner)."""
    now = datetime.now(UTC)
    store = app_store(http.app)  # type: ignore[attr-defined]
    for hours_ago, kind, stage in ((10, "wait", "qualify"), (4, "wait", "deal_desk")):
        store.record(
            ev("9001", 0, kind, stage, (MAYA,), handoff_type="expansion").model_copy(
                update={"at": now - timedelta(hours=hours_ago), "key": f"x:{stage}"}
            )
        )
    store.record(
        ev("9001", 0, "reminder", "", (MAYA,), handoff_type="expansion").model_copy(
            update={"at": now - timedelta(hours=2), "key": "x:remind"}
        )
    )
    r = await http.get("/metrics")
    assert r.status_code == 200
    text = r.text

    def value(name: str, **labels: str) -> float | None:
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == name and s.labels == labels:
                    return s.value
        return None

    assert (
        value("handoff_stalls_open_handoffs", handoff_type="lead-to-cash", stage="deal_desk") == 2
    )
    assert value("handoff_stalls_open_handoffs", handoff_type="renewal", stage="usage") == 1
    assert value("handoff_stalls_open_handoffs", handoff_type="expansion", stage="deal_desk") == 1
    assert (
        value(
            "handoff_stalls_time_in_stage_seconds",
            handoff_type="expansion",
            stage="qualify",
            quantile="0.9",
        )
        == 6 * 3600
    )
    assert (
        value("handoff_stalls_nudges", handoff_type="expansion", stage="deal_desk", kind="reminder")
        == 1
    )
    assert (
        value("handoff_stalls_conversion_ratio", handoff_type="expansion", stage="qualify") == 1.0
    )
    assert MAYA not in text and "evil" not in text
