"""Webhook endpoints (spec §7): create, list, retrieve, delete; and (extension) the deliveries
made to one endpoint, with their attempts. Scope ``webhooks:manage``; everything is per
organization and mode, and another organization's or mode's endpoint is a plain 404."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import anyio
from starlette.requests import Request
from starlette.responses import Response

from kallrec import validation
from kallrec.api.common import (
    authorize,
    fetch_page,
    json_body,
    json_response,
    list_object,
    optional_choice,
    page_params,
    read_body,
    runtime,
)
from kallrec.api.idempotency import idempotent
from kallrec.db.webhook_repository import DELIVERY_STATUSES, WebhookEndpoint
from kallrec.errors import InvalidRequest, ValidationError, missing
from kallrec.principal import Principal
from kallrec.webhooks.endpoints import (
    check_destination,
    delivery_object,
    endpoint_object,
    new_endpoint,
    validate_description,
    validate_events,
    validate_url,
)

SCOPE = "webhooks:manage"
FIELDS = {"url", "enabled_events", "description"}


@contextlib.contextmanager
def field_errors() -> Iterator[None]:
    """A body field's value refused by kallrec.webhooks.endpoints (an ``InvalidRequest``
    naming the field) is a ``validation_error``, as every body field's is."""
    try:
        yield
    except InvalidRequest as exc:
        if type(exc) is not InvalidRequest or exc.param is None:
            raise
        raise ValidationError(exc.message, param=exc.param) from None


async def create_webhook_endpoint(request: Request) -> Response:
    principal = await authorize(request, SCOPE)
    raw = await read_body(request)

    async def create() -> Response:
        body = await json_body(request)
        for required in ("url", "enabled_events"):
            validation.required(body, required)
        validation.reject_unknown(body, FIELDS)
        with field_errors():
            url = validate_url(body["url"])
            events = validate_events(body["enabled_events"])
            description = validate_description(body.get("description"))
            # Last: it may look the host name up (spec §9: no loopback, private, … destinations).
            await check_destination(url, runtime(request).settings.webhook_networks)
        endpoint = new_endpoint(principal.org_id, principal.livemode, url, events, description)
        await anyio.to_thread.run_sync(runtime(request).webhooks.insert_endpoint, endpoint)
        # The only answer that ever carries the secret (and, through Idempotency-Key, its replay).
        return json_response(endpoint_object(endpoint, with_secret=True), 201)

    return await idempotent(request, principal, raw, create)


async def list_webhook_endpoints(request: Request) -> Response:
    principal = await authorize(request, SCOPE)
    page = page_params(request)
    webhooks = runtime(request).webhooks
    rows, has_more = await fetch_page(
        lambda: webhooks.list_endpoints(principal.org_id, principal.livemode, page)
    )
    return json_response(
        list_object([endpoint_object(e) for e in rows], has_more, "/v1/webhook_endpoints")
    )


async def _endpoint(request: Request, principal: Principal) -> WebhookEndpoint:
    endpoint_id = request.path_params["endpoint_id"]
    found = await anyio.to_thread.run_sync(
        runtime(request).webhooks.get_endpoint, endpoint_id, principal.org_id, principal.livemode
    )
    if found is None:
        raise missing("webhook endpoint", endpoint_id, "endpoint_id")
    return found


async def get_webhook_endpoint(request: Request) -> Response:
    principal = await authorize(request, SCOPE)
    return json_response(endpoint_object(await _endpoint(request, principal)))


async def delete_webhook_endpoint(request: Request) -> Response:
    """Soft delete: no new deliveries, and its pending ones are canceled."""
    principal = await authorize(request, SCOPE)
    endpoint_id = request.path_params["endpoint_id"]
    deleted = await anyio.to_thread.run_sync(
        runtime(request).webhooks.delete_endpoint,
        endpoint_id,
        principal.org_id,
        principal.livemode,
    )
    if deleted is None:
        raise missing("webhook endpoint", endpoint_id, "endpoint_id")
    return json_response({"id": endpoint_id, "object": "webhook_endpoint", "deleted": True})


async def list_webhook_deliveries(request: Request) -> Response:
    """(extension) The endpoint's deliveries, newest first, each with its attempts."""
    principal = await authorize(request, SCOPE)
    endpoint = await _endpoint(request, principal)
    page = page_params(request)
    status = optional_choice(request, "status", DELIVERY_STATUSES)
    webhooks = runtime(request).webhooks
    rows, has_more = await fetch_page(
        lambda: webhooks.list_deliveries(endpoint_ids=[endpoint.id], status=status, page=page)
    )
    url = f"/v1/webhook_endpoints/{endpoint.id}/deliveries"
    return json_response(list_object([delivery_object(r) for r in rows], has_more, url))
