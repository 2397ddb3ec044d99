"""Webhook endpoints and their deliveries: every query the webhooks feature makes.

Events and their pending deliveries are written by ``repository.insert_event`` inside the
transaction of the change they report (the outbox). This module reads that outbox, leases due
deliveries to a sender and records what each attempt got; see ``kallrec.webhooks.delivery``.

A delivery's ``attempts`` counts attempts *started*: a claim counts one before anything is sent,
so a sender that dies mid-attempt still uses up budget, and the count is the fencing token that
keeps a late result from overwriting a newer claim's schedule.

An attempt's ``error`` column holds a category (``kallrec.webhooks.outcomes``), never free text.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from typing import Any, Self

from sqlalchemy import Connection, and_, delete, func, insert, or_, select, update
from sqlalchemy.engine import RowMapping

from kallrec import timeutil
from kallrec.db import schema as t
from kallrec.db.engine import Database, locking
from kallrec.db.repository import Page, UnknownCursor, _paginate

PENDING, SUCCEEDED, FAILED, CANCELED = "pending", "succeeded", "failed", "canceled"
DELIVERY_STATUSES = (PENDING, SUCCEEDED, FAILED, CANCELED)
# The category of an attempt whose sender died before recording it (its lease ran out).
LOST_ATTEMPT = "lost"


@dataclass(frozen=True)
class WebhookEndpoint:
    id: str
    org_id: str
    livemode: bool
    url: str
    events: str  # space-separated event types, or "*"
    description: str | None
    secret: str
    created_at: float
    deleted_at: float | None

    @classmethod
    def from_row(cls, row: RowMapping) -> Self:
        return cls(**{f.name: row[f.name] for f in fields(cls)})

    @property
    def enabled_events(self) -> list[str]:
        return self.events.split()


@dataclass(frozen=True)
class ClaimedDelivery:
    """A delivery leased to one sender for one attempt, with everything the request needs."""

    id: str
    endpoint_id: str
    event_id: str
    attempt: int  # 1 for the first attempt
    url: str
    secret: str
    payload: str
    event_created_at: float


@dataclass(frozen=True)
class AttemptResult:
    attempt: int
    started_at: float
    latency_ms: float
    response_status: int | None
    # Why it failed (a category of kallrec.webhooks.outcomes); None when it succeeded.
    category: str | None


@dataclass(frozen=True)
class DeliveryRecord:
    id: str
    endpoint_id: str
    event_id: str
    event_type: str
    status: str
    attempts: int
    next_attempt_at: float
    created_at: float
    updated_at: float
    history: tuple[AttemptResult, ...]


class WebhookRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- endpoints -------------------------------------------------------------------------

    def insert_endpoint(self, endpoint: WebhookEndpoint) -> None:
        with self.db.write() as conn:
            conn.execute(insert(t.webhook_endpoints).values(**endpoint.__dict__))

    def get_endpoint(
        self, endpoint_id: str, org_id: str | None = None, livemode: bool | None = None
    ) -> WebhookEndpoint | None:
        """A live (not deleted) endpoint; scoped to an organization and mode when given."""
        with self.db.read() as conn:
            row = (
                conn.execute(
                    select(t.webhook_endpoints).where(
                        *_endpoint_scope(endpoint_id, org_id, livemode)
                    )
                )
                .mappings()
                .first()
            )
        return WebhookEndpoint.from_row(row) if row else None

    def list_endpoints(
        self, org_id: str, livemode: bool, page: Page
    ) -> tuple[list[WebhookEndpoint], bool]:
        we = t.webhook_endpoints
        where = and_(we.c.org_id == org_id, we.c.livemode == livemode, we.c.deleted_at.is_(None))
        with self.db.read() as conn:
            rows, has_more = _paginate(conn, we, where, page, org_id, livemode)
        return [WebhookEndpoint.from_row(r) for r in rows], has_more

    def list_all_endpoints(self, org_id: str | None = None) -> list[tuple[WebhookEndpoint, str]]:
        """Every live endpoint with its organization's name (for the operator's CLI)."""
        we = t.webhook_endpoints
        query = (
            select(we, t.organizations.c.name.label("org_name"))
            .join(t.organizations, t.organizations.c.id == we.c.org_id)
            .where(we.c.deleted_at.is_(None))
            .order_by(t.organizations.c.name, we.c.id)
        )
        if org_id:
            query = query.where(we.c.org_id == org_id)
        with self.db.read() as conn:
            rows = conn.execute(query).mappings()
            return [(WebhookEndpoint.from_row(r), r["org_name"]) for r in rows]

    def delete_endpoint(
        self, endpoint_id: str, org_id: str | None = None, livemode: bool | None = None
    ) -> tuple[WebhookEndpoint, int] | None:
        """Soft-deletes the endpoint and cancels its pending deliveries, in one transaction (so
        no event written afterwards targets it, and nothing already queued goes out). Returns
        the endpoint and how many deliveries were canceled; None when there is no such endpoint.
        """
        we, d = t.webhook_endpoints, t.webhook_deliveries
        now = timeutil.now()
        with self.db.write() as conn:
            row = (
                conn.execute(select(we).where(*_endpoint_scope(endpoint_id, org_id, livemode)))
                .mappings()
                .first()
            )
            if row is None:
                return None
            conn.execute(update(we).where(we.c.id == endpoint_id).values(deleted_at=now))
            # An attempt in flight right now still finishes and is recorded; a 2xx it gets
            # turns the delivery into 'succeeded' (it did arrive).
            canceled = conn.execute(
                update(d)
                .where(d.c.endpoint_id == endpoint_id, d.c.status == PENDING)
                .values(status=CANCELED, lease_until=None, updated_at=now)
            ).rowcount
        return WebhookEndpoint.from_row(row), canceled

    # -- the sender's side -----------------------------------------------------------------

    def next_due_at(self) -> float | None:
        """When the earliest pending delivery not leased right now is due (a cheap read, so
        idle senders poll without taking the write lock)."""
        d = t.webhook_deliveries
        now = timeutil.now()
        with self.db.read() as conn:
            return conn.execute(
                select(func.min(d.c.next_attempt_at)).where(
                    d.c.status == PENDING,
                    or_(d.c.lease_until.is_(None), d.c.lease_until <= now),
                )
            ).scalar()

    def claim_deliveries(
        self,
        limit: int,
        lease_seconds: float,
        max_attempts: int,
        per_endpoint: int,
        per_org: int | None = None,
    ) -> list[ClaimedDelivery]:
        """Leases up to ``limit`` due deliveries for one attempt each.

        Due: pending, ``next_attempt_at`` reached, not leased (or the lease ran out: its sender
        died), endpoint not deleted. The select and the lease happen in one write transaction
        (``BEGIN IMMEDIATE``), so concurrent claimers, in this process or another, never get the
        same delivery.

        Fair to receivers and to organizations: no endpoint gets more than ``per_endpoint``
        leases at once, and no organization more than ``per_org`` (None: no limit), counted
        across all senders; and the deliveries are taken round-robin across organizations
        (each one's oldest due first), so an organization with a backlog of slow or hung
        receivers holds a bounded share of the sending slots and never delays another's events
        behind its own. (On PostgreSQL, claimers racing in separate transactions may each see
        the same counts, so a cap can be exceeded by the claims made at that same moment.)
        """
        d, we, ev, at = t.webhook_deliveries, t.webhook_endpoints, t.events, t.webhook_attempts
        now = timeutil.now()
        with self.db.write() as conn:
            # Leases held right now, per endpoint and per organization.
            by_endpoint: dict[str, int] = {}
            by_org: dict[str, int] = {}
            for endpoint_id, org_id, count in conn.execute(
                select(d.c.endpoint_id, we.c.org_id, func.count())
                .join(we, we.c.id == d.c.endpoint_id)
                .where(d.c.status == PENDING, d.c.lease_until > now)
                .group_by(d.c.endpoint_id, we.c.org_id)
            ):
                by_endpoint[endpoint_id] = count
                by_org[org_id] = by_org.get(org_id, 0) + count

            def room(endpoint_id: str, org_id: str) -> bool:
                return by_endpoint.get(endpoint_id, 0) < per_endpoint and (
                    per_org is None or by_org.get(org_id, 0) < per_org
                )

            conds: list[Any] = [
                d.c.status == PENDING,
                d.c.next_attempt_at <= now,
                or_(d.c.lease_until.is_(None), d.c.lease_until <= now),
                we.c.deleted_at.is_(None),
            ]
            full_endpoints = [e for e, n in by_endpoint.items() if n >= per_endpoint]
            if full_endpoints:
                conds.append(d.c.endpoint_id.not_in(full_endpoints))
            full_orgs = [o for o, n in by_org.items() if per_org is not None and n >= per_org]
            if full_orgs:
                conds.append(we.c.org_id.not_in(full_orgs))
            # Read them all before writing: updating rows under an open SQLite cursor over the
            # same table may revisit or skip rows.
            rows = (
                conn.execute(
                    locking(
                        select(
                            d.c.id,
                            d.c.endpoint_id,
                            d.c.event_id,
                            d.c.attempts,
                            d.c.lease_until,
                            d.c.updated_at,
                            we.c.org_id,
                            we.c.url,
                            we.c.secret,
                            ev.c.payload,
                            ev.c.created_at.label("event_created_at"),
                        )
                        .join(we, we.c.id == d.c.endpoint_id)
                        .join(ev, ev.c.id == d.c.event_id)
                        .where(*conds)
                        .order_by(d.c.next_attempt_at, d.c.id)
                        .limit(limit * per_endpoint),
                        conn,
                        of=d,
                    )
                )
                .mappings()
                .all()
            )
            claimed: list[ClaimedDelivery] = []
            for row in _round_robin(rows):
                if len(claimed) >= limit:
                    break
                if row["lease_until"] is not None:
                    # Its sender died mid-attempt; say so in the history (updated_at is the
                    # time of that claim).
                    conn.execute(
                        insert(at).values(
                            delivery_id=row["id"],
                            attempt=row["attempts"],
                            started_at=row["updated_at"],
                            latency_ms=0.0,
                            response_status=None,
                            error=LOST_ATTEMPT,
                        )
                    )
                    conn.execute(update(d).where(d.c.id == row["id"]).values(lease_until=None))
                if row["attempts"] >= max_attempts:
                    conn.execute(
                        update(d)
                        .where(d.c.id == row["id"])
                        .values(status=FAILED, lease_until=None, updated_at=now)
                    )
                    continue
                if not room(row["endpoint_id"], row["org_id"]):
                    continue
                by_endpoint[row["endpoint_id"]] = by_endpoint.get(row["endpoint_id"], 0) + 1
                by_org[row["org_id"]] = by_org.get(row["org_id"], 0) + 1
                attempt = row["attempts"] + 1
                conn.execute(
                    update(d)
                    .where(d.c.id == row["id"])
                    .values(attempts=attempt, lease_until=now + lease_seconds, updated_at=now)
                )
                claimed.append(
                    ClaimedDelivery(
                        id=row["id"],
                        endpoint_id=row["endpoint_id"],
                        event_id=row["event_id"],
                        attempt=attempt,
                        url=row["url"],
                        secret=row["secret"],
                        payload=row["payload"],
                        event_created_at=row["event_created_at"],
                    )
                )
        return claimed

    def record_success(self, claim: ClaimedDelivery, result: AttemptResult) -> None:
        """The receiver answered 2xx: never send this delivery again.

        Not fenced on the claim: even if our lease ran out and another sender took the
        delivery, a recorded 2xx must end it (that sender's own result is then ignored).
        """
        d = t.webhook_deliveries
        with self.db.write() as conn:
            _insert_attempt(conn, claim.id, result)
            conn.execute(
                update(d)
                .where(d.c.id == claim.id)
                .values(status=SUCCEEDED, lease_until=None, updated_at=timeutil.now())
            )

    def record_failure(
        self, claim: ClaimedDelivery, result: AttemptResult, retry_at: float | None
    ) -> bool:
        """Records a failed attempt; schedules the next at ``retry_at``, or fails the delivery
        when it is None. False when the claim was superseded (canceled, succeeded, or claimed
        again after our lease ran out): the attempt is recorded, the delivery left alone."""
        d = t.webhook_deliveries
        now = timeutil.now()
        values: dict[str, Any] = {"lease_until": None, "updated_at": now}
        if retry_at is None:
            values["status"] = FAILED
        else:
            values["next_attempt_at"] = retry_at
        with self.db.write() as conn:
            _insert_attempt(conn, claim.id, result)
            changed = conn.execute(
                update(d)
                .where(d.c.id == claim.id, d.c.status == PENDING, d.c.attempts == claim.attempt)
                .values(**values)
            ).rowcount
        return changed == 1

    # -- history ---------------------------------------------------------------------------

    def list_deliveries(
        self,
        *,
        endpoint_ids: Sequence[str] | None = None,
        status: str | None = None,
        page: Page | None = None,
    ) -> tuple[list[DeliveryRecord], bool]:
        """Deliveries newest first, each with its attempts; ``endpoint_ids`` scopes them (and
        the cursors) to those endpoints, None means every endpoint."""
        d, ev, at = t.webhook_deliveries, t.events, t.webhook_attempts
        page = page or Page()
        conds: list[Any] = []
        if endpoint_ids is not None:
            conds.append(d.c.endpoint_id.in_(endpoint_ids))
        if status is not None:
            conds.append(d.c.status == status)
        base = select(d, ev.c.type.label("event_type")).join(ev, ev.c.id == d.c.event_id)
        with self.db.read() as conn:
            for param, cursor in (
                ("starting_after", page.starting_after),
                ("ending_before", page.ending_before),
            ):
                if cursor is None:
                    continue
                scope = [d.c.id == cursor]
                if endpoint_ids is not None:
                    scope.append(d.c.endpoint_id.in_(endpoint_ids))
                if conn.execute(select(d.c.id).where(*scope)).first() is None:
                    raise UnknownCursor(param, cursor)
            if page.ending_before is not None:
                query = base.where(*conds, d.c.id > page.ending_before).order_by(d.c.id.asc())
                rows = list(conn.execute(query.limit(page.limit + 1)).mappings())
                has_more = len(rows) > page.limit
                rows = list(reversed(rows[: page.limit]))
            else:
                if page.starting_after is not None:
                    conds.append(d.c.id < page.starting_after)
                query = base.where(*conds).order_by(d.c.id.desc()).limit(page.limit + 1)
                rows = list(conn.execute(query).mappings())
                has_more = len(rows) > page.limit
                rows = rows[: page.limit]
            history: dict[str, list[AttemptResult]] = {row["id"]: [] for row in rows}
            if history:
                for a in conn.execute(
                    select(at)
                    .where(at.c.delivery_id.in_(list(history)))
                    .order_by(at.c.delivery_id, at.c.attempt, at.c.id)
                ).mappings():
                    history[a["delivery_id"]].append(
                        AttemptResult(
                            a["attempt"],
                            a["started_at"],
                            a["latency_ms"],
                            a["response_status"],
                            a["error"],  # the category
                        )
                    )
        return [
            DeliveryRecord(
                id=row["id"],
                endpoint_id=row["endpoint_id"],
                event_id=row["event_id"],
                event_type=row["event_type"],
                status=row["status"],
                attempts=row["attempts"],
                next_attempt_at=row["next_attempt_at"],
                created_at=row["created_at"],
                updated_at=row["updated_at"],
                history=tuple(history[row["id"]]),
            )
            for row in rows
        ], has_more

    def prune_history(self, before: float) -> int:
        """Forgets finished deliveries (and their attempts and events) last touched before
        ``before``; pending ones are kept whatever their age. Returns the deliveries removed."""
        d, a, e = t.webhook_deliveries, t.webhook_attempts, t.events
        with self.db.write() as conn:
            finished = select(d.c.id).where(d.c.status != "pending", d.c.updated_at < before)
            conn.execute(delete(a).where(a.c.delivery_id.in_(finished)))
            removed = conn.execute(delete(d).where(d.c.id.in_(finished))).rowcount
            orphaned = select(d.c.event_id).distinct()
            conn.execute(delete(e).where(e.c.created_at < before, e.c.id.not_in(orphaned)))
        return removed


def _round_robin(rows: Sequence[RowMapping]) -> Iterator[RowMapping]:
    """``rows`` (oldest due first) taken one organization at a time: the oldest of each
    organization, then the second oldest of each, and so on."""
    queues: dict[str, list[RowMapping]] = {}
    for row in rows:
        queues.setdefault(row["org_id"], []).append(row)
    for depth in range(max((len(q) for q in queues.values()), default=0)):
        for queue in queues.values():
            if depth < len(queue):
                yield queue[depth]


def _endpoint_scope(endpoint_id: str, org_id: str | None, livemode: bool | None) -> list[Any]:
    we = t.webhook_endpoints
    conds: list[Any] = [we.c.id == endpoint_id, we.c.deleted_at.is_(None)]
    if org_id is not None:
        conds.append(we.c.org_id == org_id)
    if livemode is not None:
        conds.append(we.c.livemode == livemode)
    return conds


def _insert_attempt(conn: Connection, delivery_id: str, result: AttemptResult) -> None:
    conn.execute(
        insert(t.webhook_attempts).values(
            delivery_id=delivery_id,
            attempt=result.attempt,
            started_at=result.started_at,
            latency_ms=result.latency_ms,
            response_status=result.response_status,
            error=result.category,
        )
    )
