"""The webhook sender: leases due deliveries from the outbox and POSTs them (spec §7).

How it behaves, and why:

* **Durable, at least once.** Deliveries are rows written with the event (``insert_event``).
  A sender leases a row for one attempt (``timeout + LEASE_MARGIN_SECONDS``), so a sender that
  dies mid-attempt loses nothing: the lease runs out and any process sends it again. Receivers
  de-duplicate on ``Kallglot-Webhook-Id`` (the delivery id, stable across retries).
* **Success** is a 2xx status line received within ``webhook_timeout_seconds`` of starting the
  request (connect, send and headers together; the body of the answer is never waited for). It
  is committed before anything else happens, so the window in which a 2xx is known but not yet
  recorded is one small SQLite write; a recorded 2xx is never sent again.
* **Anything else fails the attempt**: another status (3xx included: redirects are never
  followed, so a receiver cannot bounce our signed request elsewhere), a timeout, a connection
  error, an address that may not be reached. Attempt *n* (1-based) runs ``delays[n-1]`` seconds
  after attempt *n-1*, ±10 % jitter so retries after an outage do not arrive in lockstep; after
  ``len(delays)`` failed attempts the delivery is ``failed``. The default schedule
  ``0,60,300,…`` is: now, ~1 min, ~5 min, …
* **What is recorded** of an attempt is its category (``kallrec.webhooks.outcomes``: ``timeout``,
  ``connection_refused``, ``http_status`` with the code, …), never error text or the receiver's
  headers: the history is readable with ``webhooks:manage`` and must not make the sender a port
  scanner. The details go to the log.
* **Only allowed addresses** (spec §9). Every connection resolves the host once, refuses it when
  any address is loopback, private, link-local, … (unless the operator allowed its network in
  ``KALLREC_WEBHOOK_ALLOWED_NETWORKS``) and connects to the checked address
  (``kallrec.webhooks.transport``): a name that changed its address since the endpoint was
  created (DNS rebinding) is caught at the attempt, as ``blocked_address``.
* **Fair.** Up to ``concurrency`` attempts in flight per process (64: they wait on the network,
  not the CPU), each its own task with its own deadline. Across all processes, at most
  ``per_endpoint`` leases per endpoint and ``per_org`` per organization, and due deliveries are
  claimed round-robin across organizations (``WebhookRepository.claim_deliveries``): slow or hung
  receivers tie up at most their own organization's share of the slots, for at most the timeout,
  so another organization's events go out at once. Each attempt resolves its host on the
  sender's own threads, so a slow DNS server holds none of the threads the database calls use.
* **Hygiene.** One shared ``httpx.AsyncClient`` per sender: no redirects, no proxies or netrc from
  the environment (``trust_env=False``), no cookie jar (a receiver's ``Set-Cookie`` is dropped),
  no credentials from the URL, and nothing of ours but the signed body and the headers below.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections.abc import Sequence
from http.cookiejar import CookieJar, DefaultCookiePolicy
from importlib import metadata
from typing import TYPE_CHECKING

import anyio

from kallrec import timeutil
from kallrec.config import Settings
from kallrec.db.webhook_repository import AttemptResult, ClaimedDelivery, WebhookRepository
from kallrec.network_addresses import IPNetwork
from kallrec.runtime import Runtime
from kallrec.webhooks import outcomes
from kallrec.webhooks.signing import SIGNATURE_HEADER, signature_header

if TYPE_CHECKING:
    import httpx

    from kallrec.webhooks.transport import Resolver

log = logging.getLogger("kallrec.webhooks")

CONCURRENCY = 64
PER_ENDPOINT = 4
PER_ORG = 8
# The lease outlives the request deadline by this much, so recording the result (a queued
# SQLite write) never races another sender taking the same delivery.
LEASE_MARGIN_SECONDS = 30.0
MAX_POLL_SECONDS = 0.5
JITTER = 0.1
INTERRUPTED = outcomes.INTERRUPTED


def _version() -> str:
    try:
        return metadata.version("kallrec")
    except metadata.PackageNotFoundError:
        return "0"


USER_AGENT = f"kallrec-webhooks/{_version()}"


def retry_delay(delays: Sequence[float], failed_attempt: int) -> float | None:
    """Seconds until the attempt after ``failed_attempt`` (1-based), jittered; None when the
    schedule is spent and the delivery has failed for good."""
    if failed_attempt >= len(delays):
        return None
    return delays[failed_attempt] * random.uniform(1 - JITTER, 1 + JITTER)


def delivery_headers(
    claim: ClaimedDelivery, body: bytes, now: float | None = None
) -> dict[str, str]:
    """The headers of one attempt; the signature is made afresh for each."""
    signed_at = int(time.time() if now is None else now)
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: signature_header(claim.secret, body, signed_at),
        "Kallglot-Webhook-Id": claim.id,
        "Kallglot-Retry-Count": str(claim.attempt - 1),
        "Kallglot-Original-Timestamp": str(int(claim.event_created_at)),
    }


def make_client(
    timeout: float,
    allowed: Sequence[IPNetwork],
    resolve: Resolver,
    concurrency: int = CONCURRENCY,
) -> httpx.AsyncClient:
    """The sender's client: connections only to addresses ``allowed`` by the policy (see
    ``kallrec.webhooks.transport``), host names looked up with ``resolve``."""
    # Imported on the first delivery: httpx brings Click and Rich (~5 MiB), which a server
    # worker that never sends a webhook should not carry.
    import httpx

    from kallrec.webhooks.transport import GuardedBackend, GuardedTransport

    # Room for every attempt in flight, so none waits for a pooled connection.
    limits = httpx.Limits(max_connections=concurrency * 2, max_keepalive_connections=concurrency)
    return httpx.AsyncClient(
        transport=GuardedTransport(GuardedBackend(allowed, resolve), limits),
        follow_redirects=False,
        timeout=timeout,
        trust_env=False,
        # A jar whose policy accepts no domain: cookies are neither stored nor sent.
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
    )


class DeliveryWorker:
    """Sends due deliveries until cancelled. Run one per process (several are safe)."""

    def __init__(
        self,
        repo: WebhookRepository,
        settings: Settings,
        *,
        concurrency: int = CONCURRENCY,
        per_endpoint: int = PER_ENDPOINT,
        per_org: int = PER_ORG,
        resolve: Resolver | None = None,
    ) -> None:
        self.repo = repo
        self.delays = settings.webhook_delays
        self.timeout = settings.webhook_timeout_seconds
        self.allowed = settings.webhook_networks
        self.lease_seconds = self.timeout + LEASE_MARGIN_SECONDS
        self.poll_seconds = min(settings.job_poll_seconds, MAX_POLL_SECONDS)
        self.concurrency = concurrency
        self.per_endpoint = per_endpoint
        self.per_org = per_org
        self.resolve = resolve  # None: the system resolver, on threads of this sender's own
        self._in_flight = 0
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Look for due deliveries now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        client: httpx.AsyncClient | None = None  # made for the first delivery (make_client)
        try:
            async with anyio.create_task_group() as tg:
                while True:
                    self._wake.clear()
                    wait = self.poll_seconds
                    try:
                        claimed = await self._claim_due()
                        if claimed and client is None:
                            client = make_client(
                                self.timeout, self.allowed, self._resolver(), self.concurrency
                            )
                        for claim in claimed:
                            assert client is not None  # made above for the first claim
                            self._in_flight += 1
                            tg.start_soon(self._attempt_and_release, client, claim)
                        if claimed:
                            continue  # more may be due: look again before sleeping
                        wait = await self._idle_wait()
                    except Exception:  # the database is briefly unavailable: try again shortly
                        log.exception("webhook outbox unavailable; will retry")
                    with anyio.move_on_after(wait):
                        await self._wake.wait()
        finally:
            if client is not None:  # after the task group: no attempt is using it any more
                with anyio.CancelScope(shield=True):
                    await client.aclose()

    def _resolver(self) -> Resolver:
        if self.resolve is not None:
            return self.resolve
        from kallrec.webhooks.transport import system_resolve

        # One thread per attempt in flight at most: lookups never wait for each other.
        limiter = anyio.CapacityLimiter(self.concurrency)
        return functools.partial(system_resolve, limiter=limiter)

    async def _claim_due(self) -> list[ClaimedDelivery]:
        free = self.concurrency - self._in_flight
        if free <= 0:
            return []
        # A read first: an idle sender polls without ever taking the write lock.
        due = await anyio.to_thread.run_sync(self.repo.next_due_at)
        if due is None or due > timeutil.now():
            return []
        return await anyio.to_thread.run_sync(
            self.repo.claim_deliveries,
            free,
            self.lease_seconds,
            len(self.delays),
            self.per_endpoint,
            self.per_org,
        )

    async def _idle_wait(self) -> float:
        """Until the next scheduled retry, if that comes before the next poll."""
        if self._in_flight >= self.concurrency:
            return self.poll_seconds  # a finishing attempt wakes us
        due = await anyio.to_thread.run_sync(self.repo.next_due_at)
        remaining = None if due is None else due - timeutil.now()
        # Due already but not claimed (its endpoint has all the leases it may have): poll.
        if remaining is None or remaining <= 0:
            return self.poll_seconds
        return min(self.poll_seconds, remaining)

    async def _attempt_and_release(self, client: httpx.AsyncClient, claim: ClaimedDelivery) -> None:
        try:
            await self.attempt(client, claim)
        except Exception:
            # Unrecorded: the lease runs out and the delivery is tried again.
            log.exception("webhook delivery %s attempt %d crashed", claim.id, claim.attempt)
        finally:
            self._in_flight -= 1
            self.wake()

    async def attempt(self, client: httpx.AsyncClient, claim: ClaimedDelivery) -> None:
        """One attempt of one claimed delivery, recorded whatever happens."""
        body = claim.payload.encode()
        started_at, t0 = timeutil.now(), time.perf_counter()
        response: httpx.Response | None = None
        category = outcomes.TIMEOUT
        try:
            request = client.build_request(
                "POST", claim.url, content=body, headers=delivery_headers(claim, body)
            )
            if request.url.userinfo:  # refused at creation; an older endpoint may still have it
                category = outcomes.INVALID_URL
            else:
                # One deadline for the whole exchange: httpx's own timeout is per phase, so a
                # receiver trickling bytes could otherwise hold the attempt open indefinitely.
                with anyio.move_on_after(self.timeout):
                    response = await client.send(request, stream=True)
        except anyio.get_cancelled_exc_class():
            await self._record_failure(claim, started_at, t0, None, INTERRUPTED, interrupted=True)
            raise
        except Exception as exc:
            category = outcomes.categorize(exc)
            # The details are for the operator's log only (never the attempt record).
            log.log(
                logging.WARNING if category == outcomes.INTERNAL_ERROR else logging.INFO,
                "webhook %s to %s: %s (%s)",
                claim.id,
                claim.endpoint_id,
                category,
                _describe(exc),
                exc_info=category == outcomes.INTERNAL_ERROR,
            )
        if response is None:
            await self._record_failure(claim, started_at, t0, None, category)
            return
        try:
            if response.is_success:
                result = _result(claim, started_at, t0, response.status_code, None)
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(self.repo.record_success, claim, result)
                log.info(
                    "webhook %s to %s: %d (attempt %d, %.0f ms)",
                    claim.id,
                    claim.endpoint_id,
                    response.status_code,
                    claim.attempt,
                    result.latency_ms,
                )
                return
            await self._record_failure(
                claim, started_at, t0, response.status_code, outcomes.HTTP_STATUS
            )
        finally:
            # The answer's body is of no interest; closing discards the connection if unread.
            with anyio.move_on_after(5, shield=True):
                await response.aclose()

    async def _record_failure(
        self,
        claim: ClaimedDelivery,
        started_at: float,
        t0: float,
        status: int | None,
        category: str,
        *,
        interrupted: bool = False,
    ) -> None:
        result = _result(claim, started_at, t0, status, category)
        delay = retry_delay(self.delays, claim.attempt)
        if delay is not None and interrupted:
            delay = 0.0  # a shutdown is not the receiver's fault: go again as soon as possible
        retry_at = None if delay is None else timeutil.now() + delay
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self.repo.record_failure, claim, result, retry_at)
        log.info(
            "webhook %s to %s failed (attempt %d/%d): %s; %s",
            claim.id,
            claim.endpoint_id,
            claim.attempt,
            len(self.delays),
            category if status is None else f"HTTP {status}",
            "giving up" if retry_at is None else f"next in {delay:.1f} s",
        )


def _result(
    claim: ClaimedDelivery,
    started_at: float,
    t0: float,
    status: int | None,
    category: str | None,
) -> AttemptResult:
    latency_ms = (time.perf_counter() - t0) * 1000
    return AttemptResult(claim.attempt, started_at, latency_ms, status, category)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def delivery_worker(rt: Runtime) -> None:
    """The sender of a server process (started by ``run_background``)."""
    await DeliveryWorker(rt.webhooks, rt.settings).run()
