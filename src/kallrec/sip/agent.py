"""aiosipua's user agent server, hardened where kallrec found it wanting.

- A retransmitted INVITE (same Call-ID, same Via branch: the caller's timer fired before our
  answer reached it) is the same call, not a new one: it gets the provisional answer again
  (RFC 3261 §17.2.1). aiosipua takes it for a new call until the dialog is confirmed, which
  answered one call twice, with two different To tags.
- A request aiosipua fails to handle (an INVITE whose SDP it cannot parse raises before any
  answer) gets ``400 Bad Request`` instead of silence, and is counted.
- Session timers (RFC 4028) only for callers that take part in them (``Supported: timer`` or a
  ``Session-Expires`` of their own). aiosipua imposes its interval on every call and, when the
  caller cannot be refreshed with UPDATE, leaves the refreshing to a caller that never heard of
  it: a PBX without timers would have every call hung up after the interval.
- Every request is counted in the SIP metrics by method.
"""

from __future__ import annotations

import logging

from aiosipua import SipRequest, SipUAS

from kallrec.metrics import SIP_METHODS, SipMetrics

log = logging.getLogger("kallrec.sip")


def _branch(request: SipRequest) -> str | None:
    vias = request.via
    return vias[0].branch if vias else None


class Agent(SipUAS):
    metrics: SipMetrics | None = None

    def _handle_request(self, request: SipRequest, addr: tuple[str, int]) -> None:
        method = request.method.upper()
        if self.metrics is not None:
            self.metrics.requests.labels(method if method in SIP_METHODS else "other").inc()
        if method == "INVITE":
            known = self._calls.get(request.call_id or "")
            if known is not None and _branch(known.invite) == _branch(request):
                if not known._answered:  # a retransmission: repeat the provisional answer
                    known.trying()
                return  # answered: the 2xx is being retransmitted until the ACK
        offered = self.session_expires
        if method == "INVITE" and not _uses_timers(request):
            self.session_expires = None  # for this INVITE only (handled synchronously)
        try:
            super()._handle_request(request, addr)
        except Exception:
            log.warning("%s from %s could not be handled; answered 400", method, addr[0])
            if method == "INVITE":
                self._calls.pop(request.call_id or "", None)
            if method != "ACK":
                self._send_error(request, 400, "Bad Request")
        finally:
            self.session_expires = offered


def _uses_timers(request: SipRequest) -> bool:
    supported = ",".join(request.get_header_values("supported")).lower()
    timer = "timer" in (token.strip() for token in supported.split(","))
    return timer or request.get_header("session-expires") is not None
