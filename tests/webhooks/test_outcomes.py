"""Attempt categories: what each failure is recorded as, and how records written before
categories existed (free error text) are shown."""

from __future__ import annotations

import ssl
import time
from ipaddress import IPv4Address

import httpcore
import httpx
import pytest

from kallrec.db.webhook_repository import AttemptResult
from kallrec.runtime import Runtime
from kallrec.webhooks.endpoints import attempt_object
from kallrec.webhooks.outcomes import CATEGORIES, categorize, public_category
from kallrec.webhooks.transport import BlockedAddress, UnresolvableHost
from tests.webhooks.helpers import add_endpoint, deliveries, emit


def caused(outer: BaseException, cause: BaseException) -> BaseException:
    outer.__cause__ = cause
    return outer


@pytest.mark.parametrize(
    ("exc", "category"),
    [
        (BlockedAddress("h", IPv4Address("127.0.0.1"), "loopback"), "blocked_address"),
        (UnresolvableHost("h"), "dns_error"),
        (httpcore.ConnectTimeout("x"), "timeout"),
        (httpx.ReadTimeout("x"), "timeout"),
        (TimeoutError(), "timeout"),
        (caused(httpcore.ConnectError("x"), ConnectionRefusedError(111, "refused")),
         "connection_refused"),
        (caused(httpcore.ConnectError("x"), ssl.SSLCertVerificationError("bad")), "tls_error"),
        (httpcore.RemoteProtocolError("Server disconnected"), "connection_error"),
        (httpcore.ReadError("reset"), "connection_error"),
        (caused(httpcore.ConnectError("x"), OSError(113, "No route to host")), "connection_error"),
        (httpx.UnsupportedProtocol("x"), "invalid_url"),
        (RuntimeError("a bug"), "internal_error"),
    ],
)  # fmt: skip
def test_exceptions_map_to_categories(exc: BaseException, category: str) -> None:
    assert categorize(exc) == category


@pytest.mark.parametrize(
    ("stored", "status", "shown"),
    [
        ("HTTP 302 (redirects are not followed; Location: http://169.254.169.254/)", 302,
         "http_status"),
        ("timed out: no response within 30 s", None, "timeout"),
        ("ConnectError: [Errno 111] Connection refused", None, "connection_refused"),
        ("ConnectError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed", None,
         "tls_error"),
        ("interrupted: the sender stopped during the attempt", None, "interrupted"),
        ("no result recorded: the sender stopped during the attempt (lease expired)", None,
         "lost"),
        ("RemoteProtocolError: Server disconnected without sending a response.", None,
         "connection_error"),
    ],
)  # fmt: skip
def test_free_text_of_older_records_is_never_shown(
    stored: str, status: int | None, shown: str
) -> None:
    assert public_category(stored, status) == shown
    obj = attempt_object(AttemptResult(1, time.time(), 5.0, status, stored))
    assert (obj["category"], obj["error"], obj["response_status"]) == (shown, shown, status)


def test_a_success_has_a_category_and_no_error() -> None:
    obj = attempt_object(AttemptResult(1, time.time(), 5.0, 204, None))
    assert (obj["category"], obj["error"], obj["response_status"]) == ("http_status", None, 204)
    assert set(CATEGORIES) >= {"timeout", "connection_refused", "tls_error", "http_status"}


def test_older_records_read_through_the_repository_are_categories(runtime: Runtime) -> None:
    endpoint = add_endpoint(runtime, "http://127.0.0.1:9/hook")
    emit(runtime, endpoint)
    (claim,) = runtime.webhooks.claim_deliveries(1, 60, 3, 4)
    old = AttemptResult(1, time.time(), 3.0, None, "ConnectError: [Errno 111] Connection refused")
    runtime.webhooks.record_failure(claim, old, time.time() + 60)
    (delivery,) = deliveries(runtime, endpoint)
    (shown,) = [attempt_object(a) for a in delivery.history]
    assert shown["category"] == "connection_refused" and "Errno" not in str(shown)
