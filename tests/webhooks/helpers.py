"""Helpers for webhook tests: endpoints and events straight in the database, a running sender."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio

from kallrec.config import Settings
from kallrec.db.repository import insert_event
from kallrec.db.webhook_repository import DeliveryRecord, WebhookEndpoint
from kallrec.runtime import Runtime
from kallrec.webhooks.delivery import DeliveryWorker
from kallrec.webhooks.endpoints import new_endpoint


def add_endpoint(
    rt: Runtime,
    url: str,
    events: Sequence[str] = ("recording.ready",),
    *,
    org: str = "acme",
    live: bool = False,
) -> WebhookEndpoint:
    owner, _ = rt.repo.ensure_org(org, 30)
    endpoint = new_endpoint(owner.id, live, url, list(events), None)
    rt.webhooks.insert_endpoint(endpoint)
    return endpoint


def emit(
    rt: Runtime,
    endpoint: WebhookEndpoint,
    event_type: str = "recording.ready",
    data: dict[str, Any] | None = None,
) -> str:
    """An event in the endpoint's organization and mode, written the way the app writes them."""
    with rt.db.write() as conn:
        return insert_event(
            conn, endpoint.org_id, endpoint.livemode, event_type, data or {"id": "rec_test"}
        )


def deliveries(rt: Runtime, endpoint: WebhookEndpoint) -> list[DeliveryRecord]:
    rows, _ = rt.webhooks.list_deliveries(endpoint_ids=[endpoint.id])
    return rows


@asynccontextmanager
async def sending(
    rt: Runtime, settings: Settings | None = None, **options: Any
) -> AsyncIterator[DeliveryWorker]:
    """A DeliveryWorker running in the background for the duration of the block."""
    worker = DeliveryWorker(rt.webhooks, settings or rt.settings, **options)
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run)
        try:
            yield worker
        finally:
            tg.cancel_scope.cancel()


async def wait_until(check: Callable[[], bool], seconds: float = 10.0) -> None:
    """Polls ``check`` (a quick database read) until it holds; TimeoutError after ``seconds``."""
    with anyio.fail_after(seconds):
        while True:
            if check():
                return
            await anyio.sleep(0.02)
