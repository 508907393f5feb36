"""Metrics: the API's series at /metrics, and Handoff's series through the worker runtime."""

from __future__ import annotations

import asyncio
import socket
from datetime import timedelta

import httpx
from prometheus_client.parser import text_string_to_metric_families
from support.api import bearer, deal_at_tier, deal_path
from support.handoffs import MANAGER, OWNER, polls
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities import metrics as crm_metrics
from worker.metrics import make_runtime
from worker.settings import Settings
from workflows import metrics as wf_metrics

APPROVE_ROUTE = "/api/deals/{crm}/{deal_id}/approve"


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the series `name` whose labels include `labels` (None if absent)."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return None


async def test_api_series_count_requests_by_route_status_and_refusals(
    dev_env: WorkflowEnvironment, task_queue: str, settings: Settings, http: httpx.AsyncClient
) -> None:
    """After 200, 403, 401 and 404 answers, /metrics counts each by route template."""
    async with deal_at_tier(dev_env.client, task_queue, settings) as (handle, _, _):
        url, body = deal_path(handle, "approve"), {"reason": "fine"}
        assert (await http.post(url, json=body, headers=bearer(OWNER))).status_code == 403
        assert (await http.post(url, json=body)).status_code == 401
        assert (await http.post(url, json=body, headers=bearer(MANAGER))).status_code == 200
        missing = await http.post(
            "/api/deals/memory/NOPE/approve", json=body, headers=bearer(MANAGER)
        )
        assert missing.status_code == 404
    scrape = await http.get("/metrics")
    assert scrape.status_code == 200
    text = scrape.text
    for status, count in (("200", 1), ("403", 1), ("401", 1), ("404", 1)):
        got = sample(
            text, "handoff_api_requests_total", method="POST", route=APPROVE_ROUTE, status=status
        )
        assert got == count, (status, got)
    assert (
        sample(text, "handoff_api_request_seconds_count", method="POST", route=APPROVE_ROUTE) == 4
    )
    assert sample(text, "handoff_api_refusals_total", message="approve", code="not_authorised") == 1
    assert sample(text, "handoff_api_refusals_total", code="not_pending") is None


@activity.defn(name="metrics_probe.write")
async def probe_write() -> None:
    """Fails its first attempt like a rate-limited CRM, then succeeds."""
    crm_metrics.count_crm_retry("memory")
    if activity.info().attempt == 1:
        crm_metrics.count_crm_write("memory", "transient")
        raise RuntimeError("rate limited")
    crm_metrics.count_crm_write("memory", "ok")


@workflow.defn(name="MetricsProbe")
class MetricsProbe:
    """Calls every workflow metric helper once, then one retried CRM write."""

    @workflow.run
    async def run(self) -> None:
        wf_metrics.count_refusal("approve")
        wf_metrics.count_escalation("qualify")
        wf_metrics.observe_stage("qualify", 7_200)
        wf_metrics.observe_approval_latency(90, tier="vp", decision="approved")
        await workflow.execute_activity(
            probe_write,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=50)),
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_worker_runtime_exports_handoff_series(
    dev_env: WorkflowEnvironment, task_queue: str, settings: Settings
) -> None:
    """A worker on make_runtime() serves the workflow and CRM series on the metrics port."""
    port = free_port()
    runtime = make_runtime(settings.model_copy(update={"metrics_port": port}), host="127.0.0.1")
    client = await Client.connect(
        dev_env.client.service_client.config.target_host,
        runtime=runtime,
        data_converter=pydantic_data_converter,
    )
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[MetricsProbe],
        activities=[probe_write],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        await client.execute_workflow(
            MetricsProbe.run, id=f"probe-{task_queue}", task_queue=task_queue
        )
        async with httpx.AsyncClient() as http:
            async for _ in polls(every=0.1):
                text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
                if "handoff_crm_writes_total" in text and "handoff_stage_seconds" in text:
                    break
                await asyncio.sleep(0.1)
    assert sample(text, "handoff_refusals_total", message="approve") == 1
    assert sample(text, "handoff_escalations_total", kind="qualify") == 1
    assert sample(text, "handoff_stage_seconds_count", stage="qualify") == 1
    assert sample(text, "handoff_stage_seconds_bucket", stage="qualify", le="3600") == 0
    assert sample(text, "handoff_stage_seconds_bucket", stage="qualify", le="14400") == 1
    assert sample(text, "handoff_approval_latency_seconds_count", tier="vp") == 1
    assert sample(text, "handoff_crm_writes_total", crm="memory", outcome="transient") == 1
    assert sample(text, "handoff_crm_writes_total", crm="memory", outcome="ok") == 1
    assert sample(text, "handoff_crm_retries_total", crm="memory") == 1
    assert sample(text, "handoff_refusals_total", task_queue=task_queue) == 1
