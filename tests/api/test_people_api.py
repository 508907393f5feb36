"""The people and policy routes: sales ops reassign a departed approver's work over
HTTP as themselves; anyone else is refused 403; policies are checked before use (422
naming the field) and bounded in size."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr
from support.api import TOKENS, api_client, bearer, deal_at_tier, make_settings
from support.handoffs import MANAGER, OWNER, SALES_OPS, status, until
from temporalio.testing import WorkflowEnvironment

from worker.settings import Settings
from workflows.policy import DEFAULT_POLICY_PATH

NINA = "nina.manager@example.com"
SOL_TOKEN = "tok-salesops-77e1c0a2"


def ops_settings(tmp_path: Path) -> Settings:
    tokens = {email: SecretStr(tok) for email, tok in TOKENS.items()}
    return make_settings(tmp_path, api_tokens={**tokens, SALES_OPS: SecretStr(SOL_TOKEN)})


async def test_sales_ops_reassign_a_departed_approver_over_http(
    dev_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> None:
    """The rep's reassign is 403 `not_authorised`; sales ops' moves the approval to Nina,
    recorded under sales ops' name (the body cannot name another actor), and the deal
    page shows the move."""
    settings = ops_settings(tmp_path)
    async with (
        api_client(settings, dev_env.client) as http,
        deal_at_tier(dev_env.client, task_queue, settings, discount=20) as (handle, _, _),
    ):
        body = {"from_person": MANAGER, "to_person": NINA, "reason": "Maya left"}
        r = await http.post("/api/people/reassign", headers=bearer(OWNER), json=body)
        assert r.status_code == 403, r.text
        assert r.json()["code"] == "not_authorised"
        forged = await http.post(
            "/api/people/reassign", headers=bearer(OWNER), json={**body, "by": SALES_OPS}
        )
        assert forged.status_code == 422
        r = await http.post(
            "/api/people/reassign",
            headers={"Authorization": f"Bearer {SOL_TOKEN}"},
            json=body,
        )
        assert r.status_code == 200, r.text
        mine = [row for row in r.json() if row["workflow_id"] == handle.id]
        assert mine and mine[0]["moved"] is True
        st = await until(handle, lambda s: s.owner == [NINA])
        assert [h.by for h in st.history if h.kind == "people"] == [SALES_OPS]
        assert (await status(handle)).pending_approval.approvers == [NINA]  # type: ignore[union-attr]
        # the deal page shows the move in the history, to the deal's owner
        signed = await http.post("/login", data={"token": TOKENS[OWNER], "next": "/inbox"})
        assert signed.status_code == 303
        page = await http.get(f"/deals/memory/{handle.id.split('-', 4)[-1]}")
        assert page.status_code == 200
        assert 'class="kind-people' in page.text and "Maya left" in page.text


async def test_a_policy_that_does_not_validate_is_422_naming_the_field(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    text = DEFAULT_POLICY_PATH.read_text(encoding="utf-8")
    bad = text.replace("owner: deal_owner", "owner: wizard", 1)
    async with api_client(ops_settings(tmp_path), dev_env.client) as http:
        r = await http.post(
            "/api/policy/diff", headers=bearer(OWNER), json={"old_yaml": text, "new_yaml": bad}
        )
        assert r.status_code == 422
        assert "unknown role 'wizard'" in r.json()["reason"]
        huge = await http.post(
            "/api/policy/simulate", headers=bearer(OWNER), json={"policy_yaml": "x" * 70_000}
        )
        assert huge.status_code in (413, 422)
        ok = await http.post(
            "/api/policy/diff", headers=bearer(OWNER), json={"old_yaml": text, "new_yaml": text}
        )
        assert ok.status_code == 200 and ok.json()["lines"][-1] == "no change"


async def test_people_routes_need_credentials(dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    async with api_client(ops_settings(tmp_path), dev_env.client) as http:
        r = await http.post(
            "/api/people/away",
            json={"person": MANAGER, "delegate": NINA, "until": "2099-01-01T00:00:00Z"},
        )
        assert r.status_code == 401
