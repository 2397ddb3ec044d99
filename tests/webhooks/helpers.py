"""Helpers for webhook tests: endpoints and events straight in the database, a running sender."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio

from kallrec.config import Settings
from kallrec.db.repository import insert_event
from kallrec.db.webhook_repository import DeliveryRecord, WebhookEndpoint
from kallrec.network_addresses import IPAddress, as_address, literal_address
from kallrec.runtime import Runtime
from kallrec.webhooks.delivery import DeliveryWorker
from kallrec.webhooks.endpoints import new_endpoint
from kallrec.webhooks.transport import UnresolvableHost


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


class FakeDNS:
    """A resolver (``kallrec.webhooks.transport.Resolver``) answering from a table: numeric hosts
    as the real one reads them, names from ``names`` (change it at any time: a rebinding), every
    other name unresolvable. Records each name it was asked for."""

    def __init__(self, names: Mapping[str, Sequence[str]] | None = None) -> None:
        self.names = {name: list(addresses) for name, addresses in (names or {}).items()}
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int, **_: Any) -> list[IPAddress]:
        try:
            literal = literal_address(host)
        except ValueError as exc:
            raise UnresolvableHost(str(exc)) from None
        if literal is not None:
            return [literal]
        self.asked.append(host)
        if host not in self.names:
            raise UnresolvableHost(f"{host}: not in the test's DNS")
        return [as_address(a) for a in self.names[host]]
