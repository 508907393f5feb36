"""BENCHMARK ONLY: the worker process that runs `bench_baseline` for `handoff bench`.

`python -m worker.devtools.bench_worker --task-queue Q` connects to ``TEMPORAL_ADDRESS`` and runs
the bare baseline with the same worker options as Handoff's own worker (the same
activity thread count and concurrency, the pydantic data converter), so the two
throughputs differ only by what Handoff's workflows and activities do.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import os
import signal

from temporalio.worker import Worker

from worker.client.temporal import connect
from worker.devtools.bench_baseline import Baseline, BaselineChild, noop
from worker.processes.worker import ACTIVITY_THREADS
from worker.settings import Settings

READY = "bench worker started"


async def serve(address: str, namespace: str, task_queue: str) -> None:
    """Run the baseline worker until SIGINT/SIGTERM."""
    client = await connect(Settings(temporal_address=address, temporal_namespace=namespace))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    with concurrent.futures.ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        worker = Worker(
            client,
            task_queue=task_queue,
            workflows=[Baseline, BaselineChild],
            activities=[noop],
            activity_executor=executor,
            max_concurrent_activities=ACTIVITY_THREADS,
        )
        async with worker:
            print(READY, flush=True)
            await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--task-queue", required=True)
    args = parser.parse_args()
    address = os.environ.get("TEMPORAL_ADDRESS", "127.0.0.1:7233")
    namespace = os.environ.get("TEMPORAL_NAMESPACE", "default")
    asyncio.run(serve(address, namespace, args.task_queue))


if __name__ == "__main__":
    main()
