"""`kallrec webhooks …`: add, list and remove endpoints; inspect deliveries and their attempts.

The same validation as the HTTP API (``kallrec.webhooks.endpoints``). Like ``keys create``,
``add`` prints the secret alone on the last line of stdout and everything else on stderr.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from kallrec import timeutil
from kallrec.cli.common import (
    DataDir,
    Mode,
    err,
    fail,
    out,
    parse_mode,
    runtime_or_exit,
    settings_or_exit,
)

if TYPE_CHECKING:
    pass

webhooks_app = typer.Typer(
    help="Add, list and remove webhook endpoints; inspect deliveries.", no_args_is_help=True
)


def _table(*columns: str) -> Table:
    return Table(*columns)


def _print_table(table: Table) -> None:
    Console(width=200 if not sys.stdout.isatty() else None).print(table)


@webhooks_app.command("add")
def add(
    url: Annotated[str, typer.Argument(help="Where to POST events (http or https).")],
    org: Annotated[str, typer.Option("--org", help="Organization (created if it does not exist).")],
    events: Annotated[
        str,
        typer.Option(
            "--events",
            help="Comma-separated event types, or '*' for all of them. Kallglot's "
            "session.provider.* (sent for carrier media streams), transcript.* and analysis.* "
            "names are accepted too; kallrec never sends transcript.* and analysis.*.",
        ),
    ],
    mode: Mode = "live",
    description: Annotated[
        str | None, typer.Option("--description", help="A note to recognise it by.")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Add an endpoint; its signing secret is printed once, alone on the last line."""
    import anyio

    from kallrec.errors import ApiError
    from kallrec.webhooks.endpoints import (
        check_destination,
        new_endpoint,
        validate_description,
        validate_events,
        validate_url,
    )

    livemode = parse_mode(mode)
    settings = settings_or_exit(data_dir)
    try:
        checked_url = validate_url(url, "URL")
        checked_events = validate_events(
            [e.strip() for e in events.split(",") if e.strip()], "--events"
        )
        checked_description = validate_description(description, "--description")
        # The operator is held to the same rule as the API: the sender would refuse it anyway.
        anyio.run(check_destination, checked_url, settings.webhook_networks, "URL")
    except ApiError as exc:
        raise fail(exc.message, 2) from None
    rt = runtime_or_exit(data_dir)
    try:
        owner, _ = rt.repo.ensure_org(org, rt.settings.default_retention_days)
        endpoint = new_endpoint(
            owner.id, livemode, checked_url, checked_events, checked_description
        )
        rt.webhooks.insert_endpoint(endpoint)
    finally:
        rt.close()
    err.print(
        f"Created {mode} webhook endpoint {endpoint.id} for '{org}': {endpoint.url} "
        f"({', '.join(endpoint.enabled_events)})",
        highlight=False,
    )
    err.print("Store the signing secret now: it is not shown again.")
    out.print(endpoint.secret)


@webhooks_app.command("list")
def list_(
    org: Annotated[str | None, typer.Option("--org", help="Only this organization.")] = None,
    data_dir: DataDir = None,
) -> None:
    """List endpoints (never their secrets)."""
    rt = runtime_or_exit(data_dir)
    try:
        org_id = None
        if org:
            found = rt.repo.get_org_by_name(org)
            if found is None:
                raise fail(f"No such organization: {org!r}.")
            org_id = found.id
        rows = rt.webhooks.list_all_endpoints(org_id)
    finally:
        rt.close()
    table = _table("id", "org", "mode", "url", "events", "description", "created")
    for endpoint, org_name in rows:
        table.add_row(
            endpoint.id,
            org_name,
            "live" if endpoint.livemode else "test",
            endpoint.url,
            ",".join(endpoint.enabled_events),
            endpoint.description or "",
            timeutil.iso(endpoint.created_at),
        )
    _print_table(table)


@webhooks_app.command("remove")
def remove(
    endpoint_id: Annotated[str, typer.Argument(help="The endpoint id (wh_…).")],
    data_dir: DataDir = None,
) -> None:
    """Remove an endpoint: no new deliveries, and its pending ones are canceled."""
    rt = runtime_or_exit(data_dir)
    try:
        removed = rt.webhooks.delete_endpoint(endpoint_id)
    finally:
        rt.close()
    if removed is None:
        raise fail(f"No such webhook endpoint: {endpoint_id!r}.")
    endpoint, canceled = removed
    out.print(f"Removed {endpoint.id} ({endpoint.url}); canceled {canceled} pending delivery(ies).")


@webhooks_app.command("deliveries")
def deliveries(
    endpoint: Annotated[
        str | None, typer.Option("--endpoint", help="Only this endpoint (wh_…).")
    ] = None,
    status: Annotated[
        str | None,
        typer.Option("--status", help="pending, succeeded, failed or canceled."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="At most this many.")] = 20,
    data_dir: DataDir = None,
) -> None:
    """List deliveries, newest first, with every attempt (status code or error, latency)."""
    from kallrec.db.repository import Page
    from kallrec.db.webhook_repository import DELIVERY_STATUSES
    from kallrec.webhooks.outcomes import public_category

    if status is not None and status not in DELIVERY_STATUSES:
        raise fail(f"--status must be one of {', '.join(DELIVERY_STATUSES)}.", 2)
    rt = runtime_or_exit(data_dir)
    try:
        rows, _ = rt.webhooks.list_deliveries(
            endpoint_ids=None if endpoint is None else [endpoint],
            status=status,
            page=Page(limit=limit),
        )
    finally:
        rt.close()
    table = _table("id", "endpoint", "event", "status", "created", "next attempt", "attempts")
    for record in rows:
        attempts = "\n".join(
            f"#{a.attempt} {a.response_status or '---'} {a.latency_ms:.0f} ms"
            + ("" if a.category is None else f" {public_category(a.category, None)}")
            for a in record.history
        )
        table.add_row(
            record.id,
            record.endpoint_id,
            record.event_type,
            record.status,
            timeutil.iso(record.created_at),
            timeutil.iso(record.next_attempt_at) if record.status == "pending" else "",
            attempts or "none yet",
        )
    _print_table(table)
