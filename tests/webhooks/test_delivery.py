"""The sender against real HTTP receivers on 127.0.0.1: signatures and headers, retries, what
counts as success, redirects, timeouts, concurrency, leases and restarts.

The settings (tests/webhooks/conftest.py) allow 3 attempts, 0.2 s apart, 1 s timeout.
"""

from __future__ import annotations

import dataclasses
import json
import time

import anyio
import httpx

from kallrec.config import Settings
from kallrec.db import schema as t
from kallrec.db.webhook_repository import LOST_ATTEMPT, AttemptResult, ClaimedDelivery
from kallrec.runtime import Runtime
from kallrec.webhooks import verify_signature
from kallrec.webhooks.delivery import (
    INTERRUPTED,
    PER_ORG,
    USER_AGENT,
    DeliveryWorker,
    retry_delay,
)
from kallrec.webhooks.endpoints import check_destination
from tests.webhooks.helpers import FakeDNS, add_endpoint, deliveries, emit, sending, wait_until
from tests.webhooks.receiver import Drop, Receiver, Respond


def stored_payload(rt: Runtime, event_id: str) -> tuple[bytes, float]:
    with rt.db.read() as conn:
        row = conn.execute(t.events.select().where(t.events.c.id == event_id)).mappings().one()
    return row["payload"].encode(), row["created_at"]


def status_of(rt: Runtime, endpoint) -> str:  # type: ignore[no-untyped-def]
    return deliveries(rt, endpoint)[0].status


async def test_retries_until_a_2xx_then_never_again(runtime: Runtime) -> None:
    script = [Respond(500, headers={"Set-Cookie": "session=abc; Path=/"}), Drop(), Respond(200)]
    with Receiver(script) as receiver:
        endpoint = add_endpoint(runtime, receiver.url)
        event_id = emit(runtime, endpoint, data={"id": "rec_1", "status": "ready"})
        async with sending(runtime):
            await wait_until(lambda: status_of(runtime, endpoint) == "succeeded")
            await anyio.sleep(0.6)  # longer than the schedule: nothing more may arrive
        got = receiver.snapshot()

    body, created_at = stored_payload(runtime, event_id)
    assert [r.answered for r in got] == [500, None, 200]
    (delivery,) = deliveries(runtime, endpoint)
    for n, request in enumerate(got):
        assert request.body == body  # the stored payload, byte for byte
        h = request.headers
        assert verify_signature(endpoint.secret, h["kallglot-signature"], request.body)
        assert h["kallglot-webhook-id"] == delivery.id
        assert h["kallglot-retry-count"] == str(n)
        assert h["kallglot-original-timestamp"] == str(int(created_at))
        assert h["content-type"] == "application/json"
        assert h["user-agent"] == USER_AGENT and USER_AGENT.startswith("kallrec-webhooks/")
        assert "cookie" not in h and "authorization" not in h and "proxy-authorization" not in h
    assert json.loads(got[0].body)["type"] == "recording.ready"
    # ~0.2 s (±10 %) between attempts, not immediately
    assert got[1].at - got[0].at >= 0.17 and got[2].at - got[1].at >= 0.17

    assert (delivery.status, delivery.attempts) == ("succeeded", 3)
    history = delivery.history
    assert [a.attempt for a in history] == [1, 2, 3]
    assert [a.response_status for a in history] == [500, None, 200]
    assert [a.category for a in history] == ["http_status", "connection_error", None]
    assert all(a.latency_ms >= 0 for a in history)


async def test_gives_up_after_the_schedule(runtime: Runtime) -> None:
    with Receiver([Respond(503)]) as receiver:
        endpoint = add_endpoint(runtime, receiver.url)
        emit(runtime, endpoint)
        async with sending(runtime):
            await wait_until(lambda: status_of(runtime, endpoint) == "failed")
            await anyio.sleep(0.4)
        assert len(receiver.snapshot()) == 3
    (delivery,) = deliveries(runtime, endpoint)
    assert [a.response_status for a in delivery.history] == [503, 503, 503]


async def test_redirects_are_failures_and_not_followed(runtime: Runtime) -> None:
    with Receiver([Respond(200)]) as target:
        redirect = Respond(302, headers={"Location": target.url})
        with Receiver([redirect]) as receiver:
            endpoint = add_endpoint(runtime, receiver.url)
            emit(runtime, endpoint)
            async with sending(runtime):
                await wait_until(lambda: status_of(runtime, endpoint) == "failed")
            assert len(receiver.snapshot()) == 3
        assert target.snapshot() == []
    (delivery,) = deliveries(runtime, endpoint)
    assert [a.response_status for a in delivery.history] == [302, 302, 302]
    # Its Location is not kept: the history shows the category and the code only.
    assert {a.category for a in delivery.history} == {"http_status"}


