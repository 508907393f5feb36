"""Group commit in the HubSpot connector: concurrent write-backs of different deals share
batch calls, and one deal's problem never fails or duplicates another's. Real
hubspot-api-client against the sandbox over HTTP; overlap forced with events, no sleeps."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from support.hubspot import (
    CREATE,
    GET,
    OWNERS,
    PATCH,
    READ,
    UPDATE,
    HubSpotSandbox,
    connector_fixtures,
)

from connectors.base import NoteSpec, TaskSpec, WriteBack, WriteReceipt
from connectors.errors import NotFound, Unavailable
from connectors.hubspot import HubSpotConnector
from connectors.hubspot_batching import FALLBACK, Fallback, GroupCommit

N = 8
WAIT_S = 30  # generous: a bound on a wait for a condition, never a pace
OWNER = "sam.rep@example.com"


sandbox, hs = connector_fixtures()


def new_deals(sandbox: HubSpotSandbox, n: int) -> list[str]:
    ids = []
    for i in range(n):
        body = {"properties": {"dealname": f"group {i}", "dealstage": "appointmentscheduled"}}
        response = sandbox.api("POST", "/crm/v3/objects/deals", json=body)
        assert response.status_code == 201, response.text
        ids.append(str(response.json()["id"]))
    return ids


def hold_first_call(group: GroupCommit[Any, Any], behind: int) -> threading.Event:
    """Make the first call of `group` (a caller alone) wait, once it is in flight, until
    `behind` callers queue behind it. The event is set when that first call started."""
    started, alone, first = threading.Event(), group._one, [True]

    def held(item: Any) -> Any:
        if first[0]:
            first[0] = False
            started.set()
            assert group.wait_queued(behind, WAIT_S), f"{group.name}: nobody queued"
        return alone(item)

    group._one = held  # type: ignore[method-assign]
    return started


def hold_every_call(hs: HubSpotConnector, behind: int) -> None:
    writes = hs._writes
    for group in (writes.reads, writes.patches, writes.tasks.completions, *writes.creates.values()):
        hold_first_call(group, behind)


def in_threads(work: Callable[[str], Any], deals: list[str]) -> list[Any]:
    with ThreadPoolExecutor(len(deals)) as pool:
        return list(pool.map(work, deals))


def calls(sandbox: HubSpotSandbox) -> Counter[str]:
    stats = Counter(sandbox.stats())
    sandbox.control("POST", "stats/reset")
    return stats


def opening(deal: str) -> WriteBack:
    """A transition of `deal`: compared stage, its own fields, a note and a task."""
    return WriteBack(
        deal_id=deal,
        key=f"wf-{deal}:open",
        fields={"crm_stage": "qualified", "handoff_stage": f"stage-{deal}"},
        expected={"crm_stage": "new"},
        notes=[NoteSpec(body=f"note of {deal}", key=f"wf-{deal}:note")],
        tasks=[TaskSpec(subject=f"task of {deal}", owner_email=OWNER, key=f"wf-{deal}:task")],
    )


def closing(deal: str) -> WriteBack:
    """The next transition: its fields, compared, and the task of `opening` completed."""
    return WriteBack(
        deal_id=deal,
        key=f"wf-{deal}:close",
        fields={"crm_stage": "closed_won", "handoff_status": f"done-{deal}"},
        expected={"crm_stage": "qualified"},
        complete_tasks=[f"wf-{deal}:task"],
    )


def keys_of(sandbox: HubSpotSandbox, deal: str, ot: str) -> list[str]:
    return sorted(r["handoff_key"] for r in sandbox.activity(deal)[ot])


# -- the mechanism ---------------------------------------------------------------------------
def test_a_leader_whose_answer_is_in_hands_on_and_returns_while_the_next_call_runs() -> None:
    """The first caller sends alone at once; two arriving meanwhile go together in the
    next call, led by one of them: the first caller has its result before that call
    ends."""
    release_one, release_many = threading.Event(), threading.Event()
    one_started, many_started = threading.Event(), threading.Event()
    sent: list[list[str]] = []

    def one(item: str) -> str:
        sent.append([item])
        one_started.set()
        assert release_one.wait(WAIT_S)
        return item.upper()

    def many(items: list[str]) -> list[str | Fallback]:
        sent.append(list(items))
        many_started.set()
        assert release_many.wait(WAIT_S)
        return [i.upper() for i in items]

    group = GroupCommit[str, str]("test", one, many)
    with ThreadPoolExecutor(3) as pool:
        first = pool.submit(group.submit, "a")
        assert one_started.wait(WAIT_S)
        later = [pool.submit(group.submit, x) for x in ("b", "c")]
        assert group.wait_queued(2, WAIT_S)
        release_one.set()
        assert first.result(WAIT_S) == "A"  # returned while "b, c" is still in flight
        assert many_started.wait(WAIT_S)
        assert not any(f.done() for f in later)
        release_many.set()
        assert [f.result(WAIT_S) for f in later] == ["B", "C"]
    assert sent == [["a"], ["b", "c"]]


def test_a_member_the_combined_answer_does_not_settle_runs_alone_and_others_keep_theirs() -> None:
    """`many` settles "b" but not "c": "c" takes the single path, "b" does not."""
    release, started = threading.Event(), threading.Event()
    alone: list[str] = []

    def one(item: str) -> str:
        alone.append(item)
        if item == "a":
            started.set()
            assert release.wait(WAIT_S)
        return f"alone {item}"

    def many(items: list[str]) -> list[str | Fallback]:
        return [FALLBACK if i == "c" else f"shared {i}" for i in items]

    group = GroupCommit[str, str]("test", one, many)
    with ThreadPoolExecutor(3) as pool:
        first = pool.submit(group.submit, "a")
        assert started.wait(WAIT_S)
        b, c = pool.submit(group.submit, "b"), pool.submit(group.submit, "c")
        assert group.wait_queued(2, WAIT_S)
        release.set()
        assert (first.result(WAIT_S), b.result(WAIT_S), c.result(WAIT_S)) == (
            "alone a",
            "shared b",
            "alone c",
        )
    assert alone == ["a", "c"]


# -- against the sandbox -----------------------------------------------------------------------
def test_concurrent_write_backs_of_different_deals_share_calls_and_each_deal_gets_its_own(
    hs: HubSpotConnector, sandbox: HubSpotSandbox
) -> None:
    """N deals written back from N threads at once: each kind of call is sent twice (the
    first caller alone, the other N-1 together), not N times, and every deal ends with
    exactly its own fields, note and task, then its own task completed."""
    deals = new_deals(sandbox, N)
    calls(sandbox)
    hold_every_call(hs, N - 1)
    opened: list[WriteReceipt] = in_threads(lambda d: hs.write_back(opening(d)), deals)
    stats = calls(sandbox)
    # single: per deal 1 GET + 1 PATCH + 2 creates = 4N, plus the owners page
    assert (stats[GET], stats[READ], stats[PATCH], stats[UPDATE]) == (1, 1, 1, 1)
    assert (stats[CREATE], stats[OWNERS], stats["total"]) == (4, 1, 9)
    assert stats["total"] < 4 * N

    hold_every_call(hs, N - 1)
    closed: list[WriteReceipt] = in_threads(lambda d: hs.write_back(closing(d)), deals)
    stats = calls(sandbox)
    # single: per deal 1 GET + 1 PATCH + 1 completion = 3N
    assert (stats[GET], stats[READ], stats[PATCH], stats[UPDATE]) == (1, 1, 1, 3)
    assert stats["total"] == 6 < 3 * N

    for deal, receipt, done in zip(deals, opened, closed, strict=True):
        assert receipt.conflicts == done.conflicts == {}
        activity = sandbox.activity(deal)
        assert (activity["deal"]["handoff_stage"], activity["deal"]["handoff_status"]) == (
            f"stage-{deal}",
            f"done-{deal}",
        )
        assert activity["deal"]["dealstage"] == "closedwon"
        assert [(n["id"], n["hs_note_body"]) for n in activity["notes"]] == [
            (receipt.note_ids[0], f"note of {deal}")
        ]
        (task,) = activity["tasks"]
        assert (task["id"], task["handoff_key"], task["hs_task_status"]) == (
            receipt.task_ids[0],
            f"wf-{deal}:task",
            "COMPLETED",
        )
        assert done.completed_task_ids == receipt.task_ids


def test_a_compare_in_a_shared_read_still_sees_each_deals_own_edit(
    hs: HubSpotConnector, sandbox: HubSpotSandbox
) -> None:
    """One rep moved one deal's stage by hand: in the shared read that deal reports the
    conflict and keeps the rep's stage; the others are written."""
    deals = new_deals(sandbox, N)
    edited = deals[N // 2]
    response = sandbox.api(
        "PATCH", f"/crm/v3/objects/deals/{edited}", json={"properties": {"dealstage": "closedlost"}}
    )
    assert response.status_code == 200, response.text
    hold_first_call(hs._writes.reads, N - 1)
    fields = {"crm_stage": "qualified"}
    receipts = in_threads(
        lambda d: hs.write_back(
            WriteBack(deal_id=d, key=f"wf-{d}", fields=fields, expected={"crm_stage": "new"})
        ),
        deals,
    )
    for deal, receipt in zip(deals, receipts, strict=True):
        stage = sandbox.activity(deal)["deal"]["dealstage"]
        if deal == edited:
            assert (receipt.conflicts, stage) == ({"crm_stage": "closed_lost"}, "closedlost")
        else:
            assert (receipt.conflicts, stage) == ({}, "qualifiedtobuy")
    assert calls(sandbox)[READ] == 1


def test_a_combined_create_refused_for_one_members_existing_key_lands_everyone_once(
    hs: HubSpotConnector, sandbox: HubSpotSandbox
) -> None:
    """A retried activity's note already exists: the shared create is refused as a whole
    (409), and every member then creates alone: the others' notes land once, the
    retried one is read back, not created again."""
    deals = new_deals(sandbox, N)
    retried = deals[-1]

    def notes(deal: str) -> WriteReceipt:
        note = NoteSpec(body=f"note of {deal}", key=f"wf-{deal}:note")
        return hs.write_back(WriteBack(deal_id=deal, key=f"wf-{deal}", notes=[note]))

    (earlier,) = notes(retried).note_ids
    calls(sandbox)
    started = hold_first_call(hs._writes.creates["notes"], N - 1)
    with ThreadPoolExecutor(N) as pool:
        first = pool.submit(notes, deals[0])
        assert started.wait(WAIT_S)  # the first caller is alone in flight: the rest share
        rest = list(pool.map(notes, deals[1:]))
    receipts = [first.result(WAIT_S), *rest]
    assert receipts[-1].note_ids == [earlier]
    for deal, receipt in zip(deals, receipts, strict=True):
        assert keys_of(sandbox, deal, "notes") == [f"wf-{deal}:note"]
        assert [n["id"] for n in sandbox.activity(deal)["notes"]] == receipt.note_ids
    stats = calls(sandbox)
    # alone, shared (409), then N-1 alone: N-2 creates, and a 409 + read for the retried
    assert (stats[CREATE], stats[READ]) == (1 + 1 + (N - 2) + 1, 1)


def test_a_deal_deleted_before_a_shared_write_back_fails_alone(
    hs: HubSpotConnector, sandbox: HubSpotSandbox
) -> None:
    """One deal of a shared read was deleted: HubSpot's 207 leaves it out, it is read
    alone and fails with NotFound; every other deal's write-back lands."""
    deals = new_deals(sandbox, N)
    gone = deals[N // 2]
    assert sandbox.api("DELETE", f"/crm/v3/objects/deals/{gone}").status_code == 204
    started = hold_first_call(hs._writes.reads, N - 1)

    def write(deal: str) -> WriteReceipt | NotFound:
        try:
            return hs.write_back(opening(deal))
        except NotFound as exc:
            return exc

    with ThreadPoolExecutor(N) as pool:
        first = pool.submit(write, deals[0])
        assert started.wait(WAIT_S)  # a live deal is read alone first: the rest share
        rest = list(pool.map(write, deals[1:]))
    outcomes = [first.result(WAIT_S), *rest]
    for deal, outcome in zip(deals, outcomes, strict=True):
        if deal == gone:
            assert isinstance(outcome, NotFound)
            continue
        assert isinstance(outcome, WriteReceipt)
        assert keys_of(sandbox, deal, "notes") == [f"wf-{deal}:note"]
        assert sandbox.activity(deal)["deal"]["handoff_stage"] == f"stage-{deal}"
    stats = calls(sandbox)
    assert (stats[READ], stats[GET]) == (1, 2)  # alone, shared, then the deleted one alone


def test_shared_calls_under_5xx_and_lost_responses_write_nothing_twice(
    hs: HubSpotConnector, sandbox: HubSpotSandbox
) -> None:
    """A 30% 5xx rate and lost responses on shared calls, write-backs retried as
    activities are: every deal ends with exactly its own records, once each."""
    deals = new_deals(sandbox, N)
    sandbox.faults(error_rate=0.3)

    def retried(batch: WriteBack) -> WriteReceipt:
        for _ in range(20):  # Temporal retries an Unavailable activity
            try:
                return hs.write_back(batch)
            except Unavailable:
                continue
        raise AssertionError(f"{batch.key} never got through")

    sandbox.lose_responses(N)
    hold_every_call(hs, N - 1)
    in_threads(lambda d: retried(opening(d)), deals)
    sandbox.lose_responses(N)
    hold_every_call(hs, N - 1)
    in_threads(lambda d: retried(closing(d)), deals)
    sandbox.faults()
    for deal in deals:
        activity = sandbox.activity(deal)
        assert keys_of(sandbox, deal, "notes") == [f"wf-{deal}:note"]
        assert keys_of(sandbox, deal, "tasks") == [f"wf-{deal}:task"]
        assert activity["tasks"][0]["hs_task_status"] == "COMPLETED"
        assert (activity["deal"]["handoff_stage"], activity["deal"]["handoff_status"]) == (
            f"stage-{deal}",
            f"done-{deal}",
        )