async def test_timeout_fails_and_a_slow_receiver_blocks_no_one(
    runtime: Runtime, settings: Settings
) -> None:
    slow_settings = dataclasses.replace(settings, webhook_timeout_seconds=1.5)
    # The slow receiver's first answer (a 200) comes after the deadline: it does not count.
    with Receiver([Respond(200, delay=3.0), Respond(200)]) as slow, Receiver() as fast:
        slow_endpoint = add_endpoint(runtime, slow.url)
        emit(runtime, slow_endpoint)
        fast_endpoint = add_endpoint(runtime, fast.url, org="other")
        async with sending(runtime, slow_settings):
            await wait_until(lambda: len(slow.snapshot()) == 1)
            emit(runtime, fast_endpoint)
            await wait_until(lambda: status_of(runtime, fast_endpoint) == "succeeded")
            # Ordering, not a stopwatch: the fast delivery finished while the slow attempt was
            # still waiting for its answer (had it queued behind it, that attempt would be
            # recorded first, as a timeout 1.5 s after it began).
            assert deliveries(runtime, slow_endpoint)[0].history == (), "the fast one waited"
            await wait_until(lambda: status_of(runtime, slow_endpoint) == "succeeded")
    (delivery,) = deliveries(runtime, slow_endpoint)
    first, second = delivery.history
    assert first.response_status is None and first.category == "timeout"
    assert 1450 <= first.latency_ms < 3000
    assert (second.response_status, delivery.attempts) == (200, 2)


async def test_connection_refused_is_a_failed_attempt(runtime: Runtime) -> None:
    with Receiver() as receiver:
        url = receiver.url  # a port nobody listens on once the receiver is closed
    endpoint = add_endpoint(runtime, url)
    emit(runtime, endpoint)
    async with sending(runtime):
        await wait_until(lambda: status_of(runtime, endpoint) == "failed")
    (delivery,) = deliveries(runtime, endpoint)
    assert [(a.response_status, a.category) for a in delivery.history] == [
        (None, "connection_refused")
    ] * 3


async def test_two_senders_never_send_a_delivery_twice(runtime: Runtime) -> None:
    other = Runtime(runtime.settings)  # its own engine and write lock, like another process
    sent_by: dict[str, int] = {"a": 0, "b": 0}

    class Counting(DeliveryWorker):
        name = ""

        async def attempt(self, client: httpx.AsyncClient, claim: ClaimedDelivery) -> None:
            sent_by[self.name] += 1
            await super().attempt(client, claim)

    try:
        with Receiver([Respond(200, delay=0.05)]) as receiver:
            endpoints = [add_endpoint(runtime, receiver.url, org=f"org{n}") for n in range(3)]
            for n in range(36):
                emit(runtime, endpoints[n % 3], data={"n": n})
            # Fewer slots each than the 12 leases the endpoints allow, so that both get work.
            a = Counting(runtime.webhooks, runtime.settings, concurrency=4)
            b = Counting(other.webhooks, other.settings, concurrency=4)
            a.name, b.name = "a", "b"
            async with anyio.create_task_group() as tg:
                tg.start_soon(a.run)
                tg.start_soon(b.run)
                await wait_until(
                    lambda: all(
                        d.status == "succeeded" for e in endpoints for d in deliveries(runtime, e)
                    )
                )
                tg.cancel_scope.cancel()
            ids = [r.headers["kallglot-webhook-id"] for r in receiver.snapshot()]
    finally:
        other.close()
    assert len(ids) == 36 and len(set(ids)) == 36
    history = [a for e in endpoints for d in deliveries(runtime, e) for a in d.history]
    assert [a for a in history if a.response_status != 200] == []
    assert sent_by["a"] > 0 and sent_by["b"] > 0 and sum(sent_by.values()) == 36


async def test_a_pending_delivery_survives_a_restart(settings: Settings) -> None:
    with Receiver() as receiver:
        first = Runtime(settings)
        endpoint = add_endpoint(first, receiver.url)
        # A process that took a delivery and died before recording anything...
        emit(first, endpoint)
        claimed = first.webhooks.claim_deliveries(1, 0.3, 3, 4)
        assert len(claimed) == 1
        # ...and one that was never taken.
        queued = emit(first, endpoint)
        first.close()

        second = Runtime(settings)
        try:
            async with sending(second):
                await wait_until(
                    lambda: all(d.status == "succeeded" for d in deliveries(second, endpoint))
                )
            rows = deliveries(second, endpoint)
        finally:
            second.close()
        got = receiver.snapshot()
    assert sorted(r.headers["kallglot-webhook-id"] for r in got) == sorted(d.id for d in rows)
    by_id = {d.id: d for d in rows}
    dead = by_id[claimed[0].id]
    assert [a.category for a in dead.history] == [LOST_ATTEMPT, None]
    retried = next(r for r in got if r.headers["kallglot-webhook-id"] == dead.id)
    assert retried.headers["kallglot-retry-count"] == "1"
    assert next(d for d in rows if d.event_id == queued).attempts == 1


async def test_deleted_endpoint_gets_nothing_more(runtime: Runtime) -> None:
    with Receiver([Respond(500)]) as receiver:
        endpoint = add_endpoint(runtime, receiver.url)
        emit(runtime, endpoint)
        async with sending(runtime):
            await wait_until(lambda: len(receiver.snapshot()) == 1)
            await wait_until(lambda: deliveries(runtime, endpoint)[0].history != ())
            runtime.webhooks.delete_endpoint(endpoint.id)
            await anyio.sleep(0.5)
        assert len(receiver.snapshot()) == 1
    assert status_of(runtime, endpoint) == "canceled"


async def test_stopping_mid_attempt_records_it_and_retries_at_once(runtime: Runtime) -> None:
    with Receiver([Respond(200, delay=5)]) as receiver:
        endpoint = add_endpoint(runtime, receiver.url)
        emit(runtime, endpoint)
        async with sending(runtime):
            await wait_until(lambda: len(receiver.snapshot()) == 1)
    (delivery,) = deliveries(runtime, endpoint)
    assert delivery.status == "pending" and delivery.attempts == 1
    assert [a.category for a in delivery.history] == [INTERRUPTED]
    assert delivery.next_attempt_at <= time.time()


async def test_a_saturated_endpoint_is_polled_not_spun_on(runtime: Runtime) -> None:
    claims = 0
    claim = runtime.webhooks.claim_deliveries

    def counting_claim(*args: object) -> list[ClaimedDelivery]:
        nonlocal claims
        claims += 1
        return claim(*args)  # type: ignore[arg-type]

    runtime.webhooks.claim_deliveries = counting_claim  # type: ignore[method-assign]
    with Receiver([Respond(200, delay=0.6)]) as receiver:
        endpoint = add_endpoint(runtime, receiver.url)
        for _ in range(3):
            emit(runtime, endpoint)
        async with sending(runtime, per_endpoint=1):
            await wait_until(lambda: len(receiver.snapshot()) == 1)
            await anyio.sleep(0.4)  # two more are due, but the endpoint's one lease is taken
            assert len(receiver.snapshot()) == 1
    assert claims < 20  # about one per 0.05 s poll, not a busy loop


# -- only allowed addresses (spec §9) ------------------------------------------------------------


async def test_dns_rebinding_is_caught_at_delivery_and_nothing_is_sent(
    runtime: Runtime, dns: FakeDNS
) -> None:
    with Receiver() as receiver:
        url = f"http://hooks.rebind.test:{receiver.port}/hook"
        dns.names["hooks.rebind.test"] = ["127.0.0.1"]  # allowed (127.0.0.0/8) when created
        await check_destination(url, runtime.settings.webhook_networks)
        endpoint = add_endpoint(runtime, url)
        # Then the name moves to the metadata service: no attempt may connect anywhere.
        dns.names["hooks.rebind.test"] = ["169.254.169.254"]
        emit(runtime, endpoint)
        async with sending(runtime):
            await wait_until(lambda: status_of(runtime, endpoint) == "failed")
        assert receiver.snapshot() == []
    (delivery,) = deliveries(runtime, endpoint)
    assert [(a.response_status, a.category) for a in delivery.history] == [
        (None, "blocked_address")
    ] * 3
    # Looked up when created, then afresh for every attempt.
    assert dns.asked == ["hooks.rebind.test"] * 4


async def test_a_name_with_any_blocked_address_is_not_sent_to(
    runtime: Runtime, dns: FakeDNS
) -> None:
    with Receiver() as receiver:
        dns.names["hooks.test"] = ["127.0.0.1", "10.0.0.1"]
        endpoint = add_endpoint(runtime, f"http://hooks.test:{receiver.port}/hook")
        emit(runtime, endpoint)
        async with sending(runtime):
            await wait_until(lambda: status_of(runtime, endpoint) == "failed")
        assert receiver.snapshot() == []
    assert {a.category for a in deliveries(runtime, endpoint)[0].history} == {"blocked_address"}


async def test_without_the_setting_loopback_receivers_get_nothing(
    runtime: Runtime, settings: Settings
) -> None:
    strict = dataclasses.replace(settings, webhook_allowed_networks="")
    with Receiver() as receiver:
        # Stored before the rule existed (or by hand): the sender refuses it all the same.
        endpoint = add_endpoint(runtime, receiver.url)
        emit(runtime, endpoint)
        async with sending(runtime, strict):
            await wait_until(lambda: status_of(runtime, endpoint) == "failed")
        assert receiver.snapshot() == []
    assert {a.category for a in deliveries(runtime, endpoint)[0].history} == {"blocked_address"}


async def test_a_stored_url_with_credentials_is_not_sent(runtime: Runtime) -> None:
    with Receiver() as receiver:
        endpoint = add_endpoint(runtime, f"http://user:secret@127.0.0.1:{receiver.port}/hook")
        emit(runtime, endpoint)
        async with sending(runtime):
            await wait_until(lambda: status_of(runtime, endpoint) == "failed")
        assert receiver.snapshot() == []
    assert {a.category for a in deliveries(runtime, endpoint)[0].history} == {"invalid_url"}


# -- fair to organizations -----------------------------------------------------------------------


async def test_hung_receivers_of_one_organization_do_not_delay_another(
    runtime: Runtime, settings: Settings
) -> None:
    # Answers would come after 60 s, the deadline is 20 s: ten endpoints, thirty deliveries,
    # all of them hanging until their attempts time out.
    patient = dataclasses.replace(settings, webhook_timeout_seconds=20.0)
    with Receiver([Respond(200, delay=60)]) as hung, Receiver() as fast:
        slow = [add_endpoint(runtime, f"{hung.url}/{n}", org="slowco") for n in range(10)]
        for _ in range(3):
            emit(runtime, slow[0])  # each event goes to all ten
        other = add_endpoint(runtime, fast.url, org="other")
        async with sending(runtime, patient):
            await wait_until(lambda: len(hung.snapshot()) >= PER_ORG)
            emit(runtime, other)
            await wait_until(lambda: status_of(runtime, other) == "succeeded", seconds=15)
            # Ordering, not a stopwatch: the other organization's event went out while every
            # attempt of the hung one was still waiting (none has been recorded yet). Before,
            # the hung attempts took all eight slots and it waited for their timeouts.
            assert [d.history for e in slow for d in deliveries(runtime, e)] == [()] * 30
            assert len(hung.snapshot()) == PER_ORG  # the organization's share, no more
    assert len(fast.snapshot()) == 1


# -- the outbox queries, without HTTP ------------------------------------------------------------


def test_claims_are_exclusive_and_capped_per_endpoint(runtime: Runtime) -> None:
    busy = add_endpoint(runtime, "http://127.0.0.1:9/busy", ["recording.ready"])
    quiet = add_endpoint(runtime, "http://127.0.0.1:9/quiet", ["session.created"])
    for _ in range(10):
        emit(runtime, busy, "recording.ready")
    emit(runtime, quiet, "session.created")
    first = runtime.webhooks.claim_deliveries(8, 60, 3, 4)
    assert [c.endpoint_id for c in first].count(busy.id) == 4
    assert [c.endpoint_id for c in first].count(quiet.id) == 1
    assert all(c.attempt == 1 for c in first)
    # The busy endpoint has 4 leases: nobody gets more of it until one is released.
    assert runtime.webhooks.claim_deliveries(8, 60, 3, 4) == []


def test_a_late_result_does_not_overwrite_a_newer_claim(runtime: Runtime) -> None:
    endpoint = add_endpoint(runtime, "http://127.0.0.1:9/x")
    emit(runtime, endpoint)
    (stale,) = runtime.webhooks.claim_deliveries(1, 0.0, 3, 4)  # lease runs out at once
    (fresh,) = runtime.webhooks.claim_deliveries(1, 60, 3, 4)
    assert (stale.id, stale.attempt, fresh.attempt) == (fresh.id, 1, 2)
    late = AttemptResult(1, time.time(), 5.0, 500, "http_status")
    assert runtime.webhooks.record_failure(stale, late, time.time() + 60) is False
    assert deliveries(runtime, endpoint)[0].attempts == 2
    # But a 2xx, however late, ends the delivery.
    runtime.webhooks.record_success(stale, AttemptResult(1, time.time(), 5.0, 200, None))
    assert status_of(runtime, endpoint) == "succeeded"
    assert runtime.webhooks.record_failure(fresh, late, time.time()) is False
    assert status_of(runtime, endpoint) == "succeeded"
    assert runtime.webhooks.claim_deliveries(1, 60, 3, 4) == []


def test_retry_delay_follows_the_schedule_with_jitter() -> None:
    delays = (0.0, 60.0, 300.0)
    assert retry_delay(delays, 0) == 0.0
    for _ in range(200):
        assert 54.0 <= (retry_delay(delays, 1) or 0) <= 66.0
        assert 270.0 <= (retry_delay(delays, 2) or 0) <= 330.0
    assert retry_delay(delays, 3) is None
